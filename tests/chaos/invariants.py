"""The invariants every chaos scenario ends with, read from the database and the disk.

``check`` lists every violation (it does not stop at the first) and the
figures the report quotes:

1. every accepted upload has exactly one task, and no refused upload left one;
2. once idle, no task is ``pending`` or ``processing`` and the queue is empty;
3. every task is ``completed``, ``failed`` with a reason, or ``cancelled``;
4. none completed twice and nothing was written by a stale attempt: per task at
   most one result row and one ``Completed`` log row, both of the task's
   current attempt, exactly one of each for a completed task, each attempt
   started once;
5. every stored file (uploads and results) exists with its recorded size and
   checksum, and every completed task has its result files;
6. no orphan files: nothing under ``.tmp/``, no ``attempt-*.tmp`` directory,
   no file or task directory the database does not know.

``orphan_processes`` checks the last invariant, no process left behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from tests.chaos.harness import marked_processes
from tests.chaos.load import Upload

ACTIVE = ("pending", "processing")


@dataclass
class Report:
    violations: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def add(self, message: str, items: list[str] | None = None, limit: int = 8) -> None:
        if items is None:
            self.violations.append(message)
        elif items:
            shown = ", ".join(items[:limit]) + (
                f" … ({len(items)} in all)" if len(items) > limit else ""
            )
            self.violations.append(f"{message}: {shown}")

    def assert_ok(self, context: str = "") -> None:
        assert not self.violations, (
            f"{len(self.violations)} invariant(s) broken{' ' + context if context else ''}:\n- "
            + "\n- ".join(self.violations)
        )


def plain_url(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://")


async def status_counts(database_url: str) -> dict[str, int]:
    conn = await asyncpg.connect(plain_url(database_url), timeout=10)
    try:
        rows = await conn.fetch("SELECT status, count(*) AS n FROM tasks GROUP BY status")
    finally:
        await conn.close()
    return {row["status"]: row["n"] for row in rows}


async def wait_until_idle(database_url: str, within: float) -> dict[str, int]:
    """Poll until no task is pending or processing (or ``within`` s pass); the last counts."""
    deadline = time.monotonic() + within
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        try:
            counts = await status_counts(database_url)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            await asyncio.sleep(0.5)
            continue
        if not any(counts.get(s) for s in ACTIVE):
            return counts
        await asyncio.sleep(0.5)
    return counts


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


async def check(database_url: str, upload_dir: Path, uploads: list[Upload]) -> Report:
    """Every invariant of the module doc; the figures are counts for docs/reliability.md."""
    report = Report()
    conn = await asyncpg.connect(plain_url(database_url), timeout=10)
    try:
        tasks = {row["id"]: row for row in await conn.fetch(
            "SELECT id, status, error_message, attempt, idempotency_key, batch_id, processor "
            "FROM tasks"
        )}  # fmt: skip
        queue_rows = await conn.fetchval("SELECT count(*) FROM task_queue")
        results = await conn.fetch("SELECT task_id, attempt FROM task_results")
        logs = await conn.fetch(
            "SELECT task_id, attempt, message FROM task_logs "
            "WHERE message = 'Completed' OR message LIKE 'Started attempt %'"
        )
        stale_logs = await conn.fetch(
            "SELECT l.task_id, l.attempt, t.attempt AS current FROM task_logs l "
            "JOIN tasks t ON t.id = l.task_id WHERE l.attempt > t.attempt"
        )
        files = await conn.fetch(
            "SELECT task_id, kind, name, storage_path, size, checksum FROM file_storage "
            "WHERE deleted_at IS NULL"
        )
    finally:
        await conn.close()

    # 1. one task per accepted upload, none for a refused one
    accepted = {u.task_id for u in uploads if u.task_id is not None}
    by_key: dict[str, list[str]] = {}
    for task in tasks.values():
        if task["idempotency_key"]:
            by_key.setdefault(task["idempotency_key"], []).append(task["id"])
    single = [u for u in uploads if u.batch_id is None]
    lost = [u.task_id for u in uploads if u.task_id is not None and u.task_id not in tasks]
    report.add("accepted uploads without their task (lost)", [str(t) for t in lost])
    report.add(
        "uploads with more than one task",
        [f"{u.key}: {by_key[u.key]}" for u in single if len(by_key.get(u.key, [])) > 1],
    )
    report.add(
        "refused uploads that left a task",
        [f"{u.key} ({'/'.join(u.answers)})" for u in single if u.refused and by_key.get(u.key)],
    )
    report.add("tasks nobody accepted", sorted(set(tasks) - accepted))

    # 2. idle; 3. a final state each, failures with a reason
    report.add("tasks still pending or processing", [
        f"{t['id']} {t['status']}" for t in tasks.values() if t["status"] in ACTIVE
    ])  # fmt: skip
    if queue_rows:
        report.add(f"{queue_rows} rows left in task_queue")
    report.add("failed tasks without a reason", [
        t["id"] for t in tasks.values()
        if t["status"] == "failed" and not (t["error_message"] or "").strip()
    ])  # fmt: skip

    # 4. completed once, by the current attempt
    result_rows: dict[str, list[int]] = {}
    for row in results:
        result_rows.setdefault(row["task_id"], []).append(row["attempt"])
    completed_logs: dict[str, list[int]] = {}
    started: dict[tuple[str, int], int] = {}
    for row in logs:
        if row["message"] == "Completed":
            completed_logs.setdefault(row["task_id"], []).append(row["attempt"])
        else:
            key = (row["task_id"], row["attempt"])
            started[key] = started.get(key, 0) + 1
    duplicated, stale, missing = [], [], []
    for task in tasks.values():
        done = task["status"] == "completed"
        made, logged = result_rows.get(task["id"], []), completed_logs.get(task["id"], [])
        if len(made) > 1 or len(logged) > 1:
            duplicated.append(f"{task['id']} results={len(made)} completed_logs={len(logged)}")
        if any(a != task["attempt"] for a in made + logged):
            stale.append(f"{task['id']} attempt {task['attempt']}, writes by {made + logged}")
        if done and (len(made) != 1 or len(logged) != 1):
            missing.append(f"{task['id']} results={len(made)} completed_logs={len(logged)}")
        if not done and (made or logged):
            stale.append(f"{task['id']} is {task['status']} but has a result")
    report.add("tasks completed more than once", duplicated)
    report.add("writes from a stale attempt", stale)
    report.add("completed tasks without exactly one result and completion", missing)
    report.add("attempts started twice", [f"{t}#{a}" for (t, a), n in started.items() if n > 1])
    report.add("log rows from an attempt that never existed", [
        f"{r['task_id']} attempt {r['attempt']} > {r['current']}" for r in stale_logs
    ])  # fmt: skip

    # 5. files as recorded
    known_paths = set()
    bad_files = []
    result_files: dict[str, int] = {}
    for row in files:
        path = upload_dir / row["storage_path"]
        known_paths.add(path.resolve())
        if row["kind"] == "result":
            result_files[row["task_id"]] = result_files.get(row["task_id"], 0) + 1
            owner = tasks.get(row["task_id"])
            if owner is None or owner["status"] != "completed":
                bad_files.append(f"{row['storage_path']}: result of a task that did not complete")
        try:
            size = path.stat().st_size
            checksum = await asyncio.to_thread(_sha256, path)
        except OSError as exc:
            bad_files.append(f"{row['storage_path']}: {exc.strerror}")
            continue
        if (size, checksum) != (row["size"], row["checksum"]):
            bad_files.append(f"{row['storage_path']}: size/checksum differ from the record")
    report.add("stored files not as recorded", bad_files)
    report.add("completed analyze tasks without result files", [
        t["id"] for t in tasks.values()
        if t["status"] == "completed" and t["processor"] == "analyze"
        and not result_files.get(t["id"])
    ])  # fmt: skip

    # 6. nothing on disk the database does not know
    report.add(
        "orphan files", await asyncio.to_thread(_orphan_files, upload_dir, known_paths, set(tasks))
    )

    statuses: dict[str, int] = {}
    for task in tasks.values():
        statuses[task["status"]] = statuses.get(task["status"], 0) + 1
    report.figures = {
        "uploads_accepted": len(accepted),
        "uploads_refused": sum(1 for u in uploads if u.refused),
        "tasks": len(tasks),
        "by_status": statuses,
        "lost": len(lost),
        "duplicated": len(duplicated),
        "stale_writes": len(stale),
    }
    return report


def _orphan_files(upload_dir: Path, known: set[Path], task_ids: set[str]) -> list[str]:
    found: list[str] = []
    if not upload_dir.exists():
        return found
    for path in upload_dir.rglob("*"):
        relative = path.relative_to(upload_dir).as_posix()
        parts = relative.split("/")
        if path.is_dir():
            if parts[-1].startswith("attempt-") or (
                len(parts) == 2 and parts[0] == "tasks" and parts[1] not in task_ids
            ):
                found.append(relative + "/")
            continue
        if path.resolve() not in known:
            found.append(relative)
    return sorted(found)


async def settle_files(database_url: str, upload_dir: Path, within: float) -> list[str]:
    """Give the service ``within`` s to clean up after failed attempts; the orphans left."""
    deadline = time.monotonic() + within
    while True:
        conn = await asyncpg.connect(plain_url(database_url), timeout=10)
        try:
            paths = await conn.fetch(
                "SELECT storage_path FROM file_storage WHERE deleted_at IS NULL"
            )
            ids = {r["id"] for r in await conn.fetch("SELECT id FROM tasks")}
        finally:
            await conn.close()
        known = {(upload_dir / r["storage_path"]).resolve() for r in paths}
        left = await asyncio.to_thread(_orphan_files, upload_dir, known, ids)
        if not left or time.monotonic() > deadline:
            return left
        await asyncio.sleep(0.5)


async def orphan_processes(run_id: str, within: float = 10.0) -> dict[int, str]:
    """Processes of this run still alive after ``within`` s (everything should have stopped)."""
    deadline = time.monotonic() + within
    while True:
        left = marked_processes(run_id)
        if not left or time.monotonic() > deadline:
            return left
        await asyncio.sleep(0.25)
