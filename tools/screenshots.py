"""Screenshots of the dashboard for the README: ``python -m tools.screenshots``.

Starts the service on a temp SQLite database (as the browser tests do), fills
it with a few manuscripts from ``tests/data/corpus`` (or generated text when
the corpus is absent), and saves PNGs of the main views under
``docs/screenshots/``: sign-in, the task list with live progress, a task's
page and its report's charts, the statistics, the task list at phone width,
and the API keys, projects, users and operations screens.
"""

from __future__ import annotations

import math
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: ``python tools/screenshots.py``
    sys.path.insert(0, str(ROOT))

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

from tests.e2e.server import (  # noqa: E402
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    CHROMIUM,
    CHROMIUM_ARGS,
    USER_PASSWORD,
    Server,
    run_server,
)

OUT = ROOT / "docs" / "screenshots"
CORPUS = ROOT / "tests" / "data" / "corpus"
EMAIL = "editor@example.com"


def manuscript(name: str, chapters: int) -> bytes:
    """A corpus file, or generated chapters when the corpus is not there."""
    path = CORPUS / name
    if path.exists():
        return path.read_bytes()
    paragraph = "The ship left the harbour at dawn, and the sailors sang as they worked.\n\n"
    return "".join(f"Chapter {i}\n\n" + paragraph * 40 for i in range(1, chapters + 1)).encode()


def upload(server: Server, name: str, content: bytes, processor: str = "analyze") -> str:
    response = server.api(
        "POST",
        "/tasks/upload",
        EMAIL,
        files={"file": (name, content, "text/plain")},
        data={"processor": processor},
    )
    response.raise_for_status()
    task_id: str = response.json()["id"]
    return task_id


def wait_for(server: Server, task_id: str, *statuses: str, within: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        task: dict[str, Any] = server.api("GET", f"/tasks/{task_id}", EMAIL).json()
        if task["status"] in statuses:
            return task
        time.sleep(0.3)
    raise TimeoutError(f"task {task_id} did not reach {statuses}")


def arrange(server: Server) -> str:
    """Completed, cancelled, running and queued tasks; returns a completed task's id."""
    server.create_user(EMAIL)
    for name, description in (("Sea stories", "Voyages and whales"), ("Classics", "")):
        server.api("POST", "/projects", EMAIL, json={"name": name, "description": description})
    server.api("POST", "/auth/api-keys", EMAIL, json={"name": "nightly import"})
    alice = upload(server, "alice_in_wonderland.en.md", manuscript("alice_in_wonderland.en.md", 12))
    pride = upload(
        server, "pride_and_prejudice.en.utf8.txt", manuscript("pride_and_prejudice.en.utf8.txt", 20)
    )
    wait_for(server, alice, "completed", "failed")
    wait_for(server, pride, "completed", "failed")
    draft = upload(server, "first-draft.txt", b"An early draft.\n", "slow")
    wait_for(server, draft, "processing")
    server.api("PATCH", f"/tasks/{draft}", EMAIL, json={"status": "cancelled"}).raise_for_status()
    wait_for(server, draft, "cancelled")
    for name in ("chapter-revisions.md", "reader-notes.txt"):
        upload(server, name, b"Revised text of the chapter.\n", "steady")
    time.sleep(0.5)
    upload(server, "moby_dick.en.utf8.txt", manuscript("moby_dick.en.utf8.txt", 30))
    return alice


def busy_hour(server: Server) -> None:
    """Waves of quick tasks, a few failures and slower ones, for the operations charts."""
    server.create_user("team@example.com")
    for wave in range(6):
        files = [
            ("files", (f"note-{wave}-{i}.txt", f"Note {wave}.{i}\n".encode(), "text/plain"))
            for i in range(4 + 3 * wave)
        ]
        server.api("POST", "/tasks/batch", "team@example.com", files=files,
                   data={"processor": "noop"}).raise_for_status()  # fmt: skip
        if wave % 2:
            files = [("files", (f"draft-{wave}.txt", f"Draft {wave}\n".encode(), "text/plain"))]
            server.api("POST", "/tasks/batch", "team@example.com", files=files,
                       data={"processor": "fails_once"}).raise_for_status()  # fmt: skip
        files = [("files", (f"chapter-{wave}.txt", b"A chapter.\n", "text/plain"))]
        server.api("POST", "/tasks/batch", "team@example.com", files=files,
                   data={"processor": "paced"}).raise_for_status()  # fmt: skip
        time.sleep(2)


def seed_history(database: Path, email: str) -> None:
    """An hour of finished tasks written straight into the database (the screenshot's
    history: a tool cannot wait an hour), uploaded, started and finished minute by
    minute with a busy spell and a few failures."""
    stamp = "%Y-%m-%d %H:%M:%S.%f"
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = []
    random.seed(7)
    with sqlite3.connect(database) as db:
        (owner,) = db.execute("SELECT id FROM users WHERE email = ?", (email,)).fetchone()
        for minute in range(59, 1, -1):
            busy = 1 + 0.8 * math.sin(minute / 6) + (2.5 if 18 <= minute <= 26 else 0)
            for n in range(int(6 * busy)):
                uploaded = now - timedelta(minutes=minute, seconds=random.uniform(0, 59))
                wait = random.uniform(0.5, 4 if busy < 3 else 70)
                started = uploaded + timedelta(seconds=wait)
                done = started + timedelta(seconds=random.uniform(2, 9))
                status = "failed" if n % 17 == 3 else "completed"
                rows.append(
                    (
                        str(uuid.uuid4()),
                        owner,
                        f"history-{minute}-{n}.txt",
                        1000,
                        "text/plain",
                        "sha256:00",
                        status,
                        100 if status == "completed" else 0,
                        "done" if status == "completed" else "failed",
                        "analyze",
                        uploaded.strftime(stamp),
                        started.strftime(stamp),
                        done.strftime(stamp),
                        done.strftime(stamp),
                    )
                )
        db.executemany(
            "INSERT INTO tasks (id, owner_id, file_name, file_size, file_type, checksum, status,"
            " progress, stage, processor, priority, retry_count, max_retries, attempt, event_seq,"
            " uploaded_at, started_at, completed_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 5, 0, 3, 1, 3, ?, ?, ?, ?)",
            rows,
        )


def sign_in(page: Page, server: Server, email: str = EMAIL, password: str = USER_PASSWORD) -> None:
    page.goto(server.base_url + "/")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.locator("#live-status[data-state='live']").wait_for()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as temp,
        run_server(Path(temp)) as server,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        desktop = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-GB")
        page = desktop.new_page()
        page.goto(server.base_url + "/")
        page.get_by_role("heading", name="Sign in").wait_for()
        page.screenshot(path=OUT / "sign-in.png", animations="disabled")

        alice = arrange(server)
        sign_in(page, server)
        page.locator("#task-table tbody tr").nth(5).wait_for()
        expect(page.locator("tr[data-status='processing']").first).to_be_visible()
        time.sleep(4)  # let the running tasks move along
        page.get_by_label("Select first-draft.txt").check()
        page.screenshot(path=OUT / "tasks.png", full_page=True, animations="disabled")
        page.get_by_label("Select first-draft.txt").uncheck()

        page.goto(f"{server.base_url}/#/tasks/{alice}")
        page.locator("#report-figures").wait_for()
        page.locator("#task-logs tbody tr").first.wait_for()
        # The top of the page (status, result, key figures): the full page is
        # mostly the chapter table and would make a large file.
        page.set_viewport_size({"width": 1280, "height": 1150})
        page.screenshot(path=OUT / "task.png", animations="disabled")
        # The report's charts (chapter lengths, dialogue, character presence).
        page.locator("#report-charts").screenshot(path=OUT / "charts.png", animations="disabled")
        page.set_viewport_size({"width": 1280, "height": 860})

        page.goto(f"{server.base_url}/#/statistics")
        page.locator("#stat-total").wait_for()
        page.screenshot(path=OUT / "statistics.png", full_page=True, animations="disabled")

        page.goto(f"{server.base_url}/#/projects")
        page.locator("#project-table tbody tr").nth(1).wait_for()
        page.screenshot(path=OUT / "projects.png", animations="disabled")

        page.goto(f"{server.base_url}/#/keys")
        page.locator("#key-table tbody tr").first.wait_for()
        page.get_by_label("Name", exact=True).fill("spreadsheet export")
        page.get_by_role("button", name="Create key").click()
        page.locator("#new-key-secret").wait_for()
        page.locator("#key-table tbody tr").nth(1).wait_for()
        page.screenshot(path=OUT / "keys.png", animations="disabled")

        busy_hour(server)
        seed_history(Path(temp) / "service.db", "team@example.com")
        admin = desktop.new_page()
        sign_in(admin, server, ADMIN_EMAIL, ADMIN_PASSWORD)
        admin.goto(f"{server.base_url}/#/users")
        admin.locator("#user-table tbody tr").nth(2).wait_for()
        admin.screenshot(path=OUT / "users.png", animations="disabled")
        admin.goto(f"{server.base_url}/#/operations")
        admin.locator("#ops-workers tbody tr").first.wait_for()
        admin.locator("#chart-latency").wait_for()
        time.sleep(5)  # one more refresh with the last tasks in
        admin.mouse.move(0, 0)
        admin.screenshot(path=OUT / "operations.png", full_page=True, animations="disabled")

        phone = browser.new_context(
            viewport={"width": 390, "height": 844}, is_mobile=True, locale="en-GB"
        )
        small = phone.new_page()
        sign_in(small, server)
        small.locator("#task-table tbody tr").first.wait_for()
        small.locator("#list-heading").evaluate("heading => heading.scrollIntoView()")
        small.screenshot(path=OUT / "phone.png", animations="disabled")
        browser.close()
    for path in sorted(OUT.glob("*.png")):
        print(path.relative_to(ROOT))


if __name__ == "__main__":
    main()
