"""Storage benchmark: a 10 MiB manuscript uploaded and read back by a worker, local vs s3.

    .venv/bin/python bench/bench_storage.py              # 10 MiB, 5 rounds per backend
    .venv/bin/python bench/bench_storage.py --rounds 1   # the quick smoke run

For each backend, in one process (the app served in-process over ASGI, SQLite
in a temp dir; s3 is moto's S3 server on loopback, started here and stopped by
its PID):
- upload throughput: ``POST /api/v1/tasks/upload`` of the manuscript, from the
  first byte sent to the 202 (received, hashed, sniffed, stored, task created);
- worker read time: what a worker does before its processor starts, getting a
  local path of the upload (``storage.fetch_input``: the file itself, or a copy
  streamed from the bucket), plus reading the bytes as the processor does.
The figures are medians of the rounds; moto is a Python server, so the s3
figures are a floor for a real object store on the same network, not a ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alembic.config import Config  # noqa: E402

from alembic import command  # noqa: E402
from app.config import Settings  # noqa: E402
from app.main import create_app  # noqa: E402
from app.models import FileKind, FileStorage  # noqa: E402
from app.services import auth as auth_service  # noqa: E402
from app.services import storage  # noqa: E402
from tests.factories import app_sessions, make_user  # noqa: E402
from tests.s3 import S3Server, credentials  # noqa: E402

MIB = 1024 * 1024


def manuscript(size: int) -> bytes:
    line = b"It was a bright cold day in April, and the clocks were striking thirteen.\n"
    return (b"Chapter 1\n\n" + line * (size // len(line) + 1))[:size]


async def run_backend(name: str, extra: dict[str, Any], size: int, rounds: int) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix=f"ntm-bench-storage-{name}-"))
    database_url = f"sqlite+aiosqlite:///{work / 'bench.db'}"
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes.update(database_url=database_url, configure_logger=False)
    await asyncio.to_thread(command.upgrade, cfg, "head")
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        upload_dir=work / "uploads",
        worker_concurrency=0,
        max_file_size=size,
        rate_limit="100000/minute",
        log_level="WARNING",
        secret_key=uuid.uuid4().hex,
        **extra,
    )
    content = manuscript(size)
    app = create_app(settings)
    uploads: list[float] = []
    reads: list[float] = []
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        sessions = app_sessions(app)
        user = await make_user(sessions)
        token, _ = auth_service.create_access_token(settings, user)
        headers = {"Authorization": f"Bearer {token}"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for _ in range(rounds + 1):  # the first round warms up and is not counted
                started = time.perf_counter()
                response = await client.post(
                    "/api/v1/tasks/upload",
                    files={"file": ("book.txt", content, "text/plain")},
                    data={"processor": "analyze"},
                    headers=headers,
                )
                took = time.perf_counter() - started
                assert response.status_code == 202, response.text
                task_id = response.json()["id"]
                async with sessions() as session:
                    row = (
                        await session.execute(
                            select(FileStorage).where(
                                FileStorage.task_id == task_id,
                                FileStorage.kind == FileKind.UPLOAD,
                            )
                        )
                    ).scalar_one()
                locator = storage.Stored.from_row(
                    row.storage_type, row.storage_path, row.storage_bucket
                ).locator
                scratch = settings.upload_dir / "tasks" / task_id / "attempt-1.tmp"
                await storage.empty_dir(scratch)
                started = time.perf_counter()
                path = await storage.fetch_input(settings, locator, scratch)
                data = await asyncio.to_thread(path.read_bytes)
                read = time.perf_counter() - started
                assert data == content
                await storage.remove(scratch)
                uploads.append(took)
                reads.append(read)
    upload_s = statistics.median(uploads[1:])
    read_s = statistics.median(reads[1:])
    return {"upload_mb_s": size / MIB / upload_s, "upload_ms": upload_s * 1000,
            "read_ms": read_s * 1000}  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    size = args.mib * MIB
    server = S3Server()
    with credentials():
        server.start()
        try:
            results = {
                "local": await run_backend("local", {}, size, args.rounds),
                "s3": await run_backend(
                    "s3",
                    {
                        "storage_backend": "s3",
                        "s3_bucket": server.new_bucket(),
                        "s3_endpoint_url": server.endpoint,
                        "s3_region": "us-east-1",
                    },
                    size,
                    args.rounds,
                ),
            }
        finally:
            server.stop()
    print(f"{args.mib} MiB manuscript, median of {args.rounds} rounds")
    print(f"{'backend':8} {'upload MiB/s':>13} {'upload ms':>10} {'worker read ms':>15}")
    for name, figures in results.items():
        print(
            f"{name:8} {figures['upload_mb_s']:13.1f} {figures['upload_ms']:10.0f} "
            f"{figures['read_ms']:15.1f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
