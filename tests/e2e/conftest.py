"""Browser tests: a real uvicorn process on SQLite and Debian's Chromium through Playwright.

One server and one browser per test module (see ``server.py``); each test
gets a fresh ordinary user, so it sees only its own tasks, and a fresh browser
context. No fixture here asks for ``backend``: these tests run once, on SQLite.
A test fails on any uncaught script error, Content-Security-Policy violation
or JavaScript dialog in its page.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Page,
    sync_playwright,
)

from tests.e2e.server import CHROMIUM, CHROMIUM_ARGS, USER_PASSWORD, Server, run_server


# Module scope, not session: Playwright's sync API keeps an event loop running
# in this thread until it stops, which the asyncio tests after these must not see.
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with run_server(tmp_path_factory.mktemp("e2e")) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        # like PostgreSQL: shown as skipped on a bare machine, a failure in CI
        reason = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (the browser tests must run in CI)")
        pytest.skip(reason)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@dataclass
class PageProblems:
    """Uncaught errors, CSP violations and JavaScript dialogs seen by a page."""

    messages: list[str] = field(default_factory=list)

    def console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Trusted Type" in message.text:
            self.messages.append(message.text)

    def page_error(self, error: Exception) -> None:
        self.messages.append(f"uncaught: {error}")

    def dialog(self, dialog: Dialog) -> None:
        # The dashboard never calls alert/confirm: a dialog means injected script ran.
        self.messages.append(f"dialog: {dialog.message}")
        dialog.dismiss()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    problems = PageProblems()
    page = context.new_page()
    page.on("console", problems.console)
    page.on("pageerror", problems.page_error)
    page.on("dialog", problems.dialog)
    yield page
    assert problems.messages == []


@pytest.fixture
def user(server: Server) -> str:
    """A fresh ordinary user's email (password USER_PASSWORD)."""
    return server.create_user()


def sign_in(page: Page, server: Server, email: str, password: str = USER_PASSWORD) -> None:
    """Sign in through the form and wait for the task list and the live connection."""
    page.goto(server.base_url + "/")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Tasks", exact=True).wait_for()
    page.locator("#live-status[data-state='live']").wait_for()
