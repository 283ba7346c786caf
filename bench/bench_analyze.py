"""Analyze benchmark: speed against a bare pass, peak memory, API latency while analysing.

    .venv/bin/python bench/bench_analyze.py              # a 10 MB manuscript, all three parts
    .venv/bin/python bench/bench_analyze.py --quick      # a 1 MB manuscript, fewer requests
    .venv/bin/python bench/bench_analyze.py --size-mb 5 --no-api
    .venv/bin/python bench/bench_analyze.py --no-api --cpu --repeat 5   # on a shared machine

The manuscript is built in a temporary directory from the English corpus
novels (tests/data/corpus): each one's body (without Project Gutenberg
boilerplate) repeated until the size is reached, written as UTF-8.

1. Speed: ``analyze`` (in this process, best of ``--repeat``) as a ratio to a
   bare pass over the same file in the same run: read, decode,
   ``re.findall(r"\\w+")``, ``collections.Counter``. Target: at most 4x. With
   ``--cpu`` both are timed in CPU seconds of this process (``time.process_time``),
   which other work on the machine disturbs far less than wall time.
2. Memory: the processor runs in a fresh child process; the figure is the
   tracemalloc peak of Python objects as a multiple of the file size (target:
   under 10x). The child's ``ru_maxrss`` is printed too, but on Linux it keeps
   the parent's peak across fork, so it is only an upper bound.
3. API: ``uvicorn app.main:app`` with one worker (SQLite in a temp dir; the
   processor has ``cpu_bound=True``, so it runs in the worker pool's process
   pool). p50/p99 latency of ``GET /api/v1/tasks/{id}`` when idle, then while
   the manuscript is being analysed. Target: busy p99 under 2x idle p99.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from common import ROOT, bench_settings, create_owner, free_port, migrate, start_api, wait_healthy

from app.processors.analyze import processor
from app.processors.analyze.decoding import decode
from app.processors.analyze.structure import find_body
from app.services import auth as auth_service

CORPUS = ROOT / "tests" / "data" / "corpus"
ENGLISH = [
    "pride_and_prejudice.en.utf8.txt",
    "moby_dick.en.utf8.txt",
    "alice_in_wonderland.en.utf8.txt",
]


def build_manuscript(directory: Path, size: int) -> Path:
    """``size`` bytes (about) of English novels, repeated, as one UTF-8 file."""
    bodies = [find_body(decode((CORPUS / name).read_bytes()).text).text for name in ENGLISH]
    parts: list[str] = []
    total = 0
    while total < size:
        body = bodies[len(parts) % len(bodies)]
        parts.append(body.strip() + "\n\n\n")
        total += len(parts[-1].encode("utf-8"))
    data = "".join(parts).encode("utf-8")[:size]
    path = directory / "manuscript.txt"
    path.write_bytes(data[: data.rfind(b"\n") + 1])
    return path


CLOCK = time.perf_counter
"""Wall time by default; ``--cpu``: this process's CPU time, which other work on a
shared machine disturbs far less."""


def bare_pass(path: Path) -> float:
    started = CLOCK()
    text = path.read_bytes().decode("utf-8")
    collections.Counter(re.findall(r"\w+", text))
    return CLOCK() - started


def analyze_once(path: Path, out: Path) -> float:
    out.mkdir(parents=True, exist_ok=True)
    started = CLOCK()
    processor.run(path, out, lambda percent, stage: None)
    return CLOCK() - started


def speed(path: Path, work: Path, repeat: int) -> dict[str, float]:
    bare: list[float] = []
    full: list[float] = []
    for attempt in range(repeat):  # interleaved, so both see the same machine load
        bare.append(bare_pass(path))
        full.append(analyze_once(path, work / f"speed-{attempt}"))
    return {"bare_s": min(bare), "analyze_s": min(full), "ratio": min(full) / min(bare)}


_CHILD = """
import json, resource, sys, tracemalloc
from pathlib import Path
from app.processors.analyze import processor
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
processor.run(Path(sys.argv[1]), Path(sys.argv[2]), lambda percent, stage: None)
_, peak = tracemalloc.get_traced_memory()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rss_before_kib": before, "rss_after_kib": after, "traced_peak": peak}))
"""


def memory(path: Path, work: Path) -> dict[str, float]:
    out = work / "memory"
    out.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    figures: dict[str, int] = json.loads(done.stdout)
    size = path.stat().st_size
    growth = (figures["rss_after_kib"] - figures["rss_before_kib"]) * 1024
    return {
        "rss_growth_mb": growth / 1e6,
        "rss_growth_x": growth / size,
        "rss_peak_mb": figures["rss_after_kib"] * 1024 / 1e6,
        "traced_peak_mb": figures["traced_peak"] / 1e6,
        "traced_peak_x": figures["traced_peak"] / size,
    }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def _latencies(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], count: int
) -> list[float]:
    out: list[float] = []
    for _ in range(count):
        started = time.perf_counter()
        response = await client.get(url, headers=headers)
        out.append(time.perf_counter() - started)
        response.raise_for_status()
    return out


async def _upload(
    client: httpx.AsyncClient, headers: dict[str, str], path: Path, processor_name: str
) -> str:
    response = await client.post(
        "/api/v1/tasks/upload",
        files={"file": (path.name, await asyncio.to_thread(path.read_bytes), "text/plain")},
        data={"processor": processor_name},
        headers=headers,
    )
    response.raise_for_status()
    task_id: str = response.json()["id"]
    return task_id


async def _status(client: httpx.AsyncClient, headers: dict[str, str], task_id: str) -> str:
    status: str = (await client.get(f"/api/v1/tasks/{task_id}", headers=headers)).json()["status"]
    return status


async def api_latency(path: Path, work: Path, requests: int) -> dict[str, Any]:
    database_url = f"sqlite+aiosqlite:///{work / 'bench.db'}"
    upload_dir = work / "uploads"
    await migrate(database_url)
    settings = bench_settings(database_url, upload_dir)
    secret = settings.secret_key
    owner = await create_owner(settings)
    token, _ = auth_service.create_access_token(settings, owner)
    headers = {"Authorization": f"Bearer {token}"}
    port = free_port()
    env = {"DATABASE_URL": database_url, "UPLOAD_DIR": str(upload_dir), "SECRET_KEY": secret,
           "WORKER_CONCURRENCY": "1", "WORKER_POLL_SECONDS": "0.5",
           "MAX_FILE_SIZE": str(64 * 1024 * 1024), "RATE_LIMIT": "1000000/minute"}  # fmt: skip
    api = start_api(port, env)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            await wait_healthy(client)
            small = work / "small.txt"
            small.write_text("Chapter 1\n\nA short manuscript.\n", encoding="utf-8")
            probe = await _upload(client, headers, small, "noop")
            while await _status(client, headers, probe) != "completed":  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            url = f"/api/v1/tasks/{probe}"
            await _latencies(client, url, headers, 50)  # warm-up
            idle = await _latencies(client, url, headers, requests)

            big = await _upload(client, headers, path, "analyze")
            while await _status(client, headers, big) == "pending":  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            busy: list[float] = []
            started = time.perf_counter()
            while await _status(client, headers, big) == "processing":
                busy += await _latencies(client, url, headers, 20)
            busy_seconds = time.perf_counter() - started
            final = (await client.get(f"/api/v1/tasks/{big}", headers=headers)).json()
    finally:
        api.terminate()
        api.wait(timeout=60)
    idle_p99, busy_p99 = percentile(idle, 0.99), percentile(busy, 0.99)
    return {
        "idle_requests": len(idle),
        "idle_p50_ms": statistics.median(idle) * 1000,
        "idle_p99_ms": idle_p99 * 1000,
        "busy_requests": len(busy),
        "busy_seconds": busy_seconds,
        "busy_p50_ms": statistics.median(busy) * 1000 if busy else float("nan"),
        "busy_p99_ms": busy_p99 * 1000 if busy else float("nan"),
        "p99_ratio": busy_p99 / idle_p99 if busy else float("nan"),
        "task_status": final["status"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, default=10.0, help="manuscript size (MB)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs (best is kept)")
    parser.add_argument("--requests", type=int, default=500, help="idle GET requests")
    parser.add_argument("--no-api", action="store_true", help="skip the API latency part")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 MB, fewer runs")
    parser.add_argument(
        "--cpu", action="store_true", help="time the speed part in CPU seconds, not wall"
    )
    args = parser.parse_args()
    if args.cpu:
        global CLOCK
        CLOCK = time.process_time
    if args.quick:
        args.size_mb, args.repeat, args.requests = 1.0, 1, 100

    with tempfile.TemporaryDirectory(prefix="ntm-bench-analyze-") as temp:
        work = Path(temp)
        path = build_manuscript(work, int(args.size_mb * 1_000_000))
        size = path.stat().st_size
        print(f"manuscript: {size / 1e6:.2f} MB of English novels, cpus={os.cpu_count()}")
        if args.quick:
            print("smoke run: too small and too short for the figures to mean anything")
        figures = speed(path, work, args.repeat)
        unit = "CPU s" if args.cpu else "s"
        print(
            f"speed: bare pass {figures['bare_s']:.2f} {unit}, "
            f"analyze {figures['analyze_s']:.2f} {unit}, "
            f"ratio {figures['ratio']:.2f}x (target <= 4x)"
        )
        mem = memory(path, work)
        print(
            f"memory: tracemalloc peak {mem['traced_peak_mb']:.0f} MB = "
            f"{mem['traced_peak_x']:.1f}x the file (target < 10x); child ru_maxrss "
            f"{mem['rss_peak_mb']:.0f} MB (Linux carries the parent's peak over fork)"
        )
        if not args.no_api:
            api = asyncio.run(api_latency(path, work, args.requests))
            print(
                f"api: idle p50 {api['idle_p50_ms']:.1f} ms p99 {api['idle_p99_ms']:.1f} ms "
                f"({api['idle_requests']} requests); while analysing p50 "
                f"{api['busy_p50_ms']:.1f} ms p99 {api['busy_p99_ms']:.1f} ms "
                f"({api['busy_requests']} requests over {api['busy_seconds']:.1f} s); "
                f"p99 ratio {api['p99_ratio']:.2f}x (target < 2x); task {api['task_status']}"
            )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"max RSS of this process: {peak:.0f} MB")


if __name__ == "__main__":
    main()
