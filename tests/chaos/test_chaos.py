"""The chaos suite: real processes under faults, then every invariant (tests/chaos/invariants.py).

One API process (``WORKER_CONCURRENCY=0``) and separate ``python -m app.worker``
processes on a PostgreSQL server of the suite's own, loaded with corpus slices
for ``noop`` and ``analyze`` while a WebSocket client follows ``*`` and SSE
clients follow a few tasks. docs/reliability.md describes each scenario and
quotes the figures of the last full run.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.chaos import invariants
from tests.chaos.conftest import MakeService, Profile
from tests.chaos.harness import PgServer, descendants
from tests.chaos.load import REQUEST_TIMEOUT, manuscripts
from tests.chaos.scenario import Scenario

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(900)]


REASONS = {
    "chaos-raise": "on purpose",  # the processor's own message
    "chaos-hang": "longer than",  # TASK_TIMEOUT_SECONDS
    "chaos-hog": "memory",  # PROCESSOR_MEMORY_LIMIT_MB (RLIMIT_AS)
    "chaos-exit": "exit",  # the process exited
}
"""What the reason of each misbehaving processor's failed task must say."""


def _exists(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:160]


async def _inflight(database_url: str, worker_id: str) -> dict[str, int]:
    """Task id → attempt of what ``worker_id`` holds right now."""
    conn = await asyncpg.connect(invariants.plain_url(database_url), timeout=10)
    try:
        rows = await conn.fetch(
            "SELECT t.id, t.attempt FROM task_queue q JOIN tasks t ON t.id = q.task_id "
            "WHERE q.worker_id = $1 AND t.status = 'processing'",
            worker_id,
        )
    finally:
        await conn.close()
    return {r["id"]: r["attempt"] for r in rows}


async def _taken_back(database_url: str, held: dict[str, int], since: float) -> float:
    """Seconds from ``since`` until none of ``held`` is still processing in its old attempt."""
    conn = await asyncpg.connect(invariants.plain_url(database_url), timeout=10)
    try:
        while True:
            rows = await conn.fetch(
                "SELECT id, status, attempt FROM tasks WHERE id = ANY($1::text[])", list(held)
            )
            if all(r["status"] != "processing" or r["attempt"] != held[r["id"]] for r in rows):
                return time.monotonic() - since
            if time.monotonic() - since > 120:
                return float("inf")
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def test_workers_killed_at_random(
    make_service: MakeService, profile: Profile, chaos_figures: dict[str, Any]
) -> None:
    """1. SIGKILL a random worker every 2-4 s and start another; leases bring its tasks back."""
    service = await asyncio.to_thread(make_service)
    scenario = Scenario("1-workers-killed", service, chaos_figures)
    try:
        await scenario.start(workers=3)
        load = asyncio.create_task(scenario.produce(profile.tasks, profile.kill_seconds, seed=1))
        rng = random.Random(1)
        kills = 0
        orphans: list[str] = []
        background: list[asyncio.Task[None]] = []

        async def kill_one() -> None:
            nonlocal kills
            ready = [p for p in service.live("worker") if p.worker_id is not None]
            victim = rng.choice(ready)
            assert victim.worker_id is not None
            held = await _inflight(service.database_url, victim.worker_id)
            family = {pid: _cmdline(pid) for pid in descendants(victim.pid)}
            os.kill(victim.pid, signal.SIGKILL)
            killed_at = time.monotonic()
            kills += 1
            await asyncio.to_thread(victim.popen.wait)
            replacement = asyncio.create_task(asyncio.to_thread(service.start_worker, 2))
            if held:
                scenario.record_recovery(
                    "tasks of a killed worker taken back",
                    await _taken_back(service.database_url, held, killed_at),
                )
            await replacement
            await asyncio.sleep(max(0.0, killed_at + 3 - time.monotonic()))
            orphans.extend(
                f"{pid} {cmd!r} (below killed worker {victim.pid})"
                for pid, cmd in family.items()
                if _exists(pid)
            )

        begin = time.monotonic()
        while time.monotonic() - begin < profile.kill_seconds:
            await asyncio.sleep(rng.uniform(2, 4))
            await scenario.follow_active(1)
            background.append(asyncio.create_task(kill_one()))
            await asyncio.sleep(0.5)  # the replacement's start has begun before the next kill
        await asyncio.gather(*background)
        await load
        if orphans:
            scenario.violations.append(f"processes below killed workers alive 3 s later: {orphans}")
        scenario.notes["kills"] = kills
        await scenario.finish(profile.idle_within)
    finally:
        service.kill_everything()


async def test_deploy_sigterm_everything_then_restart(
    make_service: MakeService, profile: Profile, chaos_figures: dict[str, Any]
) -> None:
    """2. SIGTERM to the API and every worker during load, then start them again (a deploy)."""
    service = await asyncio.to_thread(make_service)
    scenario = Scenario("2-deploy", service, chaos_figures)
    try:
        await scenario.start(workers=2)
        spread = max(8.0, profile.tasks / 15)
        load = asyncio.create_task(scenario.produce(profile.tasks, spread, seed=2))
        await asyncio.sleep(spread * 0.4)
        await scenario.follow_active()
        procs = service.live()
        family = {pid: _cmdline(pid) for p in procs for pid in descendants(p.pid)}
        signalled = time.monotonic()
        service.signal_all(signal.SIGTERM)
        codes = await asyncio.to_thread(service.wait_exit, procs, 30)
        took = time.monotonic() - signalled
        expected = {"worker": (0,), "api": (0, -signal.SIGTERM)}
        bad = {
            f"{p.kind} {p.pid}": codes[p.pid] for p in procs if codes[p.pid] not in expected[p.kind]
        }
        if bad:
            scenario.violations.append(f"unexpected exit codes after SIGTERM: {bad}")
        await asyncio.sleep(2)
        left = [f"{pid} {cmd!r}" for pid, cmd in sorted(family.items()) if _exists(pid)]
        if left:
            scenario.violations.append(f"children alive 2 s after their parents exited: {left}")
        scenario.notes["sigterm_exit_s"] = round(took, 2)
        await asyncio.to_thread(service.start_api)
        for _ in range(2):
            await asyncio.to_thread(service.start_worker, 2)
        scenario.record_recovery(
            "first completion after the restart",
            await scenario.time_to_next_completion(time.monotonic()),
        )
        await load
        await scenario.finish(profile.idle_within)
    finally:
        service.kill_everything()


async def _probe_outage(base_url: str, token: str, until: float) -> dict[str, Any]:
    """While the database is down: /health and an upload, again and again, with their timings."""
    seen: dict[str, Any] = {"health": {}, "upload": {}, "slowest_s": 0.0, "upload_problems": []}
    async with httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT) as client:
        while time.monotonic() < until:
            for kind in ("health", "upload"):
                started = time.monotonic()
                try:
                    if kind == "health":
                        response = await client.get("/health")
                    else:
                        response = await client.post(
                            "/api/v1/tasks/upload",
                            files={"file": ("probe.txt", b"Chapter 1\n\nA probe.\n", "text/plain")},
                            data={"processor": "noop"},
                            headers={"Authorization": f"Bearer {token}"},
                        )
                    answer = str(response.status_code)
                    if kind == "upload" and response.status_code != 202:
                        seen["upload_problems"].append(
                            {
                                "status": response.status_code,
                                "retry_after": response.headers.get("retry-after"),
                                "body": response.text[:300],
                            }
                        )
                except httpx.TimeoutException:
                    answer = "timeout"
                except httpx.TransportError:
                    answer = "connection_error"
                seen[kind][answer] = seen[kind].get(answer, 0) + 1
                seen["slowest_s"] = max(seen["slowest_s"], round(time.monotonic() - started, 2))
            await asyncio.sleep(0.5)
    return seen


async def test_database_down_then_back(
    make_service: MakeService, profile: Profile, chaos_figures: dict[str, Any], chaos_pg: PgServer
) -> None:
    """3. PostgreSQL stopped for a while during load: 503s meanwhile, then everything resumes."""
    service = await asyncio.to_thread(make_service)
    scenario = Scenario("3-database-down", service, chaos_figures)
    try:
        await scenario.start(workers=2)
        assert scenario.loader is not None
        spread = max(10.0, profile.tasks / 12)
        load = asyncio.create_task(scenario.produce(profile.tasks, spread, seed=3))
        await asyncio.sleep(spread * 0.3)
        await scenario.follow_active()
        await asyncio.to_thread(chaos_pg.stop, "fast")
        down_at = time.monotonic()
        probes = await _probe_outage(
            service.base_url, scenario.loader.token, down_at + profile.db_down_seconds
        )
        await asyncio.to_thread(chaos_pg.start)
        back_at = time.monotonic()
        scenario.notes["database_down_s"] = round(back_at - down_at, 1)
        scenario.notes["during_outage"] = probes
        if set(probes["health"]) - {"503"}:
            scenario.violations.append(f"/health while the database was down: {probes['health']}")
        if set(probes["upload"]) - {"503"}:
            scenario.violations.append(f"uploads while the database was down: {probes['upload']}")
        if any(not p["retry_after"] for p in probes["upload_problems"] if p["status"] == 503):
            scenario.violations.append("a 503 upload without Retry-After")
        if probes["slowest_s"] > 10:
            scenario.violations.append(f"a request took {probes['slowest_s']} s while it was down")
        scenario.record_recovery(
            "first completion after the database came back",
            await scenario.time_to_next_completion(back_at),
        )
        healthy_again = float("inf")
        async with httpx.AsyncClient(timeout=5) as client:
            while time.monotonic() - back_at < 60:
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{service.base_url}/health")).status_code == 200:
                        healthy_again = time.monotonic() - back_at
                        break
                await asyncio.sleep(0.2)
        scenario.notes["health_200_again_s"] = round(healthy_again, 2)
        await load
        dead = [p.pid for p in service.procs if not p.alive()]
        if dead:
            scenario.violations.append(f"processes that died with the database: {dead}")
        await scenario.finish(profile.idle_within)
    finally:
        service.kill_everything()
        if chaos_pg.pid() is None:
            await asyncio.to_thread(chaos_pg.start)


def _fill(path: Path) -> int:
    """Write ``path`` until the file system is full; the bytes written."""
    written = 0
    block = b"\0" * (1 << 20)
    with path.open("wb", buffering=0) as handle:
        for size in (1 << 20, 4096, 1):
            chunk = block[:size]
            while True:
                try:
                    handle.write(chunk)
                except OSError as exc:
                    if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                        raise
                    break
                written += size
    return written


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False, timeout=30)


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, check=False, timeout=30)


async def _remount(upload_dir: Path, mode: str) -> None:
    for _ in range(50):  # a file open for writing makes a read-only remount busy for a moment
        if _mount("-o", f"remount,{mode}", str(upload_dir)).returncode == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"could not remount {upload_dir} {mode}")


async def test_upload_dir_full_then_read_only(
    make_service: MakeService, profile: Profile, chaos_figures: dict[str, Any], tmp_path: Path
) -> None:
    """4. UPLOAD_DIR (a small tmpfs) full, then read-only, during uploads and analyses."""
    upload_dir = tmp_path / "uploads"
    upload_dir.mkdir()
    mounted = _mount("-t", "tmpfs", "-o", "size=64m,mode=0755", "tmpfs", str(upload_dir))
    if mounted.returncode != 0:
        reason = f"mounting a tmpfs needs root (CAP_SYS_ADMIN): {mounted.stderr.strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    service = await asyncio.to_thread(make_service, upload_dir)
    scenario = Scenario("4-storage-full-and-read-only", service, chaos_figures)
    filler = upload_dir / "filler.bin"
    try:
        await scenario.start(workers=2)
        assert scenario.loader is not None
        assert scenario.client is not None
        spread = max(3 * profile.storage_fault_seconds + 6, profile.tasks / 12)
        load = asyncio.create_task(
            scenario.produce(profile.tasks, spread, seed=4, processors=("analyze",))
        )
        await asyncio.sleep(3)
        await scenario.follow_active()
        faults: dict[str, Any] = {}
        for fault in ("full", "read-only"):
            if fault == "full":
                await asyncio.to_thread(_fill, filler)
            else:
                await _remount(upload_dir, "ro")
            probe = await scenario.loader.upload(
                scenario.client, manuscripts(1, seed=40)[0], "analyze", retry=False
            )
            faults[fault] = {"probe_answers": probe.answers}
            await asyncio.sleep(profile.storage_fault_seconds)
            faults[fault]["health"] = (await scenario.health())[:3]
            if fault == "full":
                filler.unlink()
            else:
                await _remount(upload_dir, "rw")
            cleared = time.monotonic()
            scenario.record_recovery(
                f"first completion after the upload dir was {fault}",
                await scenario.time_to_next_completion(cleared),
            )
            if probe.task_id is not None or set(probe.answers) - {"503", "507"}:
                scenario.violations.append(f"an upload while {fault} answered {probe.answers}")
            if faults[fault]["health"] != "503":
                scenario.violations.append(f"/health while {fault}: {faults[fault]['health']}")
        scenario.notes["faults"] = faults
        scenario.notes["problems"] = scenario.loader.problems[:4]
        await load
        await scenario.finish(profile.idle_within)
    finally:
        service.kill_everything()
        filler.unlink(missing_ok=True)
        _mount("-o", "remount,rw", str(upload_dir))
        _umount(upload_dir)


async def test_misbehaving_processors(
    make_service: MakeService, profile: Profile, chaos_figures: dict[str, Any], tmp_path: Path
) -> None:
    """5. Processors that raise, hang, allocate without bound or exit: failed with a reason."""
    pids = tmp_path / "pids"
    pids.mkdir()
    service = await asyncio.to_thread(
        make_service, TASK_TIMEOUT_SECONDS="10", TASK_MAX_RETRIES="1", CHAOS_PID_DIR=str(pids)
    )
    scenario = Scenario("5-misbehaving-processors", service, chaos_figures)
    try:
        await scenario.start(workers=2)
        assert scenario.loader is not None
        assert scenario.client is not None
        loader, client = scenario.loader, scenario.client
        bad = {}
        text = manuscripts(1, seed=5)[0]
        for kind in ("chaos-raise", "chaos-hang", "chaos-hog", "chaos-exit"):
            for n in range(2):
                upload = await loader.upload(client, text, kind, name=f"{kind}-{n}.txt")
                assert upload.task_id is not None, upload.answers
                bad[upload.task_id] = kind
        await scenario.produce(max(30, profile.tasks // 2), 10, seed=5)
        workers = service.live("worker")
        counts = await invariants.wait_until_idle(service.database_url, profile.idle_within)
        crashed = [p.pid for p in workers if not p.alive()]
        if crashed:
            scenario.violations.append(f"worker processes that died: {crashed}")
        conn = await asyncpg.connect(invariants.plain_url(service.database_url), timeout=10)
        try:
            rows = await conn.fetch("SELECT id, status, error_message, processor FROM tasks")
        finally:
            await conn.close()
        outcomes = {}
        for row in rows:
            if row["id"] in bad:
                outcomes[row["id"]] = (bad[row["id"]], row["status"], row["error_message"])
                reason = row["error_message"] or ""
                expected = REASONS[bad[row["id"]]]
                if row["status"] != "failed" or expected not in reason or "Traceback" in reason:
                    scenario.violations.append(
                        f"{bad[row['id']]} task ended {row['status']} ({reason[:200]!r})"
                    )
            elif row["status"] != "completed":
                ended = f"{row['status']}: {row['error_message']}"
                scenario.violations.append(f"a normal {row['processor']} task ended {ended}")
        await asyncio.sleep(2)
        running = await asyncio.to_thread(_still_computing, pids)
        if running:
            scenario.violations.append(f"stopped attempts still computing: {running}")
        scenario.notes["bad_tasks"] = {
            kind: sorted(
                {
                    (status, (reason or "")[:160])
                    for k, status, reason in outcomes.values()
                    if k == kind
                }
            )
            for kind in sorted(set(bad.values()))
        }
        scenario.notes["counts_when_idle"] = counts
        await scenario.finish(30)
    finally:
        service.kill_everything()


def _still_computing(pids: Path) -> list[str]:
    """The processes that noted their pid in ``pids`` and are still alive."""
    running = []
    for note in pids.iterdir():
        pid = int(note.read_text())
        if _exists(pid):
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:120]
            running.append(f"{note.name.split('-')[0]} {pid} ({cmd.decode(errors='replace')})")
    return running


def _pathological() -> list[tuple[str, bytes]]:
    dots = b"." * 30720 + b"x"
    books = "".join(f"BOOK {n}\n\nIt was the {n}th morning.\n\n" for n in range(1, 7001))
    return [("dots.txt", dots), ("dots-2.txt", dots + b"\n"), ("books.txt", books.encode()),
            ("books-2.txt", (books + "THE END\n").encode())]  # fmt: skip


async def test_busy_pool_short_leases_and_pathological_input(
    make_service: MakeService, profile: Profile, chaos_figures: dict[str, Any]
) -> None:
    """6. One worker of 2 slots, 5 s leases, batches of 25 noop, adversarial manuscripts."""
    service = await asyncio.to_thread(make_service, TASK_TIMEOUT_SECONDS="20")
    scenario = Scenario("6-busy-pool-pathological", service, chaos_figures)
    try:
        await scenario.start(workers=1, concurrency=2)
        assert scenario.loader is not None
        assert scenario.client is not None
        loader, client = scenario.loader, scenario.client
        odd = []
        for name, content in _pathological():
            upload = await loader.upload(client, content, "analyze", name=name)
            assert upload.task_id is not None, upload.answers
            odd.append(upload.task_id)
        gate = asyncio.Semaphore(4)
        texts = [f"Part {i}\n\nA few words.\n".encode() for i in range(25)]

        async def one_batch() -> None:
            async with gate:
                await loader.batch(client, texts, "noop")

        stalls: list[str] = []

        async def watch_for_stall() -> None:
            """Pending work, free slots and nothing processing for 10 s is a stalled pool."""
            quiet_since: float | None = None
            while True:
                counts = await invariants.status_counts(service.database_url)
                if counts.get("pending", 0) and not counts.get("processing", 0):
                    quiet_since = quiet_since or time.monotonic()
                    if time.monotonic() - quiet_since > 10:
                        stalls.append(f"{counts}, /health: {await scenario.health()}")
                        return
                else:
                    quiet_since = None
                await asyncio.sleep(0.5)

        watchdog = asyncio.create_task(watch_for_stall())
        await asyncio.gather(
            *(one_batch() for _ in range(profile.batches)),
            scenario.produce(20, 5, seed=6, processors=("analyze",)),
        )
        counts = await invariants.wait_until_idle(service.database_url, profile.idle_within)
        watchdog.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watchdog
        if stalls:
            scenario.violations.append(f"the pool stalled: {stalls[0]}")
        conn = await asyncpg.connect(invariants.plain_url(service.database_url), timeout=10)
        try:
            rows = await conn.fetch(
                "SELECT file_name, status, error_message, completed_at - started_at AS took "
                "FROM tasks WHERE id = ANY($1::text[])",
                odd,
            )
        finally:
            await conn.close()
        scenario.notes["pathological"] = {
            r["file_name"]: [r["status"], str(r["took"]), (r["error_message"] or "")[:160]]
            for r in rows
        }
        for row in rows:
            if row["status"] != "completed":
                scenario.violations.append(
                    f"pathological {row['file_name']} ended {row['status']}: {row['error_message']}"
                )
        scenario.notes["counts_when_idle"] = counts
        await scenario.finish(30)
    finally:
        service.kill_everything()
