"""Fixtures of the chaos suite: a private PostgreSQL, one database and service per scenario.

Two sizes. ``.venv/bin/pytest tests/chaos`` (only chaos paths on the command
line) is the full run: 240 uploads per scenario, 30 s of killing, 10 s
without the database, and its figures go to ``docs/reliability-figures.json``.
``--quick``, and any run that includes other tests (``python3 run_tests.py``,
CI), is the quick variant: the same scenarios and invariants with shorter
faults and fewer tasks. ``--chaos-figures PATH`` writes the figures anywhere.
``-m "not chaos"`` leaves the suite out.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.chaos.harness import PgServer, Service, postgres_bin_dir
from tests.conftest import ROOT, migrate

CHAOS_DIR = ROOT / "tests" / "chaos"
FIGURES_PATH = ROOT / "docs" / "reliability-figures.json"


@dataclass(frozen=True)
class Profile:
    name: str
    tasks: int  # uploads per load scenario
    kill_seconds: float  # scenario 1: how long workers are killed at random
    db_down_seconds: float  # scenario 3
    storage_fault_seconds: float  # scenario 4, for each of "full" and "read-only"
    batches: int  # scenario 6: batches of 25 noop
    idle_within: float  # how long the queue may take to drain after the faults


QUICK = Profile("quick", tasks=40, kill_seconds=8, db_down_seconds=5, storage_fault_seconds=3,
                batches=6, idle_within=120)  # fmt: skip
FULL = Profile("full", tasks=240, kill_seconds=30, db_down_seconds=10, storage_fault_seconds=8,
               batches=40, idle_within=400)  # fmt: skip


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaos")
    group.addoption("--quick", action="store_true", help="chaos suite: the short variant")
    group.addoption("--chaos-figures", default=None, help="chaos suite: write the figures here")


def chaos_profile(config: pytest.Config) -> Profile:
    if config.getoption("--quick", default=False):
        return QUICK
    paths = [Path(str(arg).split("::")[0]) for arg in config.args]
    chaos_only = bool(paths) and all(
        (p if p.is_absolute() else Path(config.invocation_params.dir) / p)
        .resolve()
        .is_relative_to(CHAOS_DIR)
        for p in paths
    )
    return FULL if chaos_only else QUICK


@pytest.fixture(scope="session")
def profile(request: pytest.FixtureRequest) -> Profile:
    return chaos_profile(request.config)


@pytest.fixture(scope="session")
def chaos_figures(request: pytest.FixtureRequest, profile: Profile) -> Iterator[dict[str, Any]]:
    """Scenario name → its figures; written as JSON when the session ends."""
    figures: dict[str, Any] = {}
    yield figures
    target = request.config.getoption("--chaos-figures") or (
        str(FIGURES_PATH) if profile is FULL else None
    )
    if target and figures:
        document = {
            "profile": asdict(profile),
            "machine": {"cpus": os.cpu_count(), "platform": os.uname().release},
            "run_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "command": "python -m pytest " + " ".join(request.config.invocation_params.args),
            "scenarios": dict(sorted(figures.items())),
        }
        Path(target).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")


@pytest.fixture(scope="session")
def chaos_pg() -> Iterator[PgServer]:
    """A PostgreSQL cluster of the suite's own, which the scenarios may stop and restart."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None or (os.geteuid() == 0 and shutil.which("runuser") is None):
        reason = "the chaos suite needs PostgreSQL's server binaries (/usr/lib/postgresql/*/bin)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    server = PgServer(bin_dir)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.destroy()


async def _create_database(server: PgServer, name: str) -> None:
    conn = await asyncpg.connect(server.url(driver="postgresql"), timeout=10)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


MakeService = Callable[..., Service]


@pytest.fixture
def make_service(
    chaos_pg: PgServer, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[MakeService]:
    """A migrated database and an upload dir of this scenario, and a ``Service`` on them.

    The service's processes are started by the test; every one of them (and
    anything they left behind) is killed at teardown.
    """
    services: list[Service] = []

    def build(upload_dir: Path | None = None, **env: str) -> Service:
        if chaos_pg.pid() is None:
            chaos_pg.start()  # a previous scenario failed while the server was down
        name = f"chaos_{request.node.name[:30].strip('_').lower()}_{uuid.uuid4().hex[:6]}"
        name = "".join(c if c.isalnum() else "_" for c in name)
        asyncio.run(_create_database(chaos_pg, name))
        url = chaos_pg.url(name)
        migrate(url)
        run_dir = tmp_path / f"run-{len(services)}"
        run_dir.mkdir()
        service = Service(
            database_url=url,
            upload_dir=upload_dir or tmp_path / "uploads",
            run_dir=run_dir,
            env_overrides=env,
        )
        services.append(service)
        return service

    yield build
    for service in services:
        service.kill_everything()
    if chaos_pg.pid() is None:
        chaos_pg.start()


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
