"""Upload benchmark: memory and speed of streamed uploads.

    .venv/bin/python bench/bench_upload.py             # MAX_FILE_SIZE 10 MiB, 5 rounds
    .venv/bin/python bench/bench_upload.py --rounds 1  # the quick smoke run

In one process (the app served in-process over ASGI, SQLite in a temp dir):
- an accepted upload just under ``MAX_FILE_SIZE``: MB/s and the growth of
  traced Python memory at its peak;
- a chunked upload of 10x ``MAX_FILE_SIZE`` (no Content-Length, so it is only
  found out while streaming): the time to the 413 and the peak growth;
- the process's maximum RSS before and after (``ru_maxrss``).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alembic.config import Config  # noqa: E402

from alembic import command  # noqa: E402
from app.config import Settings  # noqa: E402
from app.main import create_app  # noqa: E402
from app.services import auth as auth_service  # noqa: E402
from tests.factories import app_sessions, make_user, multipart_body  # noqa: E402

MIB = 1024 * 1024


async def measure(send: Callable[[], Awaitable[httpx.Response]]) -> tuple[int, float, int]:
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    started = time.perf_counter()
    response = await send()
    took = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return response.status_code, took, peak - base


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-mib", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    limit = args.max_mib * MIB
    work = Path(tempfile.mkdtemp(prefix="ntm-bench-upload-"))
    database_url = f"sqlite+aiosqlite:///{work / 'bench.db'}"
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes.update(database_url=database_url, configure_logger=False)
    await asyncio.to_thread(command.upgrade, cfg, "head")
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        upload_dir=work / "uploads",
        worker_concurrency=0,
        max_file_size=limit,
        rate_limit="100000/minute",
        log_level="WARNING",
        secret_key=uuid.uuid4().hex,
    )
    app = create_app(settings)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://b") as client,
    ):
        user = await make_user(app_sessions(app))
        token, _ = auth_service.create_access_token(settings, user)
        auth = {"Authorization": f"Bearer {token}"}

        def sender(size: int) -> Callable[[], Awaitable[httpx.Response]]:
            boundary = uuid.uuid4().hex
            headers = {**auth, "Content-Type": f"multipart/form-data; boundary={boundary}"}
            return lambda: client.post(
                "/api/v1/tasks/upload",
                content=multipart_body(size, boundary, "b.txt"),
                headers=headers,
            )

        await sender(MIB)()  # warm-up
        accepted, rejected = [], []
        for _ in range(args.rounds):
            accepted.append(await measure(sender(limit - 4096)))
            rejected.append(await measure(sender(10 * limit)))
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert all(code == 202 for code, _, _ in accepted), accepted
    assert all(code == 413 for code, _, _ in rejected), rejected
    speed = statistics.median((limit / MIB) / took for _, took, _ in accepted)
    print(f"accepted {args.max_mib} MiB upload: median {speed:.0f} MiB/s; traced peak growth "
          f"max {max(p for *_, p in accepted) / MIB:.2f} MiB")  # fmt: skip
    print(f"rejected {10 * args.max_mib} MiB chunked upload: 413 after median "
          f"{statistics.median(t for _, t, _ in rejected):.2f} s; traced peak growth "
          f"max {max(p for *_, p in rejected) / MIB:.2f} MiB")  # fmt: skip
    print(f"max RSS: {rss_before / 1024:.0f} MiB before, {rss_after / 1024:.0f} MiB after "
          f"{args.rounds} rounds")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
