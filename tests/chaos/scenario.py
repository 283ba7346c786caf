"""What every chaos scenario shares: start, load, watch, and end with the invariants."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from tests.chaos import invariants
from tests.chaos.harness import ADMIN_EMAIL, ADMIN_PASSWORD, Service
from tests.chaos.load import REQUEST_TIMEOUT, LiveWatcher, Loader, login, manuscripts

MIX = ("noop", "noop", "analyze")
"""The processors of the load, drawn at random: two thirds ``noop``, one third ``analyze``."""
RECOVERY_MARGIN_SECONDS = 5.0
"""The issue's bound: a task completes again within TASK_LEASE_SECONDS + this after a fault."""


@dataclass
class Scenario:
    name: str
    service: Service
    figures: dict[str, Any]
    loader: Loader | None = None
    watcher: LiveWatcher | None = None
    client: httpx.AsyncClient | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    recoveries: list[float] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    @property
    def recovery_bound(self) -> float:
        return self.service.lease_seconds + RECOVERY_MARGIN_SECONDS

    async def start(self, workers: int = 2, concurrency: int = 2, sse_tasks: int = 4) -> None:
        await asyncio.to_thread(self.service.start_api)
        for _ in range(workers):
            await asyncio.to_thread(self.service.start_worker, concurrency)
        token = await login(self.service.base_url, ADMIN_EMAIL, ADMIN_PASSWORD)
        self.loader = Loader(self.service.base_url, token)
        self.watcher = LiveWatcher(self.service.base_url, token)
        self.client = httpx.AsyncClient(base_url=self.service.base_url, timeout=REQUEST_TIMEOUT)
        self.watcher.start_ws()
        for text in manuscripts(sse_tasks, seed=7):
            upload = await self.loader.upload(self.client, text, "analyze", name="followed.txt")
            assert upload.task_id is not None
            self.watcher.follow_sse(upload.task_id)

    async def produce(self, count: int, over_seconds: float, seed: int, parallel: int = 4,
                      processors: tuple[str, ...] = MIX) -> None:  # fmt: skip
        """Upload ``count`` corpus slices spread over ``over_seconds``, ``parallel`` at a time."""
        assert self.loader is not None
        assert self.client is not None
        loader, client = self.loader, self.client
        texts = manuscripts(count, seed)
        rng = random.Random(seed)
        gate = asyncio.Semaphore(parallel)
        begin = time.monotonic()

        async def one(index: int, text: bytes) -> None:
            await asyncio.sleep(max(0.0, begin + index * over_seconds / count - time.monotonic()))
            async with gate:
                await loader.upload(client, text, rng.choice(processors), name=f"slice-{index}.txt")

        await asyncio.gather(*(one(i, t) for i, t in enumerate(texts)))

    async def follow_active(self, count: int = 3) -> int:
        """Follow ``count`` more tasks that are pending or processing right now over SSE.

        Called just before a fault, so the SSE clients live through it (their
        stream dropped, resumed with ``Last-Event-ID``) with work still to see.
        """
        assert self.watcher is not None
        conn = await asyncpg.connect(invariants.plain_url(self.service.database_url), timeout=10)
        try:
            rows = await conn.fetch(
                "SELECT id FROM tasks WHERE status IN ('pending', 'processing') "
                "ORDER BY uploaded_at DESC LIMIT $1",
                count,
            )
        finally:
            await conn.close()
        for row in rows:
            self.watcher.follow_sse(row["id"])
        return len(rows)

    async def completed_count(self) -> int:
        counts = await invariants.status_counts(self.service.database_url)
        return counts.get("completed", 0)

    async def time_to_next_completion(self, cleared_at: float, within: float = 120) -> float:
        """Seconds from ``cleared_at`` until a task completes again.

        A ``noop`` probe of the highest priority is uploaded at once (retried
        until the API takes it), so there is always something quick to complete;
        whichever task completes first ends the wait.
        """
        assert self.loader is not None
        assert self.client is not None
        probe = asyncio.create_task(
            self.loader.upload(self.client, b"Chapter 1\n\nA probe.\n", "noop", priority=10)
        )
        baseline: int | None = None
        deadline = time.monotonic() + within
        try:
            while time.monotonic() < deadline:
                try:
                    done = await self.completed_count()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    await asyncio.sleep(0.1)
                    continue
                if baseline is None:
                    baseline = done
                elif done > baseline:
                    return time.monotonic() - cleared_at
                await asyncio.sleep(0.1)
            return float("inf")
        finally:
            await probe

    def record_recovery(self, what: str, seconds: float) -> None:
        self.recoveries.append(seconds)
        if seconds > self.recovery_bound:
            self.violations.append(
                f"{what}: recovery took {seconds:.1f} s, more than "
                f"TASK_LEASE_SECONDS + {RECOVERY_MARGIN_SECONDS:g} = {self.recovery_bound:g} s"
            )

    async def finish(
        self, idle_within: float, extra: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        """Drain, stop, check every invariant, record the figures, fail with every violation."""
        assert self.loader is not None
        assert self.watcher is not None
        assert self.client is not None
        url = self.service.database_url
        phases: dict[str, float] = {}
        mark = time.monotonic()
        counts = await invariants.wait_until_idle(url, idle_within)
        phases["drain_s"], mark = round(time.monotonic() - mark, 2), time.monotonic()
        if any(counts.get(s) for s in invariants.ACTIVE):
            health = await self.health()
            self.violations.append(
                f"not idle {idle_within:g} s after the load: {counts} ({health})"
            )
        if extra is not None:
            await extra()
        await invariants.settle_files(url, self.service.upload_dir, self.recovery_bound)
        phases["files_settle_s"], mark = round(time.monotonic() - mark, 2), time.monotonic()
        truth = {}
        conn = await asyncpg.connect(invariants.plain_url(url), timeout=10)
        try:
            truth = {r["id"]: r["status"] for r in await conn.fetch("SELECT id, status FROM tasks")}
        finally:
            await conn.close()
        disagree = await self.watcher.converge(truth, within=15)
        phases["clients_converge_s"], mark = round(time.monotonic() - mark, 2), time.monotonic()
        for kind, wrong in disagree.items():
            if wrong:
                self.violations.append(
                    f"{kind} clients missed the final state of {len(wrong)} task(s): {wrong[:5]}"
                )
        await self.watcher.stop()
        await self.client.aclose()
        exits = await asyncio.to_thread(self.service.stop)
        stuck = [pid for pid, code in exits.items() if code is None]
        if stuck:
            self.violations.append(f"processes that did not exit within 30 s of SIGTERM: {stuck}")
        phases["stop_s"], mark = round(time.monotonic() - mark, 2), time.monotonic()
        left = await invariants.orphan_processes(self.service.run_id)
        phases["orphan_wait_s"] = round(time.monotonic() - mark, 2)
        if left:
            self.violations.append(f"processes left behind: {left}")
        report = await invariants.check(url, self.service.upload_dir, self.loader.uploads)
        server_errors = [p for p in self.loader.problems if p["status"] not in (503, 507)]
        if server_errors:
            self.violations.append(f"uploads answered other 5xx: {server_errors[:3]}")
        unhinted = [
            p for p in self.loader.problems if p["status"] in (503, 507) and not p["retry_after"]
        ]
        if unhinted:
            self.violations.append(f"503/507 without Retry-After: {unhinted[:3]}")
        if self.loader.answers.get("timeout"):
            count = self.loader.answers["timeout"]
            self.violations.append(f"{count} upload(s) unanswered within {REQUEST_TIMEOUT:g} s")
        self.figures[self.name] = {
            **report.figures,
            "upload_answers": dict(sorted(self.loader.answers.items())),
            "slowest_upload_s": round(self.loader.slowest, 2),
            "recovery_s": [round(r, 2) for r in self.recoveries],
            "recovery_max_s": round(max(self.recoveries), 2) if self.recoveries else None,
            "recovery_bound_s": self.recovery_bound,
            "live_clients": self.watcher.figures(),
            "duration_s": round(time.monotonic() - self.started, 1),
            "phases": phases,
            **self.notes,
            "violations": self.violations + report.violations,
        }
        report.violations[:0] = self.violations
        report.assert_ok(f"in scenario {self.name} (process logs in {self.service.run_dir})")

    async def health(self) -> str:
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                response = await client.get(f"{self.service.base_url}/health")
        except httpx.HTTPError as exc:
            return type(exc).__name__
        return f"{response.status_code} {response.text[:300]}"
