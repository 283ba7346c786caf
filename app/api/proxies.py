"""Who the client is: the connection's peer, or a proxy's word only when configured.

The login limit and the anonymous limit count per client IP, so the IP must
not be whatever a client writes in ``X-Forwarded-For``. uvicorn believes
``X-Forwarded-For`` and ``X-Forwarded-Proto`` from ``FORWARDED_ALLOW_IPS``,
127.0.0.1 and ::1 by default, and rewrites ``scope["client"]`` before the app
runs: anyone on the machine (or a local tunnel that passes headers through)
could then pick a fresh IP per request. The service decides instead:

- the client is the socket's peer, read from the server's transport when the
  server exposes it (uvicorn's ``send`` is a method of the object holding the
  transport), which undoes any rewrite a server made on its own;
- X-Forwarded-For / X-Forwarded-Proto are then applied (uvicorn's own
  ``ProxyHeadersMiddleware``) only when that peer is one of the
  ``FORWARDED_ALLOW_IPS`` of the service's settings, which default to none.

So ``uvicorn app.main:app`` and ``start_local.py`` are safe by default, and a
deployment behind a reverse proxy sets ``FORWARDED_ALLOW_IPS`` to the proxy's
address.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware


def socket_peer(send: Send) -> tuple[tuple[str, int], bool] | None:
    """The peer address of the connection behind ``send`` and whether it is TLS, when the
    server exposes its transport (uvicorn does); None otherwise."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    # duck-typed: uvloop's transports do not derive from asyncio.BaseTransport
    extra_info: Any = getattr(transport, "get_extra_info", None)
    if not callable(extra_info):
        return None
    peer: Any = extra_info("peername")
    if not isinstance(peer, tuple | list) or len(peer) < 2:
        return None  # a Unix socket: no address to speak of
    host, port = peer[0], peer[1]
    if not isinstance(host, str) or not isinstance(port, int):
        return None
    return (host, port), bool(extra_info("sslcontext"))


class ClientAddressMiddleware:
    """Sets ``scope["client"]`` (and ``scheme``) as described in the module docstring.

    It must receive the server's own ``send``, so it wraps the whole app,
    outside Starlette's error middleware (see ``app.main.NovelTaskManager``).
    """

    def __init__(self, app: ASGIApp, forwarded_allow_ips: list[str]) -> None:
        self.app = app
        self.inner: ASGIApp = app
        if forwarded_allow_ips:  # uvicorn's types are its own spelling of Starlette's
            proxied: Any = ProxyHeadersMiddleware(app, trusted_hosts=forwarded_allow_ips)  # type: ignore[arg-type]
            self.inner = proxied

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        found = socket_peer(send)
        if found is not None:
            peer, tls = found
            scope["client"] = peer
            base = "http" if scope["type"] == "http" else "ws"
            scope["scheme"] = base + ("s" if tls else "")
        await self.inner(scope, receive, send)
