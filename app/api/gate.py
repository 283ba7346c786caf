"""The /api/v1 gate: authentication first, then the rate limit, before any routing.

FastAPI parses and validates a request body before it runs dependencies, so
an auth dependency alone would let a bad body answer 422 before 401. This pure
ASGI middleware authenticates every /api/v1 HTTP request (except login) up
front, stores the user in the request state for ``CurrentUser``, and counts
the request against ``RATE_LIMIT`` per credential, ``LOGIN_RATE_LIMIT`` per
client IP for the login route, and ``ANONYMOUS_RATE_LIMIT`` per client IP for
a request without a valid credential (its 401 turns into 429 once the IP is
over). Every /api/v1 response carries the ``RateLimit-*`` headers.
WebSocket connections authenticate in their handler (they must be accepted
before they can be closed with 1008).

The gate opens the request's one session (its unit of work, ``app.database``):
it authenticates with it, commits what that touched (an API key's
``last_used_at``), leaves it in the request state for ``SessionDep`` and
closes it when the response is done.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import Headers, MutableHeaders, QueryParams
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.problems import problem_response
from app.config import Settings
from app.database import REQUEST_SESSION
from app.errors import AppError, RateLimited, Unauthorized
from app.models import User
from app.services import auth as auth_service
from app.services.rate_limit import Decision

API_PREFIX = "/api/v1/"
LOGIN_PATH = "/api/v1/auth/login"
MAX_TOKEN_CHARS = 4096


def bearer_token(headers: Headers) -> str | None:
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip()


async def authenticate(session: Any, settings: Settings, token: str) -> User:
    """The user behind ``token`` (a JWT or an API key); ``Unauthorized`` otherwise.

    Used by the gate and by the WebSocket handler, which authenticates itself.
    Commits ``session`` (last_used_at of API keys) and detaches the user from it, so a
    rollback of the request's work later (which expires what the session holds) leaves
    the caller readable.
    """
    if len(token) > MAX_TOKEN_CHARS or "\x00" in token:  # NUL: no credential, no lookup
        raise Unauthorized("The credential is not valid", code="invalid_token")
    user = await auth_service.authenticate_token(session, settings, token)
    await session.commit()
    session.expunge(user)
    return user


def _accepts_query_token(path: str) -> bool:
    """SSE streams: browsers' EventSource cannot send headers."""
    return path.endswith("/events")


class ApiGateMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        gated = scope["type"] == "http" and path.startswith(API_PREFIX)
        if not gated or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        async with state.session_factory() as session:
            await self._gate(scope, receive, send, path, session)

    async def _gate(
        self, scope: Scope, receive: Receive, send: Send, path: str, session: Any
    ) -> None:
        state = scope["app"].state
        settings, limiter = state.settings, state.rate_limiter
        decision: Decision | None = None
        try:
            if path == LOGIN_PATH:
                key = f"login:{client_ip(scope)}"
                decision = await limiter.hit(settings.login_rate_limit, key)
            else:
                try:
                    user = await _user_of(session, settings, scope, path)
                except Unauthorized:
                    key = f"anonymous:{client_ip(scope)}"
                    decision = await limiter.hit(settings.anonymous_rate_limit, key)
                    if decision.allowed:
                        raise
                else:
                    scope.setdefault("state", {}).update({"user": user, REQUEST_SESSION: session})
                    decision = await limiter.hit(settings.rate_limit, f"user:{user.id}")
            if not decision.allowed:
                raise RateLimited(
                    f"Too many requests: the limit is {decision.limit} per window; "
                    f"retry in {decision.reset_seconds} s",
                    headers={"Retry-After": str(max(1, decision.reset_seconds))},
                )
        except AppError as exc:
            extra = {**exc.headers, **_rate_headers(decision)}
            await problem_response(exc.to_problem(path), exc.status, extra)(scope, receive, send)
            return

        rate_headers = _rate_headers(decision)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in rate_headers.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def client_ip(scope: Scope) -> str:
    """The client's address as the app sees it (see ``app.api.client``)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


async def _user_of(session: Any, settings: Settings, scope: Scope, path: str) -> User:
    """The user behind the request's credential; ``Unauthorized`` without a valid one."""
    token = bearer_token(Headers(scope=scope))
    if token is None and _accepts_query_token(path):
        token = QueryParams(scope.get("query_string", b"")).get("token") or None
    if token is None:
        raise Unauthorized("Not authenticated: send Authorization: Bearer <token>")
    return await authenticate(session, settings, token)


def _rate_headers(decision: Decision | None) -> dict[str, str]:
    if decision is None:
        return {}
    return {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(decision.reset_seconds),
    }
