"""Real worker processes: crash recovery, fencing of a paused worker, shared claims,
and no process left behind by a worker that is killed or stopped."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.models import Task, TaskLog, TaskResult
from tests.conftest import ROOT
from tests.queue.conftest import MakeTask, reload
from tests.queue.processors import PROCESSORS_SETTING
from tests.queue.test_stopping import alive, spin_pid


class Workers:
    """Starts ``python -m app.worker`` processes on the test database."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.procs: list[subprocess.Popen[str]] = []

    def start(
        self, slow_seconds: float = 3.0, concurrency: int = 1, *, new_session: bool = False
    ) -> subprocess.Popen[str]:
        env = {
            **os.environ,
            "DATABASE_URL": self.settings.database_url,
            "UPLOAD_DIR": str(self.settings.upload_dir),
            "WORKER_CONCURRENCY": str(concurrency),
            "TASK_LEASE_SECONDS": "1",
            "TASK_RETRY_BACKOFF_SECONDS": "0",
            "WORKER_POLL_SECONDS": "0.2",
            "SHUTDOWN_GRACE_SECONDS": "1",
            "PROCESSORS": PROCESSORS_SETTING,
            "NTM_TEST_SLOW_SECONDS": str(slow_seconds),
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.worker"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=new_session,
        )
        self.procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("worker "), line
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


@pytest.fixture
def workers(settings: Settings) -> Iterator[Workers]:
    group = Workers(settings)
    yield group
    group.stop_all()


async def wait_for(
    sessions: async_sessionmaker[AsyncSession], task_id: str, within: float, **expected: Any
) -> Task:
    async with asyncio.timeout(within):
        while True:
            task = await reload(sessions, task_id)
            if all(getattr(task, k) == v for k, v in expected.items()):
                return task
            await asyncio.sleep(0.05)


async def test_a_killed_worker_s_task_is_recovered(
    workers: Workers, make_task: MakeTask, sessions: async_sessionmaker[AsyncSession]
) -> None:
    task = await make_task("slow")
    first = workers.start(slow_seconds=30)
    await wait_for(sessions, task.id, 20, status="processing")
    first.kill()
    first.wait()
    second = workers.start(slow_seconds=0.5)
    done = await wait_for(sessions, task.id, 30, status="completed")
    assert (done.retry_count, done.attempt) == (1, 2)
    async with sessions() as session:
        result = (await session.execute(select(TaskResult))).scalar_one()
        messages = (await session.execute(select(TaskLog.message))).scalars().all()
    assert result.summary == str(second.pid)
    assert any("stopped responding" in m for m in messages)


@pytest.mark.postgres_only
async def test_a_paused_worker_cannot_overwrite_the_newer_attempt(
    workers: Workers, make_task: MakeTask, sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:  # fmt: skip
    task = await make_task("slow")
    paused = workers.start(slow_seconds=2.5)
    await wait_for(sessions, task.id, 20, status="processing", attempt=1)
    await asyncio.sleep(0.3)
    os.kill(paused.pid, signal.SIGSTOP)
    second = workers.start(slow_seconds=2.5)
    done = await wait_for(sessions, task.id, 30, status="completed")
    assert done.attempt == 2
    os.kill(paused.pid, signal.SIGCONT)
    await asyncio.sleep(3.5)  # the first worker wakes up, finishes its sleep, tries to write
    final = await reload(sessions, task.id)
    assert (final.status, final.attempt, final.progress) == ("completed", 2, 100)
    async with sessions() as session:
        result = (await session.execute(select(TaskResult))).scalar_one()
    assert (result.summary, result.attempt) == (str(second.pid), 2)
    written = (settings.upload_dir / "tasks" / task.id / "results" / "slow.txt").read_text()
    assert written == f"done by pid {second.pid}\n"
    assert paused.poll() is None  # still alive, it simply lost the attempt


@pytest.mark.postgres_only
async def test_several_processes_share_one_queue_without_double_claims(
    workers: Workers, make_task: MakeTask, sessions: async_sessionmaker[AsyncSession]
) -> None:
    ids = [(await make_task("writer")).id for _ in range(40)]
    for _ in range(3):
        workers.start(concurrency=4)
    async with asyncio.timeout(60):
        while True:
            async with sessions() as session:
                done = await session.execute(
                    select(func.count()).select_from(Task).where(Task.status == "completed")
                )
                if done.scalar_one() == len(ids):
                    break
            await asyncio.sleep(0.1)
    async with sessions() as session:
        attempts = (await session.execute(select(Task.attempt))).scalars().all()
        starts = await session.execute(
            select(func.count()).select_from(TaskLog).where(TaskLog.message.like("Started%"))
        )
    assert set(attempts) == {1}
    assert starts.scalar_one() == len(ids)


async def test_sigterm_hands_back_and_exits_zero(
    workers: Workers, make_task: MakeTask, sessions: async_sessionmaker[AsyncSession]
) -> None:
    task = await make_task("slow")
    proc = workers.start(slow_seconds=30)
    await wait_for(sessions, task.id, 20, status="processing")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    back = await reload(sessions, task.id)
    assert (back.status, back.retry_count) == ("pending", 0)


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text.rsplit(")", 1)[1].split()  # state, ppid, pgrp, ...


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children, their children...)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return {p for p in found if alive(p)}


def group_members(pgid: int) -> set[int]:
    """Live processes of process group ``pgid``."""
    members = set()
    for entry in Path("/proc").iterdir():
        fields = _stat(int(entry.name)) if entry.name.isdigit() else None
        if fields is not None and int(fields[2]) == pgid and fields[0] != "Z":
            members.add(int(entry.name))
    return members


async def wait_all_gone(pids: set[int], within: float) -> None:
    async with asyncio.timeout(within):
        while any(alive(pid) for pid in pids):
            await asyncio.sleep(0.05)


async def test_a_sigkilled_worker_leaves_no_process_behind(
    workers: Workers, make_task: MakeTask, sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:  # fmt: skip
    task = await make_task("spin")
    proc = workers.start(new_session=True)
    spinning = await spin_pid(settings, task.id)
    family = descendants(proc.pid)
    assert spinning in family
    assert len(family) >= 2  # the forkserver and the attempt, and a resource tracker
    proc.kill()
    proc.wait()
    await wait_all_gone(family, within=5)
    assert group_members(proc.pid) == set()
    # the next worker takes the task back once its lease ran out, and removes the
    # dead attempt's directory
    workers.start()
    await wait_for(sessions, task.id, 30, attempt=2)
    stale = settings.upload_dir / "tasks" / task.id / "attempt-1.tmp"
    async with asyncio.timeout(10):
        while stale.exists():
            await asyncio.sleep(0.05)


async def test_a_sigtermed_worker_stops_its_processes_and_exits_after_its_grace(
    workers: Workers, make_task: MakeTask, sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:  # fmt: skip
    task = await make_task("spin")
    proc = workers.start(new_session=True)
    spinning = await spin_pid(settings, task.id)
    family = descendants(proc.pid)
    assert spinning in family
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0  # SHUTDOWN_GRACE_SECONDS is 1 here
    await wait_all_gone(family, within=5)
    assert group_members(proc.pid) == set()
    back = await reload(sessions, task.id)
    assert (back.status, back.retry_count) == ("pending", 0)
    assert not (settings.upload_dir / "tasks" / task.id / "attempt-1.tmp").exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.sqlite_only
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
async def test_the_api_process_s_attempt_processes_die_with_it(
    signum: int, make_task: MakeTask, settings: Settings, tmp_path: Path
) -> None:
    """uvicorn with workers in-process: SIGTERM (a graceful stop) or SIGKILL leaves
    neither the attempt's process nor the forkserver nor the resource tracker."""
    task = await make_task("spin")
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "UPLOAD_DIR": str(settings.upload_dir),
        "SECRET_KEY": settings.secret_key,
        "WORKER_CONCURRENCY": "1",
        "SHUTDOWN_GRACE_SECONDS": "1",
        "TASK_LEASE_SECONDS": "5",
        "PROCESSORS": PROCESSORS_SETTING,
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    port = _free_port()
    with (tmp_path / "api.log").open("w") as log_file:
        proc = subprocess.Popen(  # noqa: ASYNC220 - a server process, started once
            [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        spinning = await spin_pid(settings, task.id)
        family = descendants(proc.pid)
        assert spinning in family
        proc.send_signal(signum)
        await asyncio.to_thread(proc.wait, 15)
        await wait_all_gone(family, within=5)
        assert group_members(proc.pid) == set()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in (tmp_path / "api.log").read_text()
