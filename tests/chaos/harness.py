"""Real processes for the chaos suite: a PostgreSQL server of its own, the API, workers.

``PgServer`` runs a private PostgreSQL cluster (``initdb`` into a temp
directory, trust auth, a free loopback port) that the scenarios may stop and
restart at will; the machine's own server is never touched. ``Service`` starts
``uvicorn app.main:app`` (``WORKER_CONCURRENCY=0``) and ``python -m app.worker``
processes against one scenario's database and upload directory, each with a
log file, and kills or stops them on demand. Every process it starts carries
``NTM_CHAOS_RUN=<unique id>`` in its environment, which its children inherit,
so ``marked_processes`` finds anything left behind (forkservers, pool children).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.conftest import ROOT

CHAOS_MARKER = "NTM_CHAOS_RUN"
SECRET_KEY = "chaos-secret-key-that-is-long-enough-0123456789"
ADMIN_EMAIL = "chaos@example.com"
ADMIN_PASSWORD = "chaos-admin-password-0123"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def postgres_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` with ``initdb``, if any."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    return Path(found[-1]).parent if found else None


class PgServer:
    """A private PostgreSQL cluster in a temp directory (run as ``postgres`` when we are root)."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="ntm-chaos-pg-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sock"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False, cwd=self.root
        )

    def init(self) -> None:
        self.sockets.mkdir()
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            for path in (self.root, self.sockets):
                os.chown(path, user.pw_uid, user.pw_gid)
        done = self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                         "-E", "UTF8", "--no-sync")  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stdout}\n{done.stderr}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=300"
        )
        done = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                         "-o", options, "start")  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {done.stdout}\n{done.stderr}\n{self.tail()}")

    def stop(self, mode: str = "fast") -> None:
        done = self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        if done.returncode != 0 and self.pid() is not None:
            raise RuntimeError(f"pg_ctl stop failed: {done.stdout}\n{done.stderr}")

    def pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def url(self, database: str = "postgres", driver: str = "postgresql+asyncpg") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def destroy(self) -> None:
        """Stop the server (by its pid if pg_ctl cannot) and remove its directory."""
        pid = self.pid()
        with contextlib.suppress(Exception):
            self.stop("immediate")
        if pid is not None and _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return {p for p in found if _alive(p)}


def marked_processes(run_id: str) -> dict[int, str]:
    """Live processes whose environment carries ``NTM_CHAOS_RUN=run_id``: pid → command line."""
    needle = f"{CHAOS_MARKER}={run_id}".encode()
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0") and _alive(int(entry.name)):
                cmdline = (
                    (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                )
                found[int(entry.name)] = cmdline.strip()
        except OSError:
            continue
    return found


@dataclass
class Proc:
    kind: str  # "api" or "worker"
    popen: subprocess.Popen[bytes]
    log_path: Path
    started_at: float
    worker_id: str | None = None
    exit_code: int | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None


@dataclass
class Service:
    """The API and worker processes of one scenario."""

    database_url: str
    upload_dir: Path
    run_dir: Path
    env_overrides: dict[str, str] = field(default_factory=dict)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    port: int = field(default_factory=free_port)
    procs: list[Proc] = field(default_factory=list)
    _serial: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, concurrency: int) -> dict[str, str]:
        from tests.chaos.processors import PROCESSORS_SETTING

        values = {
            **os.environ,
            "ENVIRONMENT": "test",
            "DATABASE_URL": self.database_url,
            "UPLOAD_DIR": str(self.upload_dir),
            "SECRET_KEY": SECRET_KEY,
            "ADMIN_EMAIL": ADMIN_EMAIL,
            "ADMIN_PASSWORD": ADMIN_PASSWORD,
            "WORKER_CONCURRENCY": str(concurrency),
            "TASK_LEASE_SECONDS": "5",
            "TASK_RETRY_BACKOFF_SECONDS": "0.5",
            "TASK_TIMEOUT_SECONDS": "60",
            "WORKER_POLL_SECONDS": "1",
            "SHUTDOWN_GRACE_SECONDS": "3",
            "RATE_LIMIT": "1000000/minute",
            "LOGIN_RATE_LIMIT": "10000/minute",
            "PROCESSORS": PROCESSORS_SETTING,
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
            "PYTHONPATH": str(ROOT),
            CHAOS_MARKER: self.run_id,
        }
        values.update(self.env_overrides)
        return values

    @property
    def lease_seconds(self) -> float:
        return float(self.env(0)["TASK_LEASE_SECONDS"])

    def _log_path(self, kind: str) -> Path:
        self._serial += 1
        return self.run_dir / f"{self._serial:03d}-{kind}.log"

    def start_api(self, wait: float = 60) -> Proc:
        log_path = self._log_path("api")
        command = [
            *(sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1"),
            *("--port", str(self.port), "--no-access-log", "--timeout-graceful-shutdown", "5"),
        ]
        with log_path.open("wb") as log:
            popen = subprocess.Popen(
                command, cwd=self.run_dir, env=self.env(0), stdout=log, stderr=subprocess.STDOUT
            )
        proc = Proc("api", popen, log_path, time.monotonic())
        self.procs.append(proc)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not proc.alive():
                raise RuntimeError(f"the API exited:\n{log_path.read_text()[-4000:]}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=2).status_code in (200, 503):
                    return proc
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the API did not answer:\n{log_path.read_text()[-4000:]}")

    def start_worker(self, concurrency: int = 2, wait: float = 60) -> Proc:
        log_path = self._log_path("worker")
        with log_path.open("wb") as log:
            popen = subprocess.Popen(
                [sys.executable, "-m", "app.worker"],
                cwd=self.run_dir,
                env=self.env(concurrency),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        proc = Proc("worker", popen, log_path, time.monotonic())
        self.procs.append(proc)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            for line in log_path.read_text(errors="replace").splitlines():
                if line.startswith("worker ") and line.endswith(" ready"):
                    proc.worker_id = line.split()[1]
                    return proc
            if not proc.alive():
                raise RuntimeError(f"a worker exited:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.05)
        raise RuntimeError(f"a worker did not start:\n{log_path.read_text()[-4000:]}")

    def live(self, kind: str | None = None) -> list[Proc]:
        return [p for p in self.procs if p.alive() and (kind is None or p.kind == kind)]

    def signal_all(self, signum: int) -> None:
        for proc in self.live():
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signum)

    def wait_exit(self, procs: list[Proc], timeout: float) -> dict[int, int | None]:
        """Wait for ``procs`` to exit; pid → exit code (None: still running at the deadline)."""
        deadline = time.monotonic() + timeout
        codes: dict[int, int | None] = {}
        for proc in procs:
            try:
                proc.exit_code = proc.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.exit_code = None
            codes[proc.pid] = proc.exit_code
        return codes

    def stop(self, timeout: float = 30) -> dict[int, int | None]:
        """SIGTERM every live process and wait for it; SIGKILL what is left after ``timeout``."""
        running = self.live()
        self.signal_all(signal.SIGTERM)
        codes = self.wait_exit(running, timeout)
        for proc in running:
            if proc.alive():
                proc.popen.kill()
                proc.popen.wait()
        return codes

    def kill_everything(self) -> None:
        """Last resort at teardown: SIGKILL every process of this run, children included."""
        for proc in self.procs:
            if proc.alive():
                proc.popen.kill()
                proc.popen.wait()
        for pid in marked_processes(self.run_id):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def logs(self, chars: int = 2000) -> str:
        parts = []
        for proc in self.procs:
            with contextlib.suppress(OSError):
                text = proc.log_path.read_text(errors="replace")
                parts.append(f"--- {proc.log_path.name} (pid {proc.pid}) ---\n{text[-chars:]}")
        return "\n".join(parts)
