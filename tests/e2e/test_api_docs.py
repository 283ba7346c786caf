"""/docs and /redoc render every operation in Chromium with nothing fetched from elsewhere.

The page fixture already fails a test on any uncaught script error or
Content-Security-Policy violation; here every request the browser makes is
also recorded, and any to another origin is refused and fails the test, so a
page that needed a CDN would stay blank and be caught.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, Route, expect

from tests.e2e.server import Server


@pytest.fixture
def elsewhere(context: BrowserContext, server: Server) -> Iterator[list[str]]:
    """Requests to any origin but the server's: refused, and listed."""
    origin = urlsplit(server.base_url).netloc
    refused: list[str] = []

    def route(route: Route) -> None:
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlsplit(url).netloc == origin:
            route.continue_()
        else:
            refused.append(url)
            route.abort()

    context.route("**/*", route)
    yield refused
    assert refused == []


def _operations(server: Server) -> list[tuple[str, str]]:
    schema = httpx.get(f"{server.base_url}/openapi.json").json()
    return [
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]


def test_swagger_ui_renders_every_operation_offline(
    page: Page, server: Server, elsewhere: list[str]
) -> None:
    operations = _operations(server)
    assert ("POST", "/api/v1/tasks/upload") in operations
    page.goto(server.base_url + "/docs")
    blocks = page.locator(".opblock")
    expect(blocks.first).to_be_visible(timeout=20_000)
    expect(blocks).to_have_count(len(operations))
    upload = page.locator(".opblock-post").filter(has_text="/api/v1/tasks/upload")
    expect(upload).to_have_count(1)
    upload.locator(".opblock-summary").click()  # an operation opens, with its parameters
    expect(upload.get_by_text("Idempotency-Key", exact=False).first).to_be_visible()
    expect(page.locator(".info .title")).to_contain_text("Novel Task Manager")
    assert elsewhere == []


def test_redoc_renders_every_operation_offline(
    page: Page, server: Server, elsewhere: list[str]
) -> None:
    operations = _operations(server)
    page.goto(server.base_url + "/redoc")
    sections = page.locator("[data-section-id^='operation/']")
    expect(sections.first).to_be_attached(timeout=20_000)
    expect(sections).to_have_count(len(operations))
    expect(page.locator("h1").first).to_contain_text("Novel Task Manager")
    expect(page.get_by_text("/api/v1/tasks/upload").first).to_be_attached()
    assert elsewhere == []


def test_the_docs_pages_name_no_other_origin_and_carry_a_strict_policy(server: Server) -> None:
    for path in ("/docs", "/redoc"):
        response = httpx.get(server.base_url + path)
        assert response.status_code == 200
        policy = response.headers["content-security-policy"]
        assert "script-src 'self';" in policy
        assert "'unsafe-eval'" not in policy
        assert "http" not in response.text.replace(server.base_url, "")
        assert "<script>" not in response.text  # no inline script
