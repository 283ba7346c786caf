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


async def test_bootstrap_creates_the_admin_and_a_working_api_key(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    admin = local_admin.load_or_create(tmp_path / "data")
    settings = make_settings(admin_email=admin.email, admin_password=admin.password)
    key = await local_admin.bootstrap(settings)
    again = await local_admin.bootstrap(settings)  # a second start: same admin, new key
    assert key != again
    app = create_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        for credential in (key, again):
            me = await client.get(
                "/api/v1/users/me", headers={"Authorization": f"Bearer {credential}"}
            )
            assert me.json()["email"] == admin.email
            assert me.json()["role"] == "admin"
        login = await client.post(
            "/api/v1/auth/login", data={"username": admin.email, "password": admin.password}
        )
        assert login.status_code == 200
