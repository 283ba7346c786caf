"""Fixtures shared by the command-line tests and the remote processor's live tests.

``live`` is a real server (uvicorn subprocess) per test module and backend,
with remote processors pointing at ``fake_remote``: ``http`` (a service that
succeeds), ``http-flaky`` (answers 503 before it succeeds) and
``http-failing`` (reports every job failed).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from app.cli.main import app
from tests.cli.live_server import LiveServer, User, database_for, run_live_server
from tests.conftest import postgres_available
from tests.processors.remote_service import FakeService, run_fake_service, settings_for

Ntm = Callable[..., Result]


@pytest.fixture(scope="module")
def fake_remote() -> Iterator[FakeService]:
    with run_fake_service() as service:
        yield service


@pytest.fixture(scope="module")
def live(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    fake_remote: FakeService,
) -> Iterator[LiveServer]:
    template = None
    if backend == "sqlite":
        template = request.getfixturevalue("sqlite_template")
    else:
        reason = postgres_available()
        if reason is not None:
            if os.environ.get("CI") == "true":
                pytest.fail(f"{reason} (PostgreSQL tests must run in CI)")
            pytest.skip(reason)
    root = tmp_path_factory.mktemp(f"live-{backend}")
    remote = {
        "http": settings_for(fake_remote.url("ok")),
        "http-flaky": settings_for(fake_remote.url("flaky")),
        "http-failing": settings_for(fake_remote.url("fail")),
    }
    with (
        database_for(backend, root, template) as database_url,
        run_live_server(database_url, root, backend=backend, remote=remote) as server,
    ):
        yield server


@pytest.fixture
def user(live: LiveServer) -> User:
    return live.new_user()


@pytest.fixture
def ntm(live: LiveServer, tmp_path: Path) -> Ntm:
    """Run ``ntm ARGS…`` in this process against ``live``, with a config directory of its own."""
    runner = CliRunner()
    env = {"NTM_URL": live.url, "NTM_CONFIG_DIR": str(tmp_path / "ntm-config"), "NTM_TOKEN": None}

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(app, list(args), env=env, input=input, catch_exceptions=False)

    return invoke


@pytest.fixture
def signed_in(ntm: Ntm, user: User) -> User:
    result = ntm("login", "--api-key", user.api_key)
    assert result.exit_code == 0, result.output
    return user
