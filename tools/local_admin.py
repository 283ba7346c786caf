"""The local admin of ``start_local.py``: generated once, kept under the data dir.

The first local start generates a password for ``admin@novel.local``, writes
it to ``data/admin-credentials.json`` (permissions 0600, written to a temp
name then renamed) and later starts reuse it. ``ADMIN_EMAIL`` and
``ADMIN_PASSWORD`` in the environment or ``.env`` take precedence.
Each start also prints a fresh API key for scripts and ``curl``.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from app.config import Settings
from app.database import create_engine_for, create_session_factory
from app.errors import Unprocessable
from app.services.users import check_password, create_api_key, ensure_admin

DEFAULT_EMAIL = "admin@novel.local"
CREDENTIALS_FILE = "admin-credentials.json"


@dataclass(frozen=True, slots=True)
class LocalAdmin:
    email: str
    password: str
    path: Path


def load_or_create(data_dir: Path) -> LocalAdmin:
    """The stored local admin credentials, generated and saved (0600) on first use."""
    path = data_dir / CREDENTIALS_FILE
    if path.exists():
        stored = json.loads(path.read_text(encoding="utf-8"))
        return LocalAdmin(stored["email"], stored["password"], path)
    data_dir.mkdir(parents=True, exist_ok=True)
    admin = LocalAdmin(DEFAULT_EMAIL, _strong_password(), path)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump({"email": admin.email, "password": admin.password}, handle)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return admin


def _strong_password() -> str:
    while True:
        password = secrets.token_urlsafe(18)
        try:
            check_password(password)
        except Unprocessable:
            continue
        return password


async def bootstrap(settings: Settings) -> str:
    """Create the admin of ``settings`` if missing; return a fresh API key of theirs."""
    engine = create_engine_for(settings)
    try:
        sessions = create_session_factory(engine)
        admin = await ensure_admin(sessions, settings)
        if admin is None:
            raise SystemExit("ADMIN_EMAIL and ADMIN_PASSWORD are needed for the local admin")
        async with sessions() as session:
            stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
            _, key = await create_api_key(session, admin, f"start_local {stamp}")
            await session.commit()
        return key
    finally:
        await engine.dispose()
