"""The WebSocket protocol of API.md, message by message."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import httpx
import pytest
import websockets
from fastapi import FastAPI
from httpx_ws import WebSocketDisconnect, aconnect_ws
from sqlalchemy import select

from app.config import Settings
from app.events import connections
from app.events.publish import TaskEvent
from app.models import Role, Task, User
from app.services import users as user_service
from tests.factories import app_sessions, make_user
from tests.realtime.conftest import PostTask, change_task, nothing_more, receive, token

WS = "/api/v1/ws/tasks/"


def url(settings: Settings, user: User, client_id: str = "c1") -> str:
    return f"{WS}{client_id}?token={token(settings, user)}"


async def test_subscribe_gets_subscribed_then_current_state_then_updates(
    ws_client: httpx.AsyncClient, app: FastAPI, settings: Settings, user: User, post_task: PostTask
) -> None:
    task_id = await post_task(user)
    async with aconnect_ws(url(settings, user), ws_client) as ws:
        await ws.send_json({"type": "subscribe", "task_id": task_id})
        assert await receive(ws) == {"type": "subscribed", "task_id": task_id}
        current = await receive(ws)
        assert current == {
            "type": "task_update",
            "task_id": task_id,
            "status": "pending",
            "progress": 0,
            "stage": "queued",
            "result_url": None,
            "error_message": None,
        }
        await change_task(app, task_id, status="processing", progress=40, stage="analysing")
        update = await receive(ws)
        assert (update["status"], update["progress"], update["stage"]) == (
            "processing",
            40,
            "analysing",
        )
        await ws.send_json({"type": "unsubscribe", "task_id": task_id})
        await ws.send_json({"type": "ping"})
        assert await receive(ws) == {"type": "pong"}
        await change_task(app, task_id, progress=60)
        assert await nothing_more(ws)


async def test_updates_of_a_task_arrive_in_order_and_end_at_100(
    ws_client: httpx.AsyncClient, app: FastAPI, settings: Settings, user: User, post_task: PostTask
) -> None:
    task_id = await post_task(user)
    async with aconnect_ws(url(settings, user), ws_client) as ws:
        await ws.send_json({"type": "subscribe", "task_id": task_id})
        await receive(ws)
        await receive(ws)
        for percent in range(5, 100, 5):
            await change_task(app, task_id, status="processing", progress=percent)
        await change_task(app, task_id, status="completed", progress=100, stage="done")
        seen = []
        while not seen or seen[-1]["status"] != "completed":
            seen.append(await receive(ws))
    progress = [message["progress"] for message in seen]
    assert progress == sorted(progress)
    assert progress == [*range(5, 100, 5), 100]


async def test_wildcard_follows_every_visible_task_and_starts_with_active_ones(
    ws_client: httpx.AsyncClient, app: FastAPI, settings: Settings, user: User, post_task: PostTask
) -> None:
    other = await make_user(app_sessions(app))
    mine = await post_task(user)
    theirs = await post_task(other)
    async with aconnect_ws(url(settings, user), ws_client) as ws:
        await ws.send_json({"type": "subscribe", "task_id": "*"})
        assert await receive(ws) == {"type": "subscribed", "task_id": "*"}
        first = await receive(ws)
        assert first["task_id"] == mine
        created_later = await post_task(user)
        await change_task(app, theirs, status="processing", progress=10)
        await change_task(app, created_later, status="processing", progress=20)
        created = await receive(ws)  # a new task shows up at once
        assert (created["task_id"], created["status"]) == (created_later, "pending")
        later = await receive(ws)
        assert (later["task_id"], later["progress"]) == (created_later, 20)
        assert await nothing_more(ws)  # the other user's task never shows


async def test_the_wildcard_starts_with_hundreds_of_active_tasks_without_overflowing(
    server: str, app: FastAPI, settings: Settings, user: User
) -> None:
    # more active tasks than the 256-message queue holds, and than the 500 sent at most
    async with app_sessions(app)() as session:
        session.add_all(
            Task(
                owner_id=user.id,
                file_name=f"book-{n:03}.txt",
                file_size=1,
                file_type="text/plain",
                checksum="sha256:0",
                event_seq=1,
            )
            for n in range(300)
        )
        await session.commit()
        active = set(await session.scalars(select(Task.id).where(Task.owner_id == user.id)))
    assert len(active) == 300 > app.state.hub.queue_size
    ws_url = f"ws://{server}{url(settings, user)}"
    async with websockets.connect(ws_url) as ws:  # a client that reads all the time
        await ws.send(json.dumps({"type": "subscribe", "task_id": "*"}))
        assert json.loads(await ws.recv()) == {"type": "subscribed", "task_id": "*"}
        seen = []
        for _ in range(300):
            message = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
            assert (message["type"], message["status"]) == ("task_update", "pending")
            seen.append(message["task_id"])
        assert len(seen) == 300
        assert set(seen) == active
        # still connected, and live: a change arrives after the initial state
        await change_task(app, seen[-1], status="processing", progress=40)
        update = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
        assert (update["task_id"], update["progress"]) == (seen[-1], 40)
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), timeout=10)) == {"type": "pong"}


async def test_a_frame_over_the_size_limit_is_refused_from_its_header(
    server: str, settings: Settings, user: User
) -> None:
    ws_url = f"ws://{server}{url(settings, user)}"
    # uvicorn's default would read up to 16 MiB and only then let the app refuse it
    async with websockets.connect(ws_url, max_size=None) as ws:
        await ws.send(json.dumps({"type": "ping", "pad": "x" * 1_000_000}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009  # message too big


async def test_admins_see_every_task_with_the_wildcard(
    ws_client: httpx.AsyncClient, app: FastAPI, settings: Settings, user: User, post_task: PostTask
) -> None:
    admin = await make_user(app_sessions(app), role=Role.ADMIN)
    async with aconnect_ws(url(settings, admin), ws_client) as ws:
        await ws.send_json({"type": "subscribe", "task_id": "*"})
        assert await receive(ws) == {"type": "subscribed", "task_id": "*"}
        task_id = await post_task(user)
        assert (await receive(ws))["task_id"] == task_id
        await change_task(app, task_id, status="processing", progress=30)
        update = await receive(ws)
        assert (update["task_id"], update["progress"]) == (task_id, 30)


async def test_another_users_task_is_task_not_found_and_the_connection_stays(
    ws_client: httpx.AsyncClient, app: FastAPI, settings: Settings, user: User, post_task: PostTask
) -> None:
    other = await make_user(app_sessions(app))
    theirs = await post_task(other)
    async with aconnect_ws(url(settings, user), ws_client) as ws:
        for task_id in (theirs, "no-such-task"):
            await ws.send_json({"type": "subscribe", "task_id": task_id})
            error = await receive(ws)
            assert error["type"] == "error"
            assert error["code"] == "task_not_found"
        await change_task(app, theirs, status="processing", progress=50)
        assert await nothing_more(ws)
        await ws.send_json({"type": "ping"})
        assert await receive(ws) == {"type": "pong"}


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "malformed_frame"),
        ("[1, 2]", "malformed_frame"),
        ('{"task_id": "x"}', "malformed_frame"),
        ('{"type": 5}', "malformed_frame"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"type": "subscribe"}', "invalid_task_id"),
        ('{"type": "subscribe", "task_id": 12}', "invalid_task_id"),
        ('{"type": "subscribe", "task_id": ""}', "invalid_task_id"),
        ('{"type": "ping", "pad": "' + "x" * 5000 + '"}', "malformed_frame"),
    ],
)
async def test_bad_frames_get_an_error_and_the_connection_stays_open(
    ws_client: httpx.AsyncClient, settings: Settings, user: User, frame: str, code: str
) -> None:
    async with aconnect_ws(url(settings, user), ws_client) as ws:
        await ws.send_text(frame)
        error = await receive(ws)
        assert error["type"] == "error"
        assert error["code"] == code
        assert error["detail"]
        await ws.send_json({"type": "ping"})
        assert await receive(ws) == {"type": "pong"}


async def test_a_binary_frame_is_a_malformed_frame(
    ws_client: httpx.AsyncClient, settings: Settings, user: User
) -> None:
    async with aconnect_ws(url(settings, user), ws_client) as ws:
        await ws.send_bytes(b'{"type": "ping"}')
        assert (await receive(ws))["code"] == "malformed_frame"
        await ws.send_json({"type": "ping"})
        assert await receive(ws) == {"type": "pong"}


@pytest.mark.parametrize(
    ("credential", "reason"),
    [
        ("", "pass ?token="),
        ("?token=garbage", "invalid, expired or revoked"),
        ("?token=ntm_nope_nope", "invalid, expired or revoked"),
    ],
)
async def test_unauthenticated_connections_are_closed_with_1008(
    ws_client: httpx.AsyncClient, credential: str, reason: str
) -> None:
    async with aconnect_ws(f"{WS}c1{credential}", ws_client) as ws:
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_text(timeout=5)
    assert closed.value.code == 1008
    assert reason in (closed.value.reason or "")


async def test_api_keys_in_the_authorization_header_work_too(
    ws_client: httpx.AsyncClient, app: FastAPI, user: User
) -> None:
    async with app_sessions(app)() as session:
        _, secret = await user_service.create_api_key(session, user, "ws")
        await session.commit()
    async with aconnect_ws(
        f"{WS}c1", ws_client, headers={"Authorization": f"Bearer {secret}"}
    ) as ws:
        await ws.send_json({"type": "ping"})
        assert await receive(ws) == {"type": "pong"}


async def test_connections_with_the_same_client_id_do_not_clobber_each_other(
    ws_client: httpx.AsyncClient, app: FastAPI, settings: Settings, user: User, post_task: PostTask
) -> None:
    task_id = await post_task(user)
    async with (
        aconnect_ws(url(settings, user, "same"), ws_client) as first,
        aconnect_ws(url(settings, user, "same"), ws_client) as second,
    ):
        for ws in (first, second):
            await ws.send_json({"type": "subscribe", "task_id": task_id})
            await receive(ws)
            await receive(ws)
        assert connections.websocket_connections() == 2
        await change_task(app, task_id, status="processing", progress=70)
        for ws in (first, second):
            assert (await receive(ws))["progress"] == 70
    for _ in range(50):
        if connections.websocket_connections() == 0:
            break
        await asyncio.sleep(0.02)
    assert connections.websocket_connections() == 0


async def test_resubscribing_sends_the_current_state_again(
    ws_client: httpx.AsyncClient, settings: Settings, user: User, post_task: PostTask
) -> None:
    task_id = await post_task(user)
    async with aconnect_ws(url(settings, user), ws_client) as ws:
        for _ in range(2):
            await ws.send_json({"type": "subscribe", "task_id": task_id})
            assert (await receive(ws))["type"] == "subscribed"
            assert (await receive(ws))["task_id"] == task_id


async def test_a_client_that_stops_reading_is_dropped_and_never_slows_others(
    server: str, app: FastAPI, settings: Settings, user: User
) -> None:
    host, port = server.split(":")
    uvicorn_server = app.state.test_server
    for listening in uvicorn_server.servers[0].sockets:  # accepted sockets inherit it
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    ws_path = f"ws://{server}/api/v1/ws/tasks/slow?token={token(settings, user)}"
    good_path = f"ws://{server}/api/v1/ws/tasks/good?token={token(settings, user)}"
    # max_queue=1: the client library stops reading the socket once one frame waits
    slow = await websockets.connect(ws_path, sock=sock, max_queue=1)
    async with websockets.connect(good_path) as good:
        await slow.send(json.dumps({"type": "subscribe", "task_id": "*"}))
        await good.send(json.dumps({"type": "subscribe", "task_id": "*"}))
        assert json.loads(await good.recv())["type"] == "subscribed"
        hub = app.state.hub
        for _ in range(100):
            if sum(1 for s in hub.subscribers() if s.wildcard) == 2:
                break
            await asyncio.sleep(0.02)
        late = []
        for seq in range(1, 5001):
            app.state.bus.publish(_event(user, "flood", seq, "x" * 1000))
            if seq % 100 == 0:
                sent = time.perf_counter()
                app.state.bus.publish(_event(user, "ping-task", seq // 100, None))
                while True:
                    message = json.loads(await asyncio.wait_for(good.recv(), timeout=5))
                    if message["task_id"] == "ping-task":
                        late.append(time.perf_counter() - sent)
                        break
            await asyncio.sleep(0)
        # the good client kept getting its updates promptly (generous bound: 1 s)
        assert max(late) < 1.0
        for _ in range(200):
            if len(hub.subscribers()) == 1:
                break
            await asyncio.sleep(0.05)
        assert len(hub.subscribers()) == 1, "the slow client was not dropped"
        assert hub.subscribers()[0].wildcard
    slow.transport.abort()


def _event(user: User, task_id: str, seq: int, error: str | None) -> TaskEvent:
    return TaskEvent(
        task_id=task_id,
        owner_id=user.id,
        seq=seq,
        status="processing",
        progress=seq % 100,
        stage="flood",
        result_url=None,
        error_message=error,
    )
