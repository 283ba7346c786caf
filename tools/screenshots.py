"""Screenshots of the dashboard for the README: ``python -m tools.screenshots``.

Starts the service on a temp SQLite database (as the browser tests do), fills
it with a few manuscripts from ``tests/data/corpus`` (or generated text when
the corpus is absent), and saves PNGs of the main views under
``docs/screenshots/``: sign-in, the task list with live progress, a task's
page and its report's charts, the statistics, and the task list at phone width.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: ``python tools/screenshots.py``
    sys.path.insert(0, str(ROOT))

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

from tests.e2e.server import (  # noqa: E402
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


def sign_in(page: Page, server: Server) -> None:
    page.goto(server.base_url + "/")
    page.get_by_label("Email", exact=True).fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(USER_PASSWORD)
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
        page.screenshot(path=OUT / "tasks.png", full_page=True, animations="disabled")

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
