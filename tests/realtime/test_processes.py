"""Live updates across real processes: workers elsewhere, database restarts, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import asyncpg
import httpx
import pytest
import websockets
from fastapi import FastAPI
from httpx_ws import aconnect_ws
from sqlalchemy import update

from app.api.live import MAX_FRAME_BYTES
from app.config import Settings
from app.events.publish import TaskEvent
from app.models import Task, User
from tests.conftest import ROOT
from tests.factories import app_sessions
from tests.queue.processors import PROCESSORS, PROCESSORS_SETTING
from tests.queue.test_processes import Workers
from tests.realtime.conftest import PostTask, receive, token


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"processors": PROCESSORS}


@pytest.fixture
def workers(settings: Settings) -> Iterator[Workers]:
    group = Workers(settings)
    yield group
    group.stop_all()


@pytest.mark.postgres_only
async def test_a_worker_in_another_process_streams_progress_to_this_ones_websocket(
    ws_client: httpx.AsyncClient, settings: Settings, user: User, workers: Workers
) -> None:
    response = await ws_client.post(
        "/api/v1/tasks/upload",
        files={"file": ("book.txt", b"Chapter 1\n\nWords.\n", "text/plain")},
        data={"processor": "slow"},
        headers={"Authorization": f"Bearer {token(settings, user)}"},
    )
    task_id = response.json()["id"]
    url = f"/api/v1/ws/tasks/c1?token={token(settings, user)}"
    async with aconnect_ws(url, ws_client) as ws:
        await ws.send_json({"type": "subscribe", "task_id": task_id})
        assert (await receive(ws))["type"] == "subscribed"
        assert (await receive(ws))["status"] == "pending"
        workers.start(slow_seconds=1.5)
        seen = []
        while not seen or seen[-1]["status"] not in ("completed", "failed"):
            seen.append(await receive(ws, 20))
    progress = [message["progress"] for message in seen]
    assert seen[-1]["status"] == "completed"
    assert progress == sorted(progress)
    assert progress[-1] == 100
    assert len([p for p in progress if 0 < p < 100]) >= 2  # live steps, not just the end


@pytest.mark.postgres_only
async def test_the_listener_survives_a_lost_connection_and_resends_state(
    ws_client: httpx.AsyncClient,
    app: FastAPI,
    settings: Settings,
    user: User,
    post_task: PostTask,
) -> None:
    task_id = await post_task(user)
    listener = app.state.listener
    url = f"/api/v1/ws/tasks/c1?token={token(settings, user)}"
    async with aconnect_ws(url, ws_client) as ws:
        await ws.send_json({"type": "subscribe", "task_id": task_id})
        await receive(ws)
        await receive(ws)
        # a change whose notification is lost: written while nobody listens for it
        async with app_sessions(app)() as session:
            await session.execute(
                update(Task)
                .where(Task.id == task_id)
                .values(progress=42, status="processing", event_seq=Task.event_seq + 1)
            )
            await session.commit()
        old_pid = listener.backend_pid
        admin = await asyncpg.connect(settings.database_url.replace("+asyncpg", ""))
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", old_pid)
            # after the reconnect, the current state is sent again
            resent = await receive(ws, 15)
            assert (resent["progress"], resent["status"]) == (42, "processing")
            assert listener.backend_pid != old_pid
            # and notifications from other processes flow again
            other = TaskEvent(task_id, user.id, 99, "processing", 77, "elsewhere", None, None)
            await admin.execute("SELECT pg_notify('ntm_task_events', $1)", other.to_json("other"))
            assert (await receive(ws, 5))["progress"] == 77
        finally:
            await admin.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.sqlite_only
async def test_sigterm_with_open_sse_and_websocket_exits_within_the_grace_period(
    settings: Settings, user: User, post_task: PostTask
) -> None:
    task_id = await post_task(user)
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "UPLOAD_DIR": str(settings.upload_dir),
        "SECRET_KEY": settings.secret_key,
        "WORKER_CONCURRENCY": "1",
        "SHUTDOWN_GRACE_SECONDS": "3",
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "json",
        "PROCESSORS": PROCESSORS_SETTING,
        "PYTHONPATH": str(ROOT),
    }
    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port)]
    command += ["--ws-max-size", str(MAX_FRAME_BYTES)]
    log_path = settings.upload_dir.parent / "api.log"
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(  # noqa: ASYNC220 - a server process, started once
            [*command, "--timeout-graceful-shutdown", "3"],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base) as client:
            for _ in range(200):
                try:
                    if (await client.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            credential = token(settings, user)
            sse_path = f"/api/v1/tasks/{task_id}/events?token={credential}"
            ws_url = f"ws://127.0.0.1:{port}/api/v1/ws/tasks/c?token={credential}"
            async with client.stream("GET", sse_path) as sse, websockets.connect(ws_url) as ws:
                lines = sse.aiter_lines()
                while not (await anext(lines)).startswith("data:"):
                    pass
                await ws.send(json.dumps({"type": "ping"}))
                assert json.loads(await ws.recv()) == {"type": "pong"}
                started = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                # the WebSocket is closed "going away" (not uvicorn's 1012), the SSE stream ends
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), timeout=10)
                assert closed.value.rcvd is not None
                assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
                    1001,
                    "The server is shutting down",
                )
                async with asyncio.timeout(10):
                    async for _ in lines:
                        pass
                code = await asyncio.to_thread(proc.wait, 15)
                took = time.monotonic() - started
        # uvicorn shuts down gracefully, then exits by the signal it caught (or 0)
        assert code in (0, -signal.SIGTERM)
        assert took < 8  # the grace period is 3 s
        logged = log_path.read_text()
        assert "service_stopping" in logged
        assert "Traceback" not in logged
        assert logged.count("token=[redacted]") == 2  # the SSE and WebSocket lines
        assert credential not in logged  # ?token= is redacted from every log line
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
