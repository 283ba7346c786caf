"""``ntm`` against a live server (uvicorn subprocess), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from app.cli import client as cli_client
from app.cli import live as cli_live
from app.cli.credentials import Credentials
from app.cli.main import EXIT_CANCELLED, EXIT_ERROR, EXIT_FAILED, EXIT_OK
from tests.cli.fixtures import Ntm
from tests.cli.live_server import USER_PASSWORD, LiveServer, User
from tests.conftest import CORPUS

ALICE = CORPUS / "alice_in_wonderland.en.utf8.txt"


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def upload_json(ntm: Ntm, *args: str) -> list[dict[str, Any]]:
    result = ntm("upload", *args, "--json")
    assert result.exit_code == EXIT_OK, result.output
    tasks: list[dict[str, Any]] = json.loads(result.stdout)
    return tasks


def manuscripts(tmp_path: Path, count: int, size: int = 2000) -> list[str]:
    paths = []
    for index in range(count):
        path = tmp_path / f"draft-{index}.txt"
        path.write_text(("The rain fell on the quiet town. " * size)[:size], encoding="utf-8")
        paths.append(str(path))
    return paths


def test_login_keeps_the_api_key_readable_by_its_owner_only(
    ntm: Ntm, user: User, live: LiveServer, tmp_path: Path
) -> None:
    result = ntm("login", "--api-key", user.api_key, "--json")
    assert result.exit_code == EXIT_OK, result.output
    path = tmp_path / "ntm-config" / "credentials.json"
    assert json.loads(result.stdout) == {
        "url": live.url,
        "email": user.email,
        "kind": "api_key",
        "path": str(path),
    }
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    stored = json.loads(path.read_text())
    assert (stored["token"], stored["email"]) == (user.api_key, user.email)

    listing = ntm("ls", "--json")
    assert listing.exit_code == EXIT_OK, listing.output
    assert json.loads(listing.stdout)["total"] == 0

    assert ntm("logout").stdout == "Signed out.\n"
    assert not path.exists()
    signed_out = ntm("ls")
    assert signed_out.exit_code == EXIT_ERROR
    assert signed_out.stderr == "ntm: error: not signed in: run `ntm login` (or set NTM_TOKEN)\n"


def test_login_with_a_password_keeps_an_expiring_token(
    ntm: Ntm, user: User, tmp_path: Path
) -> None:
    result = ntm("login", "--email", user.email, input=f"{USER_PASSWORD}\n")
    assert result.exit_code == EXIT_OK, result.output
    stored = json.loads((tmp_path / "ntm-config" / "credentials.json").read_text())
    assert stored["kind"] == "jwt"
    assert stored["expires_at"] is not None
    assert f"as {user.email}; the access token (valid until" in result.stdout
    assert ntm("stats", "--json").exit_code == EXIT_OK


def test_a_wrong_credential_is_refused_in_one_line(ntm: Ntm, tmp_path: Path) -> None:
    result = ntm("login", "--api-key", "ntm_nothing_wrong")
    assert result.exit_code == EXIT_ERROR
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("ntm: error: ")
    assert result.stderr.endswith("(401 not_authenticated) (run `ntm login`)\n") or (
        "(401" in result.stderr
    )
    assert not (tmp_path / "ntm-config" / "credentials.json").exists()


def test_upload_wait_on_a_real_manuscript_then_get_its_report(
    ntm: Ntm, signed_in: User, tmp_path: Path
) -> None:
    result = ntm("upload", str(ALICE), "--wait", "--priority", "7")
    assert result.exit_code == EXIT_OK, result.output
    status, task_id, name = result.stdout.split()
    assert (status, name) == ("completed", ALICE.name)

    out = tmp_path / "reports"
    got = ntm("get", task_id, "-o", str(out), "--json")
    assert got.exit_code == EXIT_OK, got.output
    saved = json.loads(got.stdout)
    assert [Path(entry["path"]).name for entry in saved] == [
        "alice_in_wonderland.en.utf8.report.json",
        "alice_in_wonderland.en.utf8.summary.md",
    ]
    report = json.loads((out / "alice_in_wonderland.en.utf8.report.json").read_text())
    assert report["language"] == "en"
    assert report["counts"]["chapters"] == 12
    assert sorted(p.name for p in out.iterdir()) == sorted(Path(e["path"]).name for e in saved)

    task = json.loads(ntm("ls", "--json").stdout)["items"][0]
    assert (task["id"], task["priority"], task["status"]) == (task_id, 7, "completed")


def test_the_installed_script_streams_with_a_byte_progress_bar(
    live: LiveServer, signed_in: User, tmp_path: Path
) -> None:
    """The ``ntm`` console script itself, in a terminal-like environment (Rich renders bars)."""
    script = Path(sys.executable).parent / "ntm"
    env = {
        **os.environ,
        "NTM_URL": live.url,
        "NTM_TOKEN": signed_in.api_key,
        "NTM_CONFIG_DIR": str(tmp_path / "config"),
        "TTY_COMPATIBLE": "1",
        "COLUMNS": "120",
    }
    run = subprocess.run(
        [str(script), "upload", str(ALICE), "--wait", "--processor", "paced"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == EXIT_OK, run.stderr
    assert run.stdout.split()[0] == "completed"
    # the upload's bar counts bytes up to the file's size; the watch bar shows stage and ETA
    frames = [re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", line) for line in run.stderr.splitlines()]
    frames = [frame for frame in frames if frame.strip()]
    assert any("174.3/174.3 kB" in frame for frame in frames)
    running = [f for f in frames if re.search(r" processing · step \d+ of 10 \d:\d\d:\d\d$", f)]
    assert running, run.stderr[-2000:]  # the stage, then the time remaining
    assert re.search(r" 100% completed \d:\d\d:\d\d$", frames[-1]), frames[-1]


def test_upload_counts_every_byte_it_streams(live: LiveServer, signed_in: User) -> None:
    sent: list[int] = []
    credentials = Credentials(url=live.url, token=signed_in.api_key, kind="api_key")
    with cli_client.Api(credentials) as api:
        task = api.upload(
            ALICE, on_bytes=sent.append, project_id=None, priority=None, processor="noop"
        )
    assert task["file_size"] == ALICE.stat().st_size
    assert sum(sent) == ALICE.stat().st_size
    assert len([n for n in sent if n]) == 3  # 64 KiB chunks: progress moves while it streams


def test_watch_follows_several_tasks_live(ntm: Ntm, signed_in: User, tmp_path: Path) -> None:
    tasks = upload_json(ntm, *manuscripts(tmp_path, 3), "--processor", "paced")
    ids = [task["id"] for task in tasks]

    result = ntm("watch", *ids, "--json")
    assert result.exit_code == EXIT_OK, result.output
    updates = lines(result.stdout)
    for task_id in ids:
        mine = [u for u in updates if u["task_id"] == task_id]
        assert mine[-1]["status"] == "completed"
        assert mine[-1]["progress"] == 100
        progress = [u["progress"] for u in mine]
        assert progress == sorted(progress)
        assert any(u["stage"].startswith("step ") for u in mine)  # seen while it ran
        assert [u["status"] for u in mine].count("completed") == 1
    assert {u["type"] for u in updates} == {"task_update"}


def test_watch_without_ids_follows_what_is_running_and_draws_a_bar_each(
    ntm: Ntm, signed_in: User, tmp_path: Path
) -> None:
    tasks = upload_json(ntm, *manuscripts(tmp_path, 2), "--processor", "paced")
    result = ntm("watch")
    assert result.exit_code == EXIT_OK, result.output
    assert sorted(result.stdout.splitlines()) == sorted(
        f"completed  {task['id']}  {task['file_name']}" for task in tasks
    )
    assert ntm("watch").stdout == "Nothing to watch: no task is queued or running.\n"


def test_watch_falls_back_to_server_sent_events(
    ntm: Ntm, signed_in: User, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise OSError("WebSocket blocked by a proxy")

    monkeypatch.setattr(cli_live, "ws_connect", refused)
    tasks = upload_json(ntm, *manuscripts(tmp_path, 2), "--processor", "paced")
    result = ntm("watch", *(task["id"] for task in tasks), "--json")
    assert result.exit_code == EXIT_OK, result.output
    updates = lines(result.stdout)
    for task in tasks:
        mine = [u for u in updates if u["task_id"] == task["id"]]
        assert mine[-1]["status"] == "completed"
        assert any(u["status"] == "processing" for u in mine)

    done = ntm("watch", tasks[0]["id"], "--transport", "websocket")
    assert done.exit_code == EXIT_OK  # already completed: nothing to connect for
    assert done.stdout == f"completed  {tasks[0]['id']}  {tasks[0]['file_name']}\n"
    [running] = upload_json(ntm, *manuscripts(tmp_path, 1), "--processor", "paced")
    forced = ntm("watch", running["id"], "--transport", "websocket")
    assert forced.exit_code == EXIT_ERROR
    assert forced.stderr.splitlines()[-1] == (  # after the last frame of the progress bars
        "ntm: error: the WebSocket failed: WebSocket blocked by a proxy"
    )


def test_exit_codes_follow_the_final_state(ntm: Ntm, signed_in: User, tmp_path: Path) -> None:
    [failing] = manuscripts(tmp_path, 1)
    result = ntm("upload", failing, "--processor", "http-failing", "--wait")
    assert result.exit_code == EXIT_FAILED, result.output
    assert result.stdout.splitlines()[1].strip() == (
        "The remote service failed: the model rejected the text"
    )

    [slow] = upload_json(ntm, *manuscripts(tmp_path, 1), "--processor", "slow")
    cancelled = ntm("cancel", slow["id"])
    assert cancelled.stdout == f"cancelled  {slow['id']}  {slow['file_name']}\n"
    watched = ntm("watch", slow["id"], "--json")
    assert watched.exit_code == EXIT_CANCELLED
    assert lines(watched.stdout)[-1]["status"] == "cancelled"


def test_cancel_retry_and_rm(ntm: Ntm, signed_in: User, tmp_path: Path, live: LiveServer) -> None:
    [task] = upload_json(ntm, *manuscripts(tmp_path, 1), "--processor", "slow")
    assert json.loads(ntm("cancel", task["id"], "--json").stdout)[0]["status"] == "cancelled"
    again = ntm("cancel", task["id"])
    assert again.exit_code == EXIT_ERROR
    assert again.stderr.startswith("ntm: error: ")
    assert again.stderr.rstrip("\n").endswith("(409 invalid_transition)")
    retried = json.loads(ntm("retry", task["id"], "--json").stdout)[0]
    assert retried["status"] in {"pending", "processing"}

    refused = ntm("rm", task["id"], input="n\n")
    assert refused.exit_code == 1  # Click's abort
    assert live.api(signed_in, "GET", f"/tasks/{task['id']}").status_code == 200
    assert ntm("rm", task["id"], "--yes").stdout == f"deleted    {task['id']}\n"
    assert live.api(signed_in, "GET", f"/tasks/{task['id']}").status_code == 404


def test_ls_filters_and_prints_a_table(ntm: Ntm, signed_in: User, tmp_path: Path) -> None:
    paths = manuscripts(tmp_path, 3)
    waited = ntm("upload", *paths[:2], "--processor", "noop", "--wait", "--json")
    assert [t["status"] for t in json.loads(waited.stdout)] == ["completed", "completed"]
    [slow] = upload_json(ntm, paths[2], "--processor", "slow")
    ntm("cancel", slow["id"])

    completed = json.loads(ntm("ls", "--status", "completed", "--json").stdout)
    assert completed["total"] == 2
    assert {t["file_name"] for t in completed["items"]} == {"draft-0.txt", "draft-1.txt"}
    found = json.loads(ntm("ls", "-q", "draft-2", "--json").stdout)
    assert [t["id"] for t in found["items"]] == [slow["id"]]
    by_name = json.loads(ntm("ls", "--sort", "file_name", "--page-size", "2", "--json").stdout)
    assert [t["file_name"] for t in by_name["items"]] == ["draft-0.txt", "draft-1.txt"]

    table = ntm("ls")
    assert table.exit_code == EXIT_OK
    rows = table.stdout.splitlines()
    assert rows[0].split() == [
        "ID", "FILE", "STATUS", "PROGRESS", "STAGE", "PRIORITY", "PROCESSOR", "UPLOADED"
    ]  # fmt: skip
    assert rows[1].split()[:3] == [slow["id"], "draft-2.txt", "cancelled"]
    assert rows[-1] == "page 1 of 1, 3 tasks"

    bad = ntm("ls", "--status", "lost")
    assert bad.exit_code == EXIT_ERROR
    assert bad.stderr.startswith("ntm: error: ")
    assert "(422 validation_error)" in bad.stderr
    assert bad.stderr.count("\n") == 1


def test_projects_by_name_and_stats(ntm: Ntm, signed_in: User, live: LiveServer) -> None:
    created = live.api(signed_in, "POST", "/projects", json={"name": "Drafts"})
    assert created.status_code == 201
    upload = ntm("upload", str(ALICE), "--project", "Drafts", "--processor", "noop", "--json")
    assert upload.exit_code == EXIT_OK, upload.output
    assert json.loads(upload.stdout)[0]["project_id"] == created.json()["id"]
    unknown = ntm("upload", str(ALICE), "--project", "Nope")
    assert (unknown.exit_code, unknown.stderr) == (
        EXIT_ERROR,
        "ntm: error: no project named 'Nope'\n",
    )

    numbers = json.loads(ntm("stats", "--json").stdout)
    assert numbers["total"] == 1
    table = ntm("stats").stdout
    assert "success rate" in table
    assert "queue depth" in table


def test_server_errors_are_one_clear_line(ntm: Ntm, signed_in: User, tmp_path: Path) -> None:
    missing = str(uuid.uuid4())
    result = ntm("get", missing)
    assert result.exit_code == EXIT_ERROR
    assert result.stderr == f"ntm: error: Task {missing} not found (404 task_not_found)\n"

    pdf = tmp_path / "book.txt"
    pdf.write_bytes(b"%PDF-1.7\n" + b"\x00" * 100)
    refused = ntm("upload", str(pdf))
    assert refused.exit_code == EXIT_ERROR
    assert refused.stderr.splitlines()[0] == (  # then the last frame of the byte bar
        "ntm: error: book.txt: book.txt is a PDF document, not a text file "
        "(415 unsupported_file_type)"
    )

    [slow] = upload_json(ntm, *manuscripts(tmp_path, 1), "--processor", "slow")
    not_ready = ntm("get", slow["id"])
    assert not_ready.exit_code == EXIT_ERROR
    assert not_ready.stderr.endswith("(404 result_not_ready)\n")
    ntm("cancel", slow["id"])


def test_an_unreachable_server_is_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from app.cli.main import app

    env = {"NTM_URL": "http://127.0.0.1:9", "NTM_TOKEN": "x", "NTM_CONFIG_DIR": str(tmp_path)}
    result = CliRunner().invoke(app, ["stats"], env=env)
    assert result.exit_code == EXIT_ERROR
    assert result.stderr.startswith("ntm: error: cannot reach http://127.0.0.1:9: ")
    assert result.stderr.count("\n") == 1
