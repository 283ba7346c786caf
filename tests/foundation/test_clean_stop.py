"""Stopping the service is quiet: no traceback, no thread exception, no leaked semaphore.

``start_local.py`` and ``python -m app.worker`` run for real (the former
without its venv bootstrap: the tests already run in the project's venv), on
a data directory of their own, with a CPU-bound attempt running in a child
process when the process is told to stop: by SIGTERM (a service manager) or
by SIGINT to its whole process group (Ctrl-C in the terminal, which the
forkserver and the attempt's process receive too). Everything it printed is
read back; a clean stop prints none of the noise below, hands the running
task back, and leaves no process of its group behind.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT
from tests.foundation.stop_processors import PROCESSORS_SETTING

NOISE = (
    "Traceback",
    "Exception in thread",
    "leaked semaphore",
    "resource_tracker",
    "KeyboardInterrupt",
    "Exception ignored",
)
START_LOCAL = (
    "import tools.bootstrap as bootstrap; bootstrap.ensure_venv = lambda *a, **k: None; "
    "import start_local; start_local.main()"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


class Started:
    """A process in a process group of its own (as a terminal gives it), its output in files."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], tmp_path: Path) -> None:
        self.out, self.err = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=out, stderr=err, start_new_session=True
            )

    def printed(self) -> str:
        return self.out.read_text() + self.err.read_text()

    def stop(self, how: str) -> int:
        """Stop it as asked; its exit code once it and every process of its group are gone."""
        if how == "sigterm":
            self.process.send_signal(signal.SIGTERM)
        else:  # Ctrl-C: the terminal signals the whole foreground process group
            os.killpg(self.process.pid, signal.SIGINT)
        code = self.process.wait(timeout=30)
        deadline = time.monotonic() + 30
        while _group_alive(self.process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)  # the forkserver and its tracker leave once the process has gone
        assert not _group_alive(self.process.pid), "a process of the group outlived it"
        return code

    def kill(self) -> None:
        if _group_alive(self.process.pid):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def _assert_quiet(printed: str) -> None:
    for noise in NOISE:
        assert noise not in printed, printed


@pytest.mark.parametrize("how", ["sigterm", "ctrl-c"])
@pytest.mark.parametrize("stopped", ["start_local", "worker"])
def test_a_stop_with_an_attempt_running_prints_no_noise(
    tmp_path: Path, stopped: str, how: str
) -> None:
    port = _free_port()
    data_dir = tmp_path / "data"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_URL", "ADMIN_", "UPLOAD_DIR", "PROCESSORS"))
    }
    env.update(
        LOCAL_DATA_DIR=str(data_dir),
        UPLOAD_DIR=str(tmp_path / "uploads"),
        API_PORT=str(port),
        API_HOST="127.0.0.1",
        WORKER_CONCURRENCY="1" if stopped == "start_local" else "0",
        SHUTDOWN_GRACE_SECONDS="1",
        PROCESSORS=PROCESSORS_SETTING,
        PYTHONPATH=str(ROOT),
        LOG_LEVEL="INFO",
        RATE_LIMIT="10000/minute",
    )
    service = Started("service", [sys.executable, "-c", START_LOCAL], env, tmp_path)
    worker: Started | None = None
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert service.process.poll() is None, service.printed()
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.1)
        if stopped == "worker":
            worker_env = {
                **env,
                "DATABASE_URL": f"sqlite+aiosqlite:///{data_dir / 'novel_tasks.db'}",
                "WORKER_CONCURRENCY": "1",
            }
            worker = Started("worker", [sys.executable, "-m", "app.worker"], worker_env, tmp_path)
        key = json.loads((data_dir / "local-api-key.json").read_text())["key"]
        auth = {"Authorization": f"Bearer {key}"}
        created = httpx.post(
            f"{base}/api/v1/tasks/upload",
            files={"file": ("book.txt", b"Chapter 1\n\nA story.\n", "text/plain")},
            data={"processor": "busy"},
            headers=auth,
        )
        assert created.status_code == 202, created.text
        task_url = f"{base}/api/v1/tasks/{created.json()['id']}"
        while httpx.get(task_url, headers=auth).json()["progress"] == 0:  # running in its child
            assert time.monotonic() < deadline, "the attempt did not start"
            time.sleep(0.2)

        target = worker or service
        code = target.stop(how)
        printed = target.printed()
        assert code in (0, -signal.SIGTERM, -signal.SIGINT), printed
        assert "worker_pool_stopped" in printed
        assert "attempt_handed_back" in printed  # the running task went back to the queue
        _assert_quiet(printed)
        task = httpx.get(task_url, headers=auth).json() if worker else None
        if worker is not None:
            assert code == 0  # python -m app.worker exits 0 after a graceful stop
            assert task is not None
            assert task["status"] == "pending"
            assert task["retry_count"] == 0  # handed back, not failed
            assert service.stop("sigterm") in (0, -signal.SIGTERM)
            _assert_quiet(service.printed())
    finally:
        for started in (worker, service):
            if started is not None:
                started.kill()
