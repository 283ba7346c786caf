"""Remote processors inside a real server (uvicorn subprocess, both databases).

The server's ``REMOTE_PROCESSORS`` point ``http``, ``http-flaky`` and
``http-failing`` at the fake service on loopback (``tests/cli/fixtures.py``);
tasks are uploaded, followed and fetched with ``ntm``, as a user would.
"""

from __future__ import annotations

import json
from pathlib import Path

from app.cli.main import EXIT_FAILED, EXIT_OK
from tests.cli.fixtures import Ntm, fake_remote, live, ntm, signed_in, user
from tests.cli.live_server import LiveServer, User
from tests.processors.remote_service import FakeService

__all__ = ["fake_remote", "live", "ntm", "signed_in", "user"]

TEXT = "Call me Ishmael. Some years ago, never mind how long precisely, I went to sea."


def write(tmp_path: Path, name: str = "moby.txt") -> str:
    path = tmp_path / name
    path.write_text(TEXT, encoding="utf-8")
    return str(path)


def test_a_task_is_processed_by_the_remote_service(
    ntm: Ntm, signed_in: User, live: LiveServer, fake_remote: FakeService, tmp_path: Path
) -> None:
    result = ntm("upload", write(tmp_path), "--processor", "http", "--wait")
    assert result.exit_code == EXIT_OK, result.output
    status, task_id, _ = result.stdout.split()
    assert status == "completed"

    answer = live.api(signed_in, "GET", f"/tasks/{task_id}/result")
    assert answer.status_code == 200
    body = answer.json()
    assert (body["summary"], body["quality_score"], body["metrics"]) == (
        "15 words",
        0.5,
        {"words": 15},
    )
    assert sorted(f["name"] for f in body["files"]) == ["notes.md", "report.json"]
    task = live.api(signed_in, "GET", f"/tasks/{task_id}").json()
    assert task["result_url"].endswith(f"/tasks/{task_id}/files/report.json")  # the first file

    out = tmp_path / "out"
    got = ntm("get", task_id, "-o", str(out))
    assert got.exit_code == EXIT_OK, got.output
    assert json.loads((out / "moby.report.json").read_text()) == {"words": 15, "kind": "ok"}
    assert (out / "moby.notes.md").read_text() == f"# Notes\n\n{TEXT[:40]}\n"
    submitted = [h for m, p, h in fake_remote.requests if m == "POST" and p == "/ok/jobs"]
    assert submitted[-1]["authorization"] == "Bearer remote-secret"


def test_transient_failures_of_the_service_do_not_reach_the_task(
    ntm: Ntm, signed_in: User, live: LiveServer, tmp_path: Path
) -> None:
    result = ntm("upload", write(tmp_path), "--processor", "http-flaky", "--wait", "--json")
    assert result.exit_code == EXIT_OK, result.output
    [task] = json.loads(result.stdout)
    assert (task["status"], task["retry_count"]) == ("completed", 0)


def test_a_job_the_service_fails_fails_the_task_at_once(
    ntm: Ntm, signed_in: User, live: LiveServer, tmp_path: Path
) -> None:
    result = ntm("upload", write(tmp_path), "--processor", "http-failing", "--wait", "--json")
    assert result.exit_code == EXIT_FAILED, result.output
    [task] = json.loads(result.stdout)
    assert task["status"] == "failed"
    assert task["retry_count"] == 0  # permanent: not retried
    assert task["error_message"] == "The remote service failed: the model rejected the text"


def test_remote_processors_are_listed_with_the_others(signed_in: User, live: LiveServer) -> None:
    answer = live.api(signed_in, "GET", "/processors")
    assert answer.status_code == 200
    listed = {p["name"]: p["description"] for p in answer.json()}
    assert listed["http"] == "Processed by the remote service at http://127.0.0.1"
    assert {"http-flaky", "http-failing", "analyze"} <= set(listed)
