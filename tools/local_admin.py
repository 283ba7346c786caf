"""The local admin of ``start_local.py``: generated once, kept under the data dir.

The first local start generates a password for ``admin@novel.local``, writes
it to ``data/admin-credentials.json`` (permissions 0600, written to a temp
name then renamed) and later starts reuse it. ``ADMIN_EMAIL`` and
``ADMIN_PASSWORD`` in the environment or ``.env`` take precedence.

The admin's API key for scripts and ``curl`` is kept the same way, in
``data/local-api-key.json``: every start reuses it while it still works, and
makes (and keeps) a new one only when it does not (revoked with
``DELETE /api/v1/auth/api-keys/{id}``, or another database or admin).
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from app.config import Settings
from app.database import create_engine_for, create_session_factory
from app.errors import Unauthorized, Unprocessable
from app.events.bus import EventBus
from app.services.auth import user_for_api_key
from app.services.users import check_password, create_api_key, ensure_admin

DEFAULT_EMAIL = "admin@novel.local"
CREDENTIALS_FILE = "admin-credentials.json"
API_KEY_FILE = "local-api-key.json"
API_KEY_NAME = "start_local"


@dataclass(frozen=True, slots=True)
class LocalAdmin:
    email: str
    password: str
    path: Path


@dataclass(frozen=True, slots=True)
class LocalApiKey:
    key: str
    id: str
    path: Path
    created: bool
    """True when this start made it (the stored one was missing or no longer works)."""


def load_or_create(data_dir: Path) -> LocalAdmin:
    """The stored local admin credentials, generated and saved (0600) on first use."""
    path = data_dir / CREDENTIALS_FILE
    if path.exists():
        stored = json.loads(path.read_text(encoding="utf-8"))
        return LocalAdmin(stored["email"], stored["password"], path)
    admin = LocalAdmin(DEFAULT_EMAIL, _strong_password(), path)
    _write_private(path, {"email": admin.email, "password": admin.password})
    return admin


def _write_private(path: Path, content: dict[str, str]) -> None:
    """Write JSON readable by the owner only (0600): a temp name, then an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(content, handle)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _stored_key(path: Path) -> tuple[str, str] | None:
    """The stored (key, id), or None when there is none or it cannot be read."""
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        key, key_id = stored["key"], stored["id"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(key, str) or not isinstance(key_id, str):
        return None
    return key, key_id


def _strong_password() -> str:
    while True:
        password = secrets.token_urlsafe(18)
        try:
            check_password(password)
        except Unprocessable:
            continue
        return password


async def bootstrap(settings: Settings, data_dir: Path) -> LocalApiKey:
    """Create the admin of ``settings`` if missing; return their local API key.

    The key kept in ``data_dir`` is reused while it authenticates as that admin;
    otherwise a new one is created and kept instead.
    """
    path = data_dir / API_KEY_FILE
    engine = create_engine_for(settings)
    try:
        sessions = create_session_factory(engine, EventBus())
        admin = await ensure_admin(sessions, settings)
        if admin is None:
            raise SystemExit("ADMIN_EMAIL and ADMIN_PASSWORD are needed for the local admin")
        stored = _stored_key(path)
        async with sessions() as session:
            if stored is not None:
                try:
                    owner = await user_for_api_key(session, stored[0])
                except Unauthorized:
                    owner = None
                if owner is not None and owner.id == admin.id:
                    await session.commit()  # its last_used_at
                    return LocalApiKey(stored[0], stored[1], path, created=False)
            row, key = await create_api_key(session, admin, API_KEY_NAME)
            await session.commit()
        _write_private(path, {"id": row.id, "key": key})
        return LocalApiKey(key, row.id, path, created=True)
    finally:
        await engine.dispose()
