"""WebSocket connections count against the rate limits like any other request."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from httpx_ws import WebSocketDisconnect, aconnect_ws

from app.config import Settings
from app.models import User
from tests.realtime.conftest import receive
from tests.realtime.test_websocket import WS, url


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"anonymous_rate_limit": "3/minute", "rate_limit": "4/minute"}


async def _close_of(client: httpx.AsyncClient, path: str) -> tuple[int, str]:
    async with aconnect_ws(path, client) as ws:
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_text(timeout=5)
    return closed.value.code, closed.value.reason or ""


async def test_guessed_tokens_are_limited_per_client_ip(ws_client: httpx.AsyncClient) -> None:
    closes = [await _close_of(ws_client, f"{WS}c{n}?token=ntm_guess_{n}") for n in range(5)]
    assert [code for code, _ in closes] == [1008, 1008, 1008, 1013, 1013]
    assert "invalid, expired or revoked" in closes[0][1]
    assert closes[3][1].startswith("Too many requests: retry in ")


async def test_a_users_connections_count_against_the_users_limit(
    ws_client: httpx.AsyncClient, settings: Settings, user: User
) -> None:
    # The fixture's own requests (creating the user) do not go through the gate.
    for _ in range(4):
        async with aconnect_ws(url(settings, user), ws_client) as ws:
            await ws.send_json({"type": "ping"})
            assert await receive(ws) == {"type": "pong"}
    code, reason = await _close_of(ws_client, url(settings, user))
    assert code == 1013
    assert reason.startswith("Too many requests")
