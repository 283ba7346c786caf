"""Stopping the service is quiet: no traceback, no thread exception, no leaked semaphore.

``start_local.py`` runs for real (its venv bootstrap aside: the tests already
run in the project's venv), on a data directory of its own, with a CPU-bound
attempt running in a child process when it is told to stop: by SIGTERM (a
service manager) or by SIGINT to its whole process group (Ctrl-C in the
terminal, which the forkserver and the attempt's process receive too).
Everything it printed is read back; a clean stop prints none of the noise
below, and leaves no process of its group behind.
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
START = (
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


@pytest.mark.parametrize("how", ["sigterm", "ctrl-c"])
def test_a_stop_with_an_attempt_running_prints_no_noise(tmp_path: Path, how: str) -> None:
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_URL", "ADMIN_", "UPLOAD_DIR", "PROCESSORS"))
    }
    env.update(
        LOCAL_DATA_DIR=str(tmp_path / "data"),
        UPLOAD_DIR=str(tmp_path / "uploads"),
        API_PORT=str(port),
        API_HOST="127.0.0.1",
        WORKER_CONCURRENCY="1",
        SHUTDOWN_GRACE_SECONDS="1",
        PROCESSORS=PROCESSORS_SETTING,
        PYTHONPATH=str(ROOT),
        LOG_LEVEL="INFO",
        RATE_LIMIT="10000/minute",
    )
    out_path, err_path = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-c", START],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=err,
            start_new_session=True,  # its own process group, as a terminal gives it
        )
    pgid = process.pid
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, err_path.read_text()
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.1)
        key = json.loads((tmp_path / "data" / "local-api-key.json").read_text())["key"]
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

        if how == "sigterm":
            process.send_signal(signal.SIGTERM)
        else:
            os.killpg(pgid, signal.SIGINT)
        code = process.wait(timeout=30)
        while _group_alive(pgid) and time.monotonic() < deadline + 30:
            time.sleep(0.1)  # the forkserver and its tracker leave once the service has gone
        assert not _group_alive(pgid), "a process of the service outlived it"
    finally:
        if _group_alive(pgid):
            os.killpg(pgid, signal.SIGKILL)
        process.wait()
    printed = out_path.read_text() + err_path.read_text()
    assert code in (0, -signal.SIGTERM, -signal.SIGINT), printed
    assert "worker_pool_stopped" in printed
    assert "attempt_handed_back" in printed  # the running task went back to the queue
    for noise in NOISE:
        assert noise not in printed, printed
