"""The local admin that ``start_local.py`` creates and prints."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

from app.config import Settings
from app.main import create_app
from tools import local_admin


def test_credentials_are_generated_once_and_kept_private(tmp_path: Path) -> None:
    first = local_admin.load_or_create(tmp_path / "data")
    second = local_admin.load_or_create(tmp_path / "data")
    assert first == second
    assert len(first.password) >= 20
    assert stat.S_IMODE(first.path.stat().st_mode) == 0o600
    assert [p.name for p in first.path.parent.iterdir()] == [local_admin.CREDENTIALS_FILE]


async def test_one_local_api_key_is_kept_reused_and_replaced_once_revoked(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    admin = local_admin.load_or_create(data_dir)
    settings = make_settings(admin_email=admin.email, admin_password=admin.password)
    first = await local_admin.bootstrap(settings, data_dir)
    again = await local_admin.bootstrap(settings, data_dir)  # a second start: the same key
    assert first.created
    assert not again.created
    assert (again.key, again.id) == (first.key, first.id)
    assert first.path == data_dir / local_admin.API_KEY_FILE
    assert stat.S_IMODE(first.path.stat().st_mode) == 0o600
    assert sorted(p.name for p in data_dir.iterdir()) == sorted(
        [local_admin.CREDENTIALS_FILE, local_admin.API_KEY_FILE]
    )
    app = create_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        auth = {"Authorization": f"Bearer {first.key}"}
        me = await client.get("/api/v1/users/me", headers=auth)
        assert me.json()["email"] == admin.email
        assert me.json()["role"] == "admin"
        keys = (await client.get("/api/v1/auth/api-keys", headers=auth)).json()
        assert [(k["id"], k["name"]) for k in keys] == [(first.id, local_admin.API_KEY_NAME)]
        login = await client.post(
            "/api/v1/auth/login", data={"username": admin.email, "password": admin.password}
        )
        assert login.status_code == 200
        # the route the banner prints revokes it; the next start makes and keeps a new one
        revoked = await client.delete(f"/api/v1/auth/api-keys/{first.id}", headers=auth)
        assert revoked.status_code == 204
        assert (await client.get("/api/v1/users/me", headers=auth)).status_code == 401
    replaced = await local_admin.bootstrap(settings, data_dir)
    assert replaced.created
    assert replaced.key != first.key
    assert await local_admin.bootstrap(settings, data_dir) == replaced.__class__(
        replaced.key, replaced.id, replaced.path, created=False
    )


async def test_an_unreadable_or_foreign_key_file_is_replaced(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    admin = local_admin.load_or_create(data_dir)
    settings = make_settings(admin_email=admin.email, admin_password=admin.password)
    path = data_dir / local_admin.API_KEY_FILE
    for content in ("not json", '{"id": "x", "key": "ntm_abc_def"}', '["a list"]'):
        path.write_text(content, encoding="utf-8")
        fresh = await local_admin.bootstrap(settings, data_dir)
        assert fresh.created
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
