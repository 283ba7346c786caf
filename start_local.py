#!/usr/bin/env python3
"""One-command local start: ``python start_local.py``.

Installs what it needs into ``.venv`` on first run, then: SQLite under
``data/`` (or ``LOCAL_DATA_DIR``), migrations, the API with in-process
workers, and the dashboard URL.
Any variable of ``.env.example`` may be set in the environment or ``.env``.
"""

from __future__ import annotations

import os
from pathlib import Path

from tools.bootstrap import ensure_venv

ROOT = Path(__file__).resolve().parent


def main() -> None:
    ensure_venv()
    os.chdir(ROOT)
    data_dir = Path(os.environ.get("LOCAL_DATA_DIR") or ROOT / "data").resolve()
    data_dir.mkdir(exist_ok=True)
    os.environ.setdefault("DATABASE_URL", f"sqlite+aiosqlite:///{data_dir / 'novel_tasks.db'}")
    os.environ.setdefault("WORKER_CONCURRENCY", "2")
    os.environ.setdefault("LOG_FORMAT", "console")
    import asyncio

    from tools import local_admin

    if not os.environ.get("ADMIN_EMAIL") and not _in_dotenv("ADMIN_EMAIL"):
        admin = local_admin.load_or_create(data_dir)
        os.environ["ADMIN_EMAIL"], os.environ["ADMIN_PASSWORD"] = admin.email, admin.password
        stored = f" (kept in {_shown(admin.path)}, mode 0600)"
    else:
        stored = " (from ADMIN_EMAIL / ADMIN_PASSWORD)"

    import uvicorn
    from alembic.config import Config

    from alembic import command
    from app.api.live import MAX_FRAME_BYTES
    from app.config import describe_settings_error, get_settings

    try:
        settings = get_settings()
    except Exception as exc:
        raise SystemExit(describe_settings_error(exc)) from None

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["configure_logger"] = False
    command.upgrade(cfg, "head")

    api_key = asyncio.run(local_admin.bootstrap(settings, data_dir))
    host = "localhost" if settings.api_host in ("127.0.0.1", "0.0.0.0") else settings.api_host  # noqa: S104
    base = f"http://{host}:{settings.api_port}"
    kept = "new, kept" if api_key.created else "kept"
    key_file = _shown(api_key.path)
    print(
        f"\n  Novel Task Manager\n"
        f"  Dashboard:  {base}/\n"
        f"  API docs:   {base}/docs\n"
        f"  Database:   {settings.database_url}\n"
        f"  Workers:    {settings.worker_concurrency} in this process\n"
        f"  Admin:      {settings.admin_email}{stored}\n"
        f"  Password:   {settings.admin_password}\n"
        f"  API key:    {api_key.key}\n"
        f"              ({kept} in {key_file}, mode 0600; reused by every start while valid)\n"
        f"  Revoke it:  curl -X DELETE -H 'Authorization: Bearer {api_key.key}' \\\n"
        f"                {base}/api/v1/auth/api-keys/{api_key.id}\n"
        f"              (the next start then makes a new one)\n",
        flush=True,
    )
    uvicorn.run(
        "app.main:app",
        host=settings.api_host,
        port=settings.api_port,
        reload=False,
        log_config=None,
        proxy_headers=False,  # the app applies FORWARDED_ALLOW_IPS itself (app/api/proxies.py)
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) or None,
        ws_max_size=MAX_FRAME_BYTES,  # a bigger WebSocket frame is refused unread
    )


def _shown(path: Path) -> Path:
    """``path`` relative to the checkout when it is inside it."""
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def _in_dotenv(name: str) -> bool:
    env_file = ROOT / ".env"
    if not env_file.exists():
        return False
    return any(
        line.split("=", 1)[0].strip() == name
        for line in env_file.read_text(encoding="utf-8").splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    )


if __name__ == "__main__":
    main()
