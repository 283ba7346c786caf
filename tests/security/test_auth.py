"""Sign-in, users, API keys, bad credentials, and authentication before validation."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import warnings
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.config import Settings
from app.models import ApiKey, Role, User
from app.services import users as user_service
from tests.factories import PASSWORD, app_sessions, bearer, make_user


@pytest.fixture
async def user(app: FastAPI) -> User:
    return await make_user(app_sessions(app), email="writer@example.com")


@pytest.fixture
async def admin(app: FastAPI) -> User:
    return await make_user(app_sessions(app), email="admin@example.com", role=Role.ADMIN)


async def login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/api/v1/auth/login", data={"username": email, "password": password})


async def test_login_gives_a_bearer_token(
    client: httpx.AsyncClient, user: User, settings: Settings
) -> None:
    response = await login(client, "writer@EXAMPLE.com", PASSWORD)
    assert response.status_code == 200
    body = response.json()
    assert (body["token_type"], body["expires_in"]) == (
        "bearer",
        settings.access_token_expire_minutes * 60,
    )
    claims = jwt.decode(body["access_token"], settings.secret_key, algorithms=["HS256"])
    assert claims["sub"] == user.id
    assert {"exp", "iat", "jti"} <= set(claims)
    me = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.json() == {
        "id": user.id, "email": "writer@example.com", "role": "user",
        "created_at": me.json()["created_at"],
    }  # fmt: skip


async def test_wrong_credentials_do_not_reveal_which_part_was_wrong(
    client: httpx.AsyncClient, user: User
) -> None:
    wrong_password = await login(client, "writer@example.com", "not the password")
    unknown_email = await login(client, "nobody@example.com", PASSWORD)
    for response in (wrong_password, unknown_email):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["detail"] == "Incorrect email or password"
    odd = await login(client, "ünïcødé@exämple.com", "x")
    assert odd.status_code == 401


async def test_admins_create_users(
    client: httpx.AsyncClient, admin: User, user: User, settings: Settings
) -> None:
    body = {"email": "new@Example.org", "password": "a-Strong-passw0rd", "role": "user"}
    created = await client.post("/api/v1/users", json=body, headers=bearer(settings, admin))
    assert created.status_code == 201
    assert (created.json()["email"], created.json()["role"]) == ("new@example.org", "user")
    assert (await login(client, "new@example.org", "a-Strong-passw0rd")).status_code == 200
    again = await client.post("/api/v1/users", json=body, headers=bearer(settings, admin))
    assert (again.status_code, again.json()["code"]) == (409, "email_taken")
    forbidden = await client.post("/api/v1/users", json=body, headers=bearer(settings, user))
    assert forbidden.status_code == 403
    for weak in ("short1", "aaaaaaaaaaaaaaa", "abcdefghijkl"):
        response = await client.post(
            "/api/v1/users", json={**body, "email": "w@example.org", "password": weak},
            headers=bearer(settings, admin),
        )  # fmt: skip
        assert (response.status_code, response.json()["code"]) == (422, "weak_password"), weak
    for email in ("not-an-email", "a b@example.org", "ünï@"):
        response = await client.post(
            "/api/v1/users", json={**body, "email": email}, headers=bearer(settings, admin)
        )
        assert response.status_code == 422, email


async def test_api_keys_are_shown_once_hashed_and_revocable(
    client: httpx.AsyncClient, user: User, settings: Settings, app: FastAPI
) -> None:
    headers = bearer(settings, user)
    created = await client.post("/api/v1/auth/api-keys", json={"name": "ci"}, headers=headers)
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith(f"ntm_{created.json()['prefix']}_")
    async with app_sessions(app)() as session:
        row = (await session.execute(select(ApiKey))).scalar_one()
        assert key not in (row.key_hash, row.prefix)
        assert row.last_used_at is None
    with_key = {"Authorization": f"Bearer {key}"}
    assert (await client.get("/api/v1/users/me", headers=with_key)).json()["id"] == user.id
    async with app_sessions(app)() as session:
        assert (await session.execute(select(ApiKey.last_used_at))).scalar() is not None
    listed = (await client.get("/api/v1/auth/api-keys", headers=headers)).json()
    assert [k["name"] for k in listed] == ["ci"]
    assert "key" not in listed[0]
    revoked = await client.delete(f"/api/v1/auth/api-keys/{listed[0]['id']}", headers=headers)
    assert revoked.status_code == 204
    assert (await client.get("/api/v1/users/me", headers=with_key)).status_code == 401
    again = await client.delete(f"/api/v1/auth/api-keys/{listed[0]['id']}", headers=headers)
    assert again.status_code == 404


def _forge(claims: dict[str, Any], header: dict[str, Any]) -> str:
    encode = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{encode(header)}.{encode(claims)}."


async def test_bad_credentials_are_401_never_500(
    client: httpx.AsyncClient, user: User, settings: Settings
) -> None:
    now = int(time.time())
    claims = {"sub": user.id, "iat": now, "exp": now + 600, "jti": "x", "typ": "access"}
    good = jwt.encode(claims, settings.secret_key, algorithm="HS256")
    tampered = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    expired = jwt.encode({**claims, "exp": now - 10}, settings.secret_key, algorithm="HS256")
    wrong_key = jwt.encode(claims, "another-secret-key-of-enough-length", algorithm="HS256")
    none_alg = _forge(claims, {"alg": "none", "typ": "JWT"})
    with warnings.catch_warnings():  # a short key for HS384 is the point here
        warnings.simplefilter("ignore")
        rs_confusion = jwt.encode(claims, settings.secret_key, algorithm="HS384")
    tokens = {
        "malformed": "not-a-token",
        "tampered": tampered,
        "expired": expired,
        "wrong key": wrong_key,
        "alg none": none_alg,
        "other algorithm": rs_confusion,
        "unknown user": jwt.encode(
            {**claims, "sub": "ghost"}, settings.secret_key, algorithm="HS256"
        ),
        "missing claims": jwt.encode({"sub": user.id}, settings.secret_key, algorithm="HS256"),
        "api key shape": "ntm_deadbeef_whatever",
        "huge": "x" * 9000,
    }
    for label, token in tokens.items():
        response = await client.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401, label
        assert response.headers["www-authenticate"] == "Bearer", label
        assert response.headers["content-type"] == "application/problem+json"
    assert (
        await client.get("/api/v1/users/me", headers={"Authorization": "Basic abc"})
    ).status_code == 401
    expired_response = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {expired}"}
    )
    assert expired_response.json()["code"] == "token_expired"
    raw = await client.get(
        "/api/v1/users/me", headers=[(b"authorization", "Bearer tökén".encode())]
    )
    assert raw.status_code == 401


async def test_authentication_comes_before_validation_and_routing(
    client: httpx.AsyncClient,
) -> None:
    attempts = [
        (
            "POST",
            "/api/v1/projects",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
        ),
        ("GET", "/api/v1/tasks/does-not-exist", {}),
        ("GET", "/api/v1/tasks/", {"params": {"page": "zero"}}),
        ("POST", "/api/v1/tasks/upload", {"content": b"garbage"}),
        ("GET", "/api/v1/unknown/route", {}),
    ]
    for method, path, kwargs in attempts:
        response = await client.request(method, path, **kwargs)
        assert response.status_code == 401, (method, path)


async def test_admin_bootstrap_is_idempotent_and_safe_when_concurrent(
    sessions: Any, make_settings: Any
) -> None:
    settings = make_settings(admin_email="Boss@Example.com", admin_password="S3cure-admin-pass")
    users = await asyncio.gather(*(user_service.ensure_admin(sessions, settings) for _ in range(4)))
    assert {u.id for u in users if u is not None} == {users[0].id}  # type: ignore[union-attr]
    assert await user_service.ensure_admin(sessions, settings) is not None
    async with sessions() as session:
        admins = (await session.execute(select(User))).scalars().all()
    assert [(a.email, a.role) for a in admins] == [("Boss@example.com", "admin")]
    assert (await user_service.ensure_admin(sessions, make_settings())) is None


async def test_api_key_lookup_is_one_indexed_query(app: FastAPI, user: User) -> None:
    """The key is found by its unique prefix, not by scanning and hashing every key."""
    async with app_sessions(app)() as session:
        for i in range(20):
            await user_service.create_api_key(session, user, f"k{i}")
        _key, secret = await user_service.create_api_key(session, user, "mine")
        await session.commit()
        count = await session.execute(select(func.count()).select_from(ApiKey))
        assert count.scalar() == 21
    from app.services import auth

    statements: list[str] = []
    from sqlalchemy import event

    engine = app.state.session_factory.kw["bind"]

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        async with app_sessions(app)() as session:
            found = await auth.user_for_api_key(session, secret)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert found.id == user.id
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1
    assert "api_keys.prefix = " in selects[0]
