"""Where the time per task goes: drain (the worker) and HTTP upload (the API).

    .venv/bin/python bench/hotpath.py drain --tasks 2000      # worker process
    .venv/bin/python bench/hotpath.py upload --seconds 10     # API process under wrk
    .venv/bin/python bench/hotpath.py drain --no-py-spy       # statement counts only
    .venv/bin/python bench/hotpath.py drain --uvloop          # the worker on uvloop
    .venv/bin/python bench/hotpath.py upload --plain          # uvicorn on asyncio + h11

Each runs the real process (``python -m app.worker``, ``uvicorn app.main:app``)
under ``bench.sqlcount`` (SQLAlchemy events counting statements by kind,
BEGINs, COMMITs, ROLLBACKs) and samples it with py-spy (``--format raw``,
native frames off, idle off) from after its start to its exit. It prints, per
task: CPU milliseconds of the process (``/proc/PID/stat``), statements,
transactions; then the sampled time by package of the innermost frame
(self time) and the ``app`` functions with the most inclusive time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
from peers import CONCURRENCY, UVICORN_OPTIONS, Api, Ours, Worker, healthy, load, multipart
from sqlalchemy import func, select

from app.api.live import MAX_FRAME_BYTES
from app.models import Task

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PLAIN_UVICORN = ("--loop", "asyncio", "--http", "h11", "--backlog", "4096")
IDLE = re.compile(  # innermost frames of a thread or loop waiting, not working
    r"^(?:\w+\.)?(?:select|poll) \(selectors\.py|^Condition\.wait \(threading\.py"
    r"|^(?:\w+\.)?_wait_for_tstate_lock|^Queue\.get \(queue\.py"
)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def py_spy(pid: int, out: Path) -> subprocess.Popen[bytes] | None:
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(exe).exists():
        print("py-spy not installed (pip install -e '.[bench]'): sampling skipped")
        return None
    return subprocess.Popen(
        [exe, "record", "--pid", str(pid), "--format", "raw", "--rate", "250",
         "--nonblocking", "-o", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def package(frame: str) -> str:
    """``sqlalchemy``, ``asyncpg``, ``app.queue``, ``asyncio``, ``threading`` ... of a frame
    ``func (path:line)``, py-spy's path being relative to its ``sys.path`` entry."""
    path = frame.rsplit("(", 1)[-1].split(":", 1)[0]
    parts = path.split("/")
    if parts[0] == "app" and len(parts) > 2:
        return f"app.{parts[1]}"
    return parts[0].removesuffix(".py")


def report_samples(raw: Path, top: int = 22) -> None:
    if not raw.exists() or not raw.stat().st_size:
        print("  (no samples)")
        return
    leaf: Counter[str] = Counter()
    leaf_frames: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    idle = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = stack.split(";")
        if IDLE.search(frames[-1]):  # py-spy's idle test misses these blocking waits
            idle += n
            continue
        total += n
        leaf[package(frames[-1])] += n
        leaf_frames[frames[-1]] += n
        for name in {package(frame) for frame in frames}:
            packages[name] += n
        for frame in set(frames):
            if "/app/" in frame or "(app/" in frame:
                inclusive[frame.split(" (")[0] + " " + frame.rsplit("/", 1)[-1]] += n
    print(f"  samples: {total} busy ({idle} more waiting in select/locks left out)")
    print("  self time by package of the innermost frame:")
    for name, n in leaf.most_common(top):
        print(f"    {100 * n / total:5.1f} %  {name}")
    print("  packages on the stack (inclusive):")
    for name, n in packages.most_common(top):
        print(f"    {100 * n / total:5.1f} %  {name}")
    print("  innermost frames:")
    for name, n in leaf_frames.most_common(12):
        print(f"    {100 * n / total:5.1f} %  {name}")
    print("  app functions, inclusive time:")
    for name, n in inclusive.most_common(top):
        print(f"    {100 * n / total:5.1f} %  {name}")


def report_counts(path: Path, per: int, what: str) -> None:
    counts = json.loads(path.read_text())
    print(f"  per {what} (over {per}):")
    for key in ("statements", "begin", "commit", "rollback"):
        print(f"    {counts.get(key, 0) / per:6.2f}  {key}")
    kinds = sorted(
        ((k.split(": ", 1)[1], v) for k, v in counts.items() if k.startswith("statement: ")),
        key=lambda kv: -kv[1],
    )
    for name, n in kinds:
        if n / per >= 0.01:
            print(f"    {n / per:6.2f}    {name}")


async def drain(args: argparse.Namespace, workdir: Path) -> None:
    from contextlib import AsyncExitStack

    async with AsyncExitStack() as stack:
        ours = Ours()
        ours.logdir = workdir
        await ours.open(stack)
        counts = workdir / "worker-sql.json"
        env = {**os.environ, "DATABASE_URL": ours.database_url, "UPLOAD_DIR": str(ours.upload_dir),
               "WORKER_CONCURRENCY": str(CONCURRENCY), "LOG_LEVEL": "WARNING",
               "LOG_FORMAT": "json", "SECRET_KEY": ours.settings.secret_key,
               "SQLCOUNT_OUT": str(counts),
               **({"SQLCOUNT_UVLOOP": "1"} if args.uvloop else {})}  # fmt: skip
        worker = Worker("worker", [sys.executable, "-m", "bench.sqlcount", "app.worker"], env,
                        workdir)  # fmt: skip
        warm = [await ours.enqueue_one()]
        while await ours.done(warm) < 1:
            worker.check()
            await asyncio.sleep(0.05)
        raw = workdir / "worker.raw"
        spy = py_spy(worker.process.pid, raw) if args.py_spy else None
        await asyncio.sleep(0.5)
        cpu0, t0 = cpu_seconds(worker.process.pid), time.perf_counter()
        keys = await ours.enqueue_many(args.tasks)
        while await ours.done(keys) < args.tasks + 1:
            worker.check()
            await asyncio.sleep(0.05)
        elapsed, cpu = time.perf_counter() - t0, cpu_seconds(worker.process.pid) - cpu0
        await worker.stop()
        if spy is not None:
            await asyncio.to_thread(spy.wait, 60)
        print(f"drain: {args.tasks} noop tasks in {elapsed:.2f} s = {args.tasks / elapsed:.0f}/s; "
              f"worker CPU {cpu:.2f} s = {1000 * cpu / args.tasks:.2f} ms per task")  # fmt: skip
        report_counts(counts, args.tasks + 1, "task")
        if spy is not None:
            report_samples(raw)


async def upload(args: argparse.Namespace, workdir: Path) -> None:
    from contextlib import AsyncExitStack

    async with AsyncExitStack() as stack:
        ours = Ours()
        ours.logdir = workdir
        await ours.open(stack)
        counts = workdir / "api-sql.json"
        api = Api(ours)  # its port and key; started here under bench.sqlcount, same settings
        async with ours.sessions() as session, session.begin():
            from app.models import User
            from app.services.users import create_api_key

            user = await session.get(User, ours.owner.id)
            assert user is not None
            _, api.key = await create_api_key(session, user, "profile")
        env = {"DATABASE_URL": ours.database_url, "UPLOAD_DIR": str(ours.upload_dir),
               "SECRET_KEY": ours.settings.secret_key, "WORKER_CONCURRENCY": "0",
               "RATE_LIMIT": "100000000/minute", "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json",
               "SQLCOUNT_OUT": str(counts)}  # fmt: skip
        command = [sys.executable, "-m", "bench.sqlcount", "uvicorn", "app.main:app",
                   "--port", str(api.port), "--log-level", "warning", "--no-access-log",
                   "--ws-max-size", str(MAX_FRAME_BYTES),
                   *(PLAIN_UVICORN if args.plain else UVICORN_OPTIONS)]  # fmt: skip
        server = Worker("api", command, env, workdir)
        await healthy(api.base, server)
        body, content_type = multipart(args.size)
        async with httpx.AsyncClient(base_url=api.base) as client:  # warm: first requests
            for _ in range(5):
                headers = {**api.headers, "Content-Type": content_type}
                r = await client.post("/api/v1/tasks/upload", content=body, headers=headers)
                assert r.status_code == 202, r.text
        raw = workdir / "api.raw"
        spy = py_spy(server.process.pid, raw) if args.py_spy else None
        await asyncio.sleep(0.5)
        cpu0 = cpu_seconds(server.process.pid)
        rate, p50, p99, bad = await load(f"{api.base}/api/v1/tasks/upload", api.headers, body,
                                         content_type, args.seconds, workdir)  # fmt: skip
        cpu = cpu_seconds(server.process.pid) - cpu0
        await server.stop()
        if spy is not None:
            await asyncio.to_thread(spy.wait, 60)
        async with ours.sessions() as session:
            tasks = int((await session.execute(select(func.count()).select_from(Task))).scalar())
        measured = tasks - 5
        print(f"upload ({args.size} B, 32 connections, {args.seconds:.0f} s): {rate:.0f} req/s, "
              f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, {bad} non-2xx; API CPU {cpu:.2f} s = "
              f"{1000 * cpu / measured:.2f} ms per upload")  # fmt: skip
        report_counts(counts, tasks, "upload")
        if spy is not None:
            report_samples(raw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("what", choices=("drain", "upload"))
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--size", type=int, default=2048, help="upload size in bytes")
    parser.add_argument("--no-py-spy", dest="py_spy", action="store_false")
    parser.add_argument("--uvloop", action="store_true", help="drain: the worker on uvloop")
    parser.add_argument("--plain", action="store_true", help="upload: uvicorn on asyncio + h11")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="ntm-profile-"))
    try:
        asyncio.run(drain(args, workdir) if args.what == "drain" else upload(args, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
