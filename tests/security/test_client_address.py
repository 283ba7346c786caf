"""The client IP behind the per-IP limits: the socket's peer, X-Forwarded-For only when configured.

uvicorn believes X-Forwarded-For from 127.0.0.1 and ::1 unless told otherwise,
so these tests serve the app with real uvicorn servers: in this process with
uvicorn's defaults spelled out, and as ``python -m uvicorn app.main:app`` (the
README's command) in a subprocess.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from asgi_lifespan import LifespanManager

from app.config import Settings
from app.main import create_app
from tests.conftest import ROOT

LOGIN = "/api/v1/auth/login"
CREDENTIALS = {"username": "nobody@example.com", "password": "wrong-password-1"}


@asynccontextmanager
async def served(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app behind an in-process uvicorn with its default proxy trust (loopback)."""
    app = create_app(settings)
    async with LifespanManager(app):
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            lifespan="off",
            log_config=None,
            proxy_headers=True,  # uvicorn's defaults, spelled out
            forwarded_allow_ips="127.0.0.1,::1",
        )
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve())
        while not server.started:
            if serving.done():
                serving.result()
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                yield client
        finally:
            server.should_exit = True
            await asyncio.wait_for(serving, timeout=30)


async def login_codes(client: httpx.AsyncClient, forwarded_for: list[str]) -> list[int]:
    codes = []
    for address in forwarded_for:
        response = await client.post(LOGIN, data=CREDENTIALS, headers={"X-Forwarded-For": address})
        codes.append(response.status_code)
    return codes


async def test_forwarded_for_from_loopback_does_not_change_the_ip_by_default(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(login_rate_limit="2/minute", anonymous_rate_limit="2/minute")
    async with served(settings) as client:
        assert await login_codes(client, ["10.0.0.1", "10.0.0.2", "10.0.0.3"]) == [401, 401, 429]
        # guessed keys from "new" addresses are counted against the one real peer too
        codes = []
        for n in range(3):
            response = await client.get(
                "/api/v1/users/me",
                headers={"Authorization": "Bearer ntm_guess_x", "X-Forwarded-For": f"10.1.0.{n}"},
            )
            codes.append(response.status_code)
        assert codes == [401, 401, 429]


async def test_forwarded_for_is_believed_from_configured_proxies(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(login_rate_limit="2/minute", forwarded_allow_ips=["127.0.0.1", "::1"])
    async with served(settings) as client:
        # each forwarded client has its own budget ...
        assert await login_codes(client, ["10.0.0.1", "10.0.0.2", "10.0.0.3"]) == [401, 401, 401]
        # ... and one forwarded client is limited like any other
        assert await login_codes(client, ["10.0.0.9"] * 3) == [401, 401, 429]


async def test_a_proxy_outside_the_configured_list_is_not_believed(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(login_rate_limit="2/minute", forwarded_allow_ips=["192.0.2.1"])
    async with served(settings) as client:
        assert await login_codes(client, ["10.0.0.1", "10.0.0.2", "10.0.0.3"]) == [401, 401, 429]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def uvicorn_process(
    settings: Settings, workdir: Path, extra_env: dict[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    """``python -m uvicorn app.main:app`` as the README runs it, away from any .env file."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "FORWARDED_ALLOW_IPS"}
    env.update(
        {
            "DATABASE_URL": settings.database_url,
            "UPLOAD_DIR": str(settings.upload_dir),
            "SECRET_KEY": settings.secret_key,
            "WORKER_CONCURRENCY": "0",
            "LOGIN_RATE_LIMIT": "2/minute",
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
            **extra_env,
        }
    )
    log_path = workdir / "uvicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: ASYNC220 - a server process, started once
            [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(600):
                try:
                    if (await client.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None:
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail(f"uvicorn did not start:\n{log_path.read_text()[-2000:]}")
            assert process.poll() is None, log_path.read_text()[-2000:]
            yield client
    finally:
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.parametrize(
    ("extra_env", "expected"),
    [
        ({}, [401, 401, 429]),  # uvicorn's default trust of loopback is undone
        ({"FORWARDED_ALLOW_IPS": "127.0.0.1,::1"}, [401, 401, 401]),
    ],
    ids=["default", "configured"],
)
async def test_the_readme_command_trusts_no_proxy_unless_configured(
    settings: Settings, tmp_path: Path, extra_env: dict[str, str], expected: list[int]
) -> None:
    async with uvicorn_process(settings, tmp_path, extra_env) as client:
        assert await login_codes(client, ["10.0.0.1", "10.0.0.2", "10.0.0.3"]) == expected


def test_forwarded_allow_ips_must_be_addresses_or_networks(
    make_settings: Callable[..., Settings],
) -> None:
    assert make_settings(forwarded_allow_ips="10.0.0.1, 192.168.0.0/16").forwarded_allow_ips == [
        "10.0.0.1",
        "192.168.0.0/16",
    ]
    assert make_settings(forwarded_allow_ips="").forwarded_allow_ips == []
    with pytest.raises(ValueError, match="expected IP addresses, networks"):
        make_settings(forwarded_allow_ips="proxy.example.com")
