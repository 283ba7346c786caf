"""The dashboard's keys, projects, users and operations screens, bulk actions and report
downloads, driven in Chromium against a real server."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.conftest import PageProblems, sign_in
from tests.e2e.server import ADMIN_EMAIL, ADMIN_PASSWORD, USER_PASSWORD, Server
from tests.e2e.test_dashboard import (
    LOW_CONTRAST_TEXT,
    UNLABELLED_CONTROLS,
    row,
    tasks_of,
    text_file,
    upload,
)

pytestmark = pytest.mark.e2e


def open_screen(page: Page, link: str, heading: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=link).click()
    expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()


def api_upload(server: Server, email: str, names: list[str], processor: str, **data: Any) -> None:
    """Upload as ``email`` through the API, in batches of 25 (the batch limit)."""
    for start in range(0, len(names), 25):
        chunk = names[start : start + 25]
        files = [("files", (n, f"{n}: {uuid.uuid4()}.\n".encode(), "text/plain")) for n in chunk]
        response = server.api(
            "POST", "/tasks/batch", email, files=files, data={"processor": processor, **data}
        )
        assert response.status_code == 202, response.text


def wait_for_statuses(server: Server, email: str, want: dict[str, int], within: float = 30) -> None:
    deadline = time.monotonic() + within
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        counts = server.api("GET", "/tasks/statistics", email).json()["by_status"]
        if all(counts[status] == n for status, n in want.items()):
            return
        time.sleep(0.2)
    raise AssertionError(f"wanted {want}, have {counts}")


def test_create_a_key_copy_it_and_revoke_it(
    context: BrowserContext, page: Page, server: Server, user: str
) -> None:
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.base_url)
    sign_in(page, server, user)
    open_screen(page, "API keys", "API keys")
    expect(page.locator("#key-table tbody")).to_have_text("No keys yet.")

    page.get_by_label("Name", exact=True).fill("nightly import")
    page.get_by_role("button", name="Create key").click()
    secret_field = page.get_by_label("The new key")
    expect(secret_field).to_have_value(re.compile(r"^ntm_[0-9a-f]{12}_\S+$"))
    secret = secret_field.input_value()
    expect(page.locator("#new-key-notice")).to_contain_text("it is shown this once")
    page.get_by_role("button", name="Copy", exact=True).click()
    expect(page.locator("#copy-status")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == secret

    key_row = page.locator("#key-table tbody tr").filter(has_text="nightly import")
    expect(key_row.locator("code")).to_have_text(f"{secret[: len('ntm_') + 12]}_…")
    me = httpx.get(
        f"{server.base_url}/api/v1/users/me", headers={"Authorization": f"Bearer {secret}"}
    )
    assert (me.status_code, me.json()["email"]) == (200, user)
    assert page.evaluate(UNLABELLED_CONTROLS) == []
    assert page.evaluate(LOW_CONTRAST_TEXT) == []

    key_row.get_by_role("button", name="Revoke nightly import").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Revoke “nightly import”?")
    page.keyboard.press("Escape")
    assert (
        httpx.get(
            f"{server.base_url}/api/v1/users/me", headers={"Authorization": f"Bearer {secret}"}
        ).status_code
        == 200
    )

    key_row.get_by_role("button", name="Revoke nightly import").click()
    dialog.get_by_role("button", name="Revoke key").click()
    expect(page.locator("#key-table tbody")).to_have_text("No keys yet.")
    refused = httpx.get(
        f"{server.base_url}/api/v1/users/me", headers={"Authorization": f"Bearer {secret}"}
    )
    assert (refused.status_code, refused.json()["code"]) == (401, "invalid_token")


def test_create_rename_a_project_upload_into_it_and_delete_it(
    page: Page, server: Server, user: str
) -> None:
    sign_in(page, server, user)
    open_screen(page, "Projects", "Projects")
    page.get_by_label("Name", exact=True).fill("Trilogy")
    page.get_by_label("Description (optional)").fill("Three books")
    page.get_by_role("button", name="Create project").click()
    project_row = page.locator("#project-table tbody tr")
    expect(project_row).to_have_count(1)
    expect(project_row.locator("td")).to_have_text(
        ["Trilogy", "Three books", "0", re.compile(r"\d"), "RenameDelete"]
    )

    project_row.get_by_role("button", name="Rename Trilogy").click()
    page.get_by_label("New name for Trilogy").fill("Saga")
    page.keyboard.press("Enter")
    expect(project_row.get_by_role("link")).to_have_text("Saga")
    assert page.evaluate(UNLABELLED_CONTROLS) == []
    assert page.evaluate(LOW_CONTRAST_TEXT) == []

    # Its name opens the task list on its tasks; the upload goes into it.
    project_row.get_by_role("link", name="Saga").click()
    expect(page.get_by_role("heading", name="Tasks", level=1)).to_be_visible()
    project_id = server.api("GET", "/projects", user).json()["items"][0]["id"]
    expect(page.locator("#filter-project")).to_have_value(project_id)
    page.locator("#upload-project").select_option(label="Saga")
    upload(page, [text_file("volume-one.txt")], "noop")
    task_row = row(page, "volume-one.txt")
    expect(task_row.locator("td[data-label='Project']")).to_have_text("Saga")
    expect(task_row.locator(".badge")).to_have_text("completed")
    assert [t["project_id"] for t in tasks_of(server, user)] == [project_id]

    open_screen(page, "Projects", "Projects")
    expect(project_row.locator("td[data-label='Tasks']")).to_have_text("1")
    project_row.get_by_role("button", name="Delete Saga").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Delete “Saga” and its 1 task, with their files?")
    dialog.get_by_role("button", name="Delete project and 1 task").click()
    expect(page.locator("#project-table tbody")).to_have_text("No projects yet.")
    assert tasks_of(server, user) == []


def test_an_admin_creates_a_user_who_then_signs_in(page: Page, server: Server) -> None:
    sign_in(page, server, ADMIN_EMAIL, ADMIN_PASSWORD)
    open_screen(page, "Users", "Users")
    email = f"new-writer-{uuid.uuid4().hex[:6]}@example.com"
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill("weak")
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("alert").filter(has_text="not created")).to_contain_text(
        "The password is too weak"
    )
    page.get_by_label("Password", exact=True).fill(USER_PASSWORD)
    page.get_by_role("button", name="Create user").click()
    role = page.get_by_label(f"Role of {email}")
    expect(role).to_have_value("user")
    assert page.evaluate(UNLABELLED_CONTROLS) == []
    assert page.evaluate(LOW_CONTRAST_TEXT) == []

    role.select_option("admin")
    expect(page.locator("#toast")).to_have_text(f"{email} is now an admin")
    admin_token = server.token(ADMIN_EMAIL, ADMIN_PASSWORD)
    users = httpx.get(
        f"{server.base_url}/api/v1/users",
        params={"page_size": 100},
        headers={"Authorization": f"Bearer {admin_token}"},
    ).json()["items"]
    assert {u["email"]: u["role"] for u in users}[email] == "admin"
    role.select_option("user")
    expect(page.locator("#toast")).to_have_text(f"{email} is now a user")
    # The last admin keeps the role: the select goes back and says why.
    page.get_by_label(f"Role of {ADMIN_EMAIL}").select_option("user")
    expect(page.locator("#toast")).to_contain_text("is the last admin")
    expect(page.get_by_label(f"Role of {ADMIN_EMAIL}")).to_have_value("admin")

    # The workers table is an admin's: the server's one pool of two workers.
    open_screen(page, "Operations", "Operations")
    workers = page.locator("#ops-workers tbody tr")
    expect(workers).to_have_count(1)
    expect(workers.locator("td[data-label='State']")).to_have_text("alive")
    expect(workers.locator("td[data-label='Concurrency']")).to_have_text(re.compile(r"of 2 busy"))

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, server, email)
    expect(page.locator("#who")).to_have_text(email)
    expect(page.get_by_role("link", name="Users")).to_be_hidden()
    open_screen(page, "Operations", "Operations")
    expect(page.locator("#ops-scope")).to_have_text(re.compile("^Your tasks"))
    expect(page.locator("#ops-workers")).to_have_count(0)


# Records each value the throughput chart shows (it is rebuilt at every refresh).
RECORD_COMPLETED = """() => {
  window.completedSeen = [];
  const record = () => {
    const chart = document.getElementById("chart-throughput");
    if (chart) window.completedSeen.push(Number(chart.dataset.sumCompleted));
  };
  record();
  new MutationObserver(record).observe(document.getElementById("ops-charts"), { childList: true });
}"""


def test_the_operations_charts_move_while_50_noop_tasks_run(
    page: Page, server: Server, user: str
) -> None:
    sign_in(page, server, user)
    open_screen(page, "Operations", "Operations")
    throughput = page.locator("#chart-throughput")
    expect(throughput).to_have_attribute("data-sum-completed", "0")
    expect(page.locator("#chart-latency")).to_have_attribute("data-last-p50-seconds", "")
    page.evaluate(RECORD_COMPLETED)

    for wave in range(5):  # 50 tasks in five waves, so the charts are seen moving
        api_upload(server, user, [f"noop-{wave}-{i}.txt" for i in range(10)], "noop")
        time.sleep(1.5)
    wait_for_statuses(server, user, {"completed": 50})
    expect(throughput).to_have_attribute("data-sum-completed", "50", timeout=15_000)
    seen: list[float] = page.evaluate("window.completedSeen")
    assert seen[0] == 0
    assert seen[-1] == 50
    assert seen == sorted(seen)
    assert any(0 < value < 50 for value in seen), seen  # it moved before the end

    expect(page.locator("#ops-completed dd")).to_have_text("50")
    expect(page.locator("#ops-queue-depth dd")).to_have_text("0")
    expect(page.locator("#ops-p50 dd")).not_to_have_text("—")  # over the window: no minute edge
    latency = page.locator("#chart-latency polyline.series-p50")
    expect(latency.first).to_be_attached()
    # The numbers as a table, opened from the keyboard.
    throughput.get_by_text("Show the numbers").focus()
    page.keyboard.press("Enter")
    cells = throughput.locator("table tbody td:nth-child(2)").all_text_contents()
    assert (len(cells), sum(int(c) for c in cells)) == (60, 50)
    svg = throughput.get_by_role("img")
    expect(svg).to_have_accessible_name(re.compile("^Completed and failed"))
    expect(svg).to_have_accessible_description(re.compile("^Completed: 50 in all; Failed: 0"))
    assert page.evaluate(UNLABELLED_CONTROLS) == []
    assert page.evaluate(LOW_CONTRAST_TEXT) == []


def test_bulk_retry_of_failed_tasks_from_the_list_and_from_operations(
    page: Page, server: Server, user: str
) -> None:
    api_upload(server, user, [f"broken-{i}.txt" for i in range(3)], "fails_once")
    api_upload(server, user, ["fine.txt"], "noop")
    wait_for_statuses(server, user, {"failed": 3, "completed": 1})
    sign_in(page, server, user)
    expect(page.locator("#bulk-retry")).to_be_disabled()

    page.locator("#filter-status").select_option("failed")
    expect(page.locator("#list-summary")).to_have_text("3 tasks")
    page.get_by_label("Select every task on this page").check()
    expect(page.locator("#selection-info")).to_have_text("3 selected")
    page.get_by_role("button", name="Retry selected").click()
    expect(page.locator("#toast")).to_have_text("Queued again: 3")
    wait_for_statuses(server, user, {"failed": 0, "completed": 4})
    page.locator("#filter-status").select_option("")
    expect(page.locator("#task-table tbody tr[data-status='completed']")).to_have_count(4)
    expect(page.locator("#selection-info")).to_have_text("None selected")

    # Bulk delete asks first.
    row(page, "fine.txt").get_by_label("Select fine.txt").check()
    row(page, "broken-0.txt").get_by_label("Select broken-0.txt").check()
    page.get_by_role("button", name="Delete selected").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Delete 2 tasks with their logs and files?")
    dialog.get_by_role("button", name="Delete 2").click()
    expect(page.locator("#list-summary")).to_have_text("2 tasks")

    # Operations: every failed task retried at once, with its count, after confirmation.
    api_upload(server, user, [f"again-{i}.txt" for i in range(2)], "fails_once")
    wait_for_statuses(server, user, {"failed": 2})
    open_screen(page, "Operations", "Operations")
    retry_all = page.get_by_role("button", name="Retry 2 failed tasks")
    retry_all.click()
    expect(dialog).to_contain_text("Retry your 2 failed tasks?")
    dialog.get_by_role("button", name="Retry 2").click()
    expect(page.locator("#toast")).to_have_text("Queued 2 failed tasks again")
    wait_for_statuses(server, user, {"failed": 0, "completed": 4})
    expect(page.locator("#ops-failed-count")).to_have_text("0")


def test_cancel_a_selection_from_operations(page: Page, server: Server, user: str) -> None:
    api_upload(server, user, ["long-a.txt", "long-b.txt", "long-c.txt"], "slow")
    sign_in(page, server, user)
    open_screen(page, "Operations", "Operations")
    active = page.locator("#ops-active tbody tr")
    expect(active).to_have_count(3)
    page.get_by_label("Select long-a.txt").check()
    page.get_by_label("Select long-c.txt").check()
    page.get_by_role("button", name="Cancel 2 selected").click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel 2").click()
    expect(active).to_have_count(1)
    expect(active.get_by_role("link")).to_have_text("long-b.txt")
    statuses = {t["file_name"]: t["status"] for t in tasks_of(server, user)}
    assert statuses["long-a.txt"] == statuses["long-c.txt"] == "cancelled"
    assert statuses["long-b.txt"] in {"pending", "processing"}
    server.api("POST", "/tasks/bulk", user, json={"action": "cancel", "status": "processing"})
    server.api("POST", "/tasks/bulk", user, json={"action": "cancel", "status": "pending"})


def test_the_task_list_downloads_report_json_and_summary_md(
    page: Page, server: Server, user: str
) -> None:
    sign_in(page, server, user)
    upload(page, [text_file("the-book.txt", "Chapter 1\n\nIt was late, said Ann.\n")], "reporter")
    task_row = row(page, "the-book.txt")
    expect(task_row.locator(".badge")).to_have_text("completed", timeout=20_000)
    for name, saved in (
        ("report.json", "the-book.report.json"),
        ("summary.md", "the-book.summary.md"),
    ):
        with page.expect_download() as download:
            task_row.get_by_role("button", name=f"Download {name} of the-book.txt").click()
        assert download.value.suggested_filename == saved
    assert download.value.path().read_text().startswith("# Summary")


def test_the_processor_select_describes_each_processor(
    page: Page, server: Server, user: str
) -> None:
    sign_in(page, server, user)
    processor = page.get_by_label("Processor", exact=True)
    expect(processor).to_have_value("analyze")
    expect(processor).to_have_accessible_description(re.compile("^Chapters, counts, characters"))
    names = processor.locator("option").all_text_contents()
    assert names == sorted(names)
    assert {"analyze", "noop", "reporter", "fails_once"} <= set(names)
    processor.select_option("noop")
    expect(page.locator("#upload-processor-about")).to_have_text(
        "Completes at once and writes no files (benchmarks and smoke checks)"
    )
    expect(page.locator("#file-input")).to_have_attribute("accept", ".txt,.md")


@pytest.mark.parametrize(
    ("link", "heading"),
    [
        ("API keys", "API keys"),
        ("Projects", "Projects"),
        ("Users", "Users"),
        ("Operations", "Operations"),
    ],
)
def test_each_new_screen_fits_a_phone(
    browser: Browser, server: Server, link: str, heading: str
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    problems = PageProblems()
    try:
        page = context.new_page()
        page.on("console", problems.console)
        page.on("pageerror", problems.page_error)
        sign_in(page, server, ADMIN_EMAIL, ADMIN_PASSWORD)
        open_screen(page, link, heading)
        page.locator("main table tbody tr:visible").first.wait_for()
        if link == "Operations":
            page.locator("#chart-queue").wait_for()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert page.evaluate(UNLABELLED_CONTROLS) == []
        assert page.evaluate(LOW_CONTRAST_TEXT) == []
    finally:
        context.close()
    assert problems.messages == []
