"""Rate limits: per credential, stricter for login, in memory and in Redis."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from app.config import Settings
from app.main import create_app
from app.services.rate_limit import RateLimiter
from tests.factories import app_sessions, bearer, make_user


async def _client_for(settings: Settings) -> Any:
    app = create_app(settings)
    return app, LifespanManager(app)


@pytest.mark.parametrize("limit_storage", ["memory://", "redis://127.0.0.1:6379"])
async def test_requests_over_the_limit_get_429_with_retry_after(
    make_settings: Callable[..., Settings], limit_storage: str
) -> None:
    settings = make_settings(rate_limit="3/minute", rate_limit_storage_uri=limit_storage)
    app = create_app(settings)
    # a fresh key space per run, so runs sharing the Redis server never collide
    app.router.lifespan_context = _with_prefix(app.router.lifespan_context, uuid.uuid4().hex)
    async with LifespanManager(app):
        user = await make_user(app_sessions(app))
        other = await make_user(app_sessions(app))
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as c:
            seen = []
            for _ in range(4):
                response = await c.get("/api/v1/users/me", headers=bearer(settings, user))
                seen.append((response.status_code, response.headers.get("ratelimit-remaining")))
            assert seen == [(200, "2"), (200, "1"), (200, "0"), (429, "0")]
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["code"] == "rate_limited"
            assert 1 <= int(response.headers["retry-after"]) <= 60
            assert response.headers["ratelimit-limit"] == "3"
            # another credential has its own budget
            fresh = await c.get("/api/v1/users/me", headers=bearer(settings, other))
            assert fresh.status_code == 200


def _with_prefix(lifespan: Any, prefix: str) -> Any:
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def wrapped(app: Any) -> Any:
        async with lifespan(app) as state:
            limiter = RateLimiter(app.state.settings.rate_limit_storage_uri, prefix=prefix)
            app.state.rate_limiter = limiter
            try:
                yield state
            finally:
                await limiter.close()

    return wrapped


async def test_login_has_its_own_stricter_limit(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(login_rate_limit="2/minute")
    app = create_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        codes = [
            (
                await c.post("/api/v1/auth/login", data={"username": "a@b.co", "password": "x"})
            ).status_code
            for _ in range(3)
        ]
    assert codes == [401, 401, 429]


async def test_health_and_metrics_are_not_limited(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(rate_limit="1/minute")
    app = create_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        codes = {(await c.get("/health")).status_code for _ in range(3)}
    assert codes == {200}


async def test_requests_without_a_valid_credential_are_limited_per_ip(
    make_settings: Callable[..., Settings],
) -> None:
    """Guessed keys, bad tokens and missing credentials share one per-IP budget."""
    settings = make_settings(anonymous_rate_limit="3/minute", rate_limit="100/minute")
    app = create_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        user = await make_user(app_sessions(app))
        attempts = [
            {"Authorization": "Bearer ntm_abcdefgh_guessed-secret"},
            {"Authorization": "Bearer not.a.jwt"},
            {},
            {"Authorization": "Bearer ntm_zyxwvuts_another-guess"},
        ]
        responses = [await c.get("/api/v1/tasks/", headers=h) for h in attempts]
        assert [r.status_code for r in responses] == [401, 401, 401, 429]
        assert [r.headers.get("ratelimit-remaining") for r in responses] == ["2", "1", "0", "0"]
        assert all(r.headers["ratelimit-limit"] == "3" for r in responses)
        assert all(int(r.headers["ratelimit-reset"]) <= 60 for r in responses)
        assert responses[0].headers["www-authenticate"] == "Bearer"
        over = responses[-1]
        assert over.headers["content-type"] == "application/problem+json"
        assert over.json()["code"] == "rate_limited"
        assert 1 <= int(over.headers["retry-after"]) <= 60
        # a valid credential from the same IP is counted on its own budget
        valid = await c.get("/api/v1/users/me", headers=bearer(settings, user))
        assert valid.status_code == 200
        assert valid.headers["ratelimit-limit"] == "100"
        # the SSE query token is a credential too: a bad one counts as anonymous
        sse = await c.get("/api/v1/tasks/x/events?token=ntm_bad_guess")
        assert sse.status_code == 429


async def test_the_anonymous_budget_is_per_client_ip(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(anonymous_rate_limit="1/minute")
    app = create_app(settings)
    async with LifespanManager(app):
        codes = []
        for ip in ("192.0.2.1", "192.0.2.1", "192.0.2.2"):
            transport = httpx.ASGITransport(app=app, client=(ip, 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                codes.append((await c.get("/api/v1/users/me")).status_code)
    assert codes == [401, 429, 401]
