"""Counts of the live-update connections open in this process (statistics and metrics)."""

from __future__ import annotations

from app.metrics import SSE_CONNECTIONS, WEBSOCKET_CONNECTIONS

_open = {"websocket": 0, "sse": 0}


def opened(kind: str) -> None:
    _open[kind] += 1
    (WEBSOCKET_CONNECTIONS if kind == "websocket" else SSE_CONNECTIONS).inc()


def closed(kind: str) -> None:
    _open[kind] -= 1
    (WEBSOCKET_CONNECTIONS if kind == "websocket" else SSE_CONNECTIONS).dec()


def websocket_connections() -> int:
    """Open WebSocket connections in this process."""
    return _open["websocket"]


def sse_connections() -> int:
    """Open Server-Sent Events streams in this process."""
    return _open["sse"]
