"""The dashboard at ``/`` driven in Chromium against a real server."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, Route, WebSocketRoute, expect

from tests.e2e.conftest import PageProblems, sign_in
from tests.e2e.server import ADMIN_EMAIL, ADMIN_PASSWORD, USER_PASSWORD, Server

pytestmark = pytest.mark.e2e

XSS_NAME = "<script>alert(1)<script><img src=x onerror=alert(2)>.txt"

# Records every in-place change of a task row's progress bar. Rows built by a
# list reload get their value before they are attached, so what is recorded
# here came from live (WebSocket) updates.
RECORD_LIVE_PROGRESS = """() => {
  window.liveProgress = {};
  new MutationObserver((mutations) => {
    for (const m of mutations) {
      const row = m.target.closest && m.target.closest("tr[data-task-id]");
      if (!row || m.target.getAttribute("role") !== "progressbar") continue;
      const value = Number(m.target.getAttribute("aria-valuenow"));
      (window.liveProgress[row.dataset.taskId] ??= []).push(value);
    }
  }).observe(document.body, { subtree: true, attributeFilter: ["aria-valuenow"] });
}"""


UNLABELLED_CONTROLS = """() => [...document.querySelectorAll("input, select, button, textarea")]
  .filter((el) => !(el.labels?.length || el.getAttribute("aria-label") || el.textContent.trim()))
  .map((el) => el.outerHTML)"""


# Visible text whose colour against its (first opaque) background is under the
# WCAG AA contrast ratio: 4.5:1, or 3:1 for large text (24px, or 18.66px bold).
# Disabled controls are exempt, as WCAG allows.
LOW_CONTRAST_TEXT = """() => {
  const parse = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const luminance = ([r, g, b]) => {
    const lin = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  };
  const background = (el) => {
    for (let node = el; node; node = node.parentElement) {
      const rgba = parse(getComputedStyle(node).backgroundColor);
      if (rgba.length === 3 || (rgba.length === 4 && rgba[3] === 1)) return rgba.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const problems = [];
  for (const el of document.querySelectorAll("body *")) {
    const text = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!text || el.closest(":disabled, .visually-hidden, option")) continue;
    if (!el.checkVisibility({ opacityProperty: true })) continue;
    const style = getComputedStyle(el);
    const fg = parse(style.color).slice(0, 3);
    const [l1, l2] = [luminance(fg), luminance(background(el))].sort((a, b) => b - a);
    const ratio = (l1 + 0.05) / (l2 + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    const name = `${el.tagName} "${el.textContent.trim().slice(0, 30)}"`;
    if (ratio < (large ? 3 : 4.5)) problems.push(`${name} ${ratio.toFixed(2)}`);
  }
  return problems;
}"""


def text_file(name: str, text: str = "It was a dark and stormy night.\n") -> dict[str, Any]:
    return {"name": name, "mimeType": "text/plain", "buffer": text.encode()}


def manuscript(chapters: int = 3) -> str:
    paragraph = (
        "Alice walked into the garden where the Queen was waiting. "
        '"Good morning," said Alice, and the Queen smiled at her. '
        "The roses were red and the hedges were tall and green.\n\n"
    )
    return "".join(f"Chapter {i}\n\n" + paragraph * 6 for i in range(1, chapters + 1))


def upload(page: Page, files: list[dict[str, Any]], processor: str = "analyze") -> None:
    page.get_by_label("Processor", exact=True).select_option(processor)
    page.locator("#file-input").set_input_files(files=files)  # type: ignore[arg-type]


def row(page: Page, name: str) -> Locator:
    return page.locator("#task-table tbody tr").filter(
        has=page.get_by_role("link", name=name, exact=True)
    )


def tasks_of(server: Server, email: str, **query: Any) -> list[dict[str, Any]]:
    response = server.api("GET", "/tasks/", email, params={"page_size": 100, **query})
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_sign_in_with_a_password_or_an_api_key_and_sign_out(
    page: Page, server: Server, user: str
) -> None:
    response = page.goto(server.base_url + "/")
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "require-trusted-types-for 'script'" in policy

    assert page.evaluate(UNLABELLED_CONTROLS) == []
    assert page.evaluate(LOW_CONTRAST_TEXT) == []
    page.get_by_label("Email", exact=True).fill(ADMIN_EMAIL)
    page.get_by_label("Password", exact=True).fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#password-error")).to_have_text("Those credentials were not accepted.")

    page.get_by_label("Password", exact=True).fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#who")).to_have_text(f"{ADMIN_EMAIL} (admin)")
    expect(page.locator("#live-status")).to_have_text("Live")
    stored = json.loads(page.evaluate("sessionStorage.getItem('ntm.credential')"))
    assert stored["kind"] == "jwt"
    assert stored["token"] not in page.url

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0

    created = server.api("POST", "/auth/api-keys", user, json={"name": "dashboard"}).json()
    page.get_by_label("API key", exact=True).fill("ntm_wrong_key")
    page.get_by_role("button", name="Use API key").click()
    expect(page.locator("#key-error")).to_have_text("Those credentials were not accepted.")
    page.get_by_label("API key", exact=True).fill(created["key"])
    page.get_by_role("button", name="Use API key").click()
    expect(page.locator("#who")).to_have_text(user)
    expect(page.locator("#live-status")).to_have_text("Live")
    assert json.loads(page.evaluate("sessionStorage.getItem('ntm.credential')"))["kind"] == (
        "api_key"
    )

    # A revoked key ends the session at the next request.
    revoked = server.api("DELETE", f"/auth/api-keys/{created['id']}", user)
    assert revoked.status_code == 204
    page.get_by_role("link", name="Statistics").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.locator("#toast")).to_have_text("Your session has ended: please sign in again.")
    assert page.evaluate("sessionStorage.length") == 0


def test_two_uploads_reach_100_percent_live_without_a_reload(
    page: Page, server: Server, user: str
) -> None:
    sign_in(page, server, user)
    page.evaluate(RECORD_LIVE_PROGRESS)
    page.evaluate("window.notReloaded = true")

    upload(page, [text_file("first.txt"), text_file("second.md", "# Title\n\nText.\n")], "paced")

    expect(page.locator("#upload-message")).to_have_text("Queued 2 files.")
    expect(page.get_by_role("progressbar", name="Upload progress")).to_have_attribute(
        "aria-valuenow", "100"
    )
    for name in ("first.txt", "second.md"):
        expect(row(page, name).locator(".badge")).to_have_text("completed", timeout=20_000)
        expect(row(page, name).get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    assert page.evaluate("window.notReloaded") is True
    tasks = tasks_of(server, user)
    assert sorted(t["file_name"] for t in tasks) == ["first.txt", "second.md"]
    assert tasks[0]["batch_id"] is not None
    assert tasks[0]["batch_id"] == tasks[1]["batch_id"]
    seen: dict[str, list[int]] = page.evaluate("window.liveProgress")
    for task in tasks:
        values = seen[task["id"]]
        assert values[-1] == 100
        assert any(0 < v < 100 for v in values), values
        assert values == sorted(values)


def test_a_rejected_file_shows_the_server_s_problem_detail(
    page: Page, server: Server, user: str
) -> None:
    sign_in(page, server, user)
    binary = {"name": "setup.exe", "mimeType": "application/octet-stream", "buffer": b"MZ\x90\0"}
    expected = server.api(
        "POST", "/tasks/upload", user, files={"file": ("setup.exe", b"MZ\x90\0")}
    ).json()["detail"]
    upload(page, [binary])
    expect(page.locator("#upload-error")).to_have_text(f"Not uploaded: {expected}")

    disguised = {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"\0\x01\x02binary"}
    upload(page, [text_file("good.txt"), disguised])
    expect(page.locator("#upload-error")).to_have_text(
        "Nothing was uploaded: notes.txt does not look like a text file"
    )
    expect(page.locator("#task-table tbody")).to_have_text(
        "No tasks yet: upload a manuscript above."
    )
    assert tasks_of(server, user) == []


# A drop of files on the drop zone, as the browser fires it for a drag from the desktop.
DROP_FILES = """([names, text]) => {
  const data = new DataTransfer();
  for (const name of names) data.items.add(new File([text], name, { type: "text/plain" }));
  const zone = document.getElementById("dropzone");
  for (const type of ["dragenter", "dragover", "drop"]) {
    const init = { dataTransfer: data, bubbles: true, cancelable: true };
    zone.dispatchEvent(new DragEvent(type, init));
  }
}"""


def test_files_dropped_on_the_drop_zone_are_uploaded_as_a_batch(
    page: Page, server: Server, user: str
) -> None:
    sign_in(page, server, user)
    page.get_by_label("Processor", exact=True).select_option("noop")
    page.locator("#upload-priority").fill("7")
    page.evaluate(DROP_FILES, [["dropped-1.txt", "dropped-2.md"], "Dropped text.\n"])
    expect(page.locator("#upload-message")).to_have_text("Queued 2 files.")
    for name in ("dropped-1.txt", "dropped-2.md"):
        expect(row(page, name).locator(".badge")).to_have_text("completed")
    tasks = tasks_of(server, user)
    assert {t["priority"] for t in tasks} == {7}
    assert {t["processor"] for t in tasks} == {"noop"}
    assert len({t["batch_id"] for t in tasks}) == 1

    # The picker is reachable with the keyboard: Tab from the last upload field.
    page.get_by_label("Project", exact=True).first.focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "file-input"


# Records every value the task page's progress bar takes.
RECORD_TASK_PROGRESS = """() => {
  window.taskProgress = [];
  new MutationObserver((mutations) => {
    for (const m of mutations) {
      if (m.target.getAttribute("aria-label") !== "Task progress") continue;
      window.taskProgress.push(Number(m.target.getAttribute("aria-valuenow")));
    }
  }).observe(document.body, { subtree: true, attributeFilter: ["aria-valuenow"] });
}"""

MARKUP_CHAPTER = "<img src=x onerror=alert(3)> & <b>bold</b>"


def test_a_task_page_follows_the_task_and_downloads_report_json(
    page: Page, server: Server, user: str
) -> None:
    sign_in(page, server, user)
    page.evaluate(RECORD_TASK_PROGRESS)
    # ``reporter`` takes three seconds and writes a report.json of the documented shape.
    text = manuscript() + f"# {MARKUP_CHAPTER}\n\nThe end.\n"
    upload(page, [text_file("garden.txt", text)], "reporter")
    page.get_by_role("link", name="garden.txt", exact=True).click()
    expect(page.get_by_role("heading", name="garden.txt", level=1)).to_be_visible()
    assert re.search(r"#/tasks/[0-9a-f-]+$", page.url)
    task_id = page.url.rsplit("/", 1)[1]

    # Live progress on the page, then the result without a reload.
    expect(page.locator("#task-percent")).to_have_text("100%", timeout=20_000)
    expect(page.locator("#task-status .badge")).to_have_text("completed")
    expect(page.locator("#task-status")).to_have_attribute("data-status", "completed")
    seen: list[int] = page.evaluate("window.taskProgress")
    assert any(0 < v < 100 for v in seen), seen
    assert seen == sorted(seen)
    report = server.api("GET", f"/tasks/{task_id}/files/report.json", user).json()
    counts = report["counts"]

    figures = page.locator("#report-figures")
    for label, value in (
        ("Chapters", "chapters"),
        ("Words", "words"),
        ("Characters", "characters"),
    ):
        figure = figures.locator(".figure").filter(has=page.get_by_text(label, exact=True))
        expect(figure.locator("dd")).to_have_text(f"{counts[value]:,}")
    first_keyword = report["keywords"][0]
    expect(page.locator("#report-keywords li").first).to_have_text(
        f"{first_keyword['term']} ({first_keyword['count']:,})"
    )
    first_name = report["character_names"][0]
    expect(page.locator("#report-characters li").first).to_have_text(
        f"{first_name['name']} ({first_name['mentions']:,})"
    )
    chapter_titles = page.locator("#task-report table.chapters tbody td[data-label='Title']")
    expect(chapter_titles).to_have_text([c["title"] for c in report["chapters"]])
    expect(chapter_titles.last).to_have_text(MARKUP_CHAPTER)
    assert page.locator("main img, main b").count() == 0

    result = server.api("GET", f"/tasks/{task_id}/result", user).json()
    expect(page.locator("#result-summary")).to_have_text(result["summary"])
    expect(page.locator("#task-result")).to_contain_text("95%")  # quality_score 0.95
    expect(page.locator("#task-logs tbody tr").first).to_be_visible()
    assert page.evaluate(UNLABELLED_CONTROLS) == []
    assert page.evaluate(LOW_CONTRAST_TEXT) == []

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download report.json").click()
    download = download_info.value
    assert download.suggested_filename == "garden.report.json"  # named after the manuscript
    assert json.loads(Path(download.path()).read_text(encoding="utf-8")) == report
    names = [f["name"] for f in server.api("GET", f"/tasks/{task_id}/files", user).json()]
    assert {"report.json", "summary.md"} <= set(names)
    expect(page.locator("#task-files li .file-name")).to_have_text(names)
    for name in names:
        expect(page.get_by_role("button", name=f"Download {name}", exact=True)).to_be_enabled()
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download summary.md").click()
    assert download_info.value.suggested_filename == "garden.summary.md"
    summary = Path(download_info.value.path()).read_text(encoding="utf-8")
    assert summary.startswith("# Summary")

    page.get_by_role("link", name="← All tasks").click()
    expect(page.get_by_role("heading", name="Tasks", exact=True)).to_be_visible()


# Drawn shapes (bars, filled heatmap cells, reference lines) whose colour against
# the card is under 3:1, the WCAG AA contrast for graphics (1.4.11).
LOW_CONTRAST_GRAPHICS = """() => {
  const parse = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const luminance = ([r, g, b]) => {
    const lin = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  };
  const card = parse(getComputedStyle(document.querySelector("#task-report")).backgroundColor);
  const problems = [];
  const shapes = ".chart rect.chart-bar, .chart rect.chart-cell:not(.level-0), .chart line";
  for (const el of document.querySelectorAll(shapes)) {
    const style = getComputedStyle(el);
    const colour = parse(el.tagName === "line" ? style.stroke : style.fill).slice(0, 3);
    const [l1, l2] = [luminance(colour), luminance(card)].sort((a, b) => b - a);
    const ratio = (l1 + 0.05) / (l2 + 0.05);
    if (ratio < 3) problems.push(`${el.getAttribute("class")} ${ratio.toFixed(2)}`);
  }
  return problems;
}"""

MARKUP_NAME = "<b>Zed</b>"


def story() -> str:
    """Four chapters of different lengths and dialogue; Bob only in the second.

    The last chapter's title and its speaker are markup, and the text stops
    mid-sentence, so ``reporter`` fails its ``truncated`` check with an example.
    """
    narration = "Alice walked along the river where the willows grew tall and green.\n\n"
    speech = '"Good morning," said Alice, and the Queen smiled at her.\n\n'
    chapters = [
        "Chapter 1\n\n" + narration * 8,
        "Chapter 2\n\n" + (narration + speech + "Bob waved at Alice.\n\n") * 5,
        "Chapter 3\n\n" + speech * 3 + narration,
        f"# {MARKUP_CHAPTER}\n\n" + f'"The end," said {MARKUP_NAME}. And then the',
    ]
    return "".join(chapters)


def values(locator: Locator) -> list[float]:
    found: list[str] = locator.evaluate_all("els => els.map((e) => e.getAttribute('data-value'))")
    return [float(v) for v in found]


def test_a_task_page_draws_pacing_dialogue_and_character_presence(
    page: Page, server: Server, user: str
) -> None:
    sign_in(page, server, user)
    upload(page, [text_file("story.txt", story())], "reporter")
    page.get_by_role("link", name="story.txt", exact=True).click()
    expect(page.locator("#task-status .badge")).to_have_text("completed", timeout=20_000)
    task_id = page.url.rsplit("/", 1)[1]
    report = server.api("GET", f"/tasks/{task_id}/files/report.json", user).json()
    assert report["schema_version"] == 2
    chapters = report["chapters"]
    characters = report["character_names"]
    assert len(chapters) == 4
    assert MARKUP_NAME in [c["name"] for c in characters]

    # Chapter lengths: one bar per chapter, as tall as its words, named and titled.
    lengths = page.get_by_role("img", name="Chapter lengths: words in each of the 4 chapters")
    expect(lengths).to_be_visible()
    bars = page.locator("#chart-chapter-lengths rect.chart-bar")
    expect(bars).to_have_count(len(chapters))
    words = [c["words"] for c in chapters]
    assert values(bars) == words
    heights: list[float] = bars.evaluate_all(
        "els => els.map((e) => e.getBoundingClientRect().height)"
    )
    for height, count in zip(heights, words, strict=True):
        assert height / max(heights) == pytest.approx(count / max(words), abs=0.02)
    expect(bars.locator("title")).to_have_text(
        [f"{c['index']}. {c['title']}: {c['words']:,}" for c in chapters]
    )
    mean = sum(words) / len(words)
    shortest = words.index(min(words))
    expect(page.locator("#chart-chapter-lengths .chart-note")).to_have_text(
        f"Shortest: chapter {shortest + 1} ({min(words):,} words); longest: chapter 2 "
        f"({max(words):,} words); mean {round(mean):,} (dashed line)."
    )
    data = page.locator("#chart-chapter-lengths table.chart-data tbody tr")
    expect(data).to_have_count(len(chapters))
    expect(data.last).to_have_text(f"4. {MARKUP_CHAPTER}{words[3]:,}")

    # Dialogue: one bar per chapter with its ratio; the whole book's ratio as a line.
    dialogue = page.get_by_role("img", name=re.compile(r"^Dialogue by chapter: "))
    expect(dialogue).to_be_visible()
    dialogue_bars = page.locator("#chart-dialogue rect.chart-bar")
    expect(dialogue_bars).to_have_count(len(chapters))
    assert values(dialogue_bars) == [c["dialogue_ratio"] for c in chapters]
    assert chapters[0]["dialogue_ratio"] == 0
    assert values(page.locator("#chart-dialogue line.reference")) == [report["dialogue_ratio"]]
    expect(dialogue_bars.nth(2).locator("title")).to_have_text(
        f"3. Chapter 3: {chapters[2]['dialogue_ratio'] * 100:.1f}%"
    )

    # Presence: a row of cells per character, a cell per chapter, names as text.
    presence_name = f"mentions of the {len(characters)} main characters in each chapter"
    presence = page.get_by_role("img", name=f"Character presence: {presence_name}")
    expect(presence).to_be_visible()
    cells = page.locator("#chart-presence .heatmap-svg rect.chart-cell")
    expect(cells).to_have_count(len(characters) * len(chapters))
    assert values(cells) == [m for c in characters for m in c["chapter_mentions"]]
    expect(page.locator("#chart-presence .heatmap-names li")).to_have_text(
        [c["name"] for c in characters]
    )
    bob = next(c for c in characters if c["name"] == "Bob")
    assert bob["chapter_mentions"] == [0, 5, 0, 0]
    bob_cells = page.locator("#chart-presence .heatmap-svg rect.chart-cell[data-character='Bob']")
    expect(bob_cells.locator("title")).to_have_text(
        ["Bob, 1. Chapter 1: 0 mentions", "Bob, 2. Chapter 2: 5 mentions",
         "Bob, 3. Chapter 3: 0 mentions", f"Bob, 4. {MARKUP_CHAPTER}: 0 mentions"]
    )  # fmt: skip
    assert bob_cells.evaluate_all("els => els.map((e) => e.getAttribute('class'))") == [
        "chart-cell level-0", "chart-cell level-4", "chart-cell level-0", "chart-cell level-0"
    ]  # fmt: skip
    presence_rows = page.locator("#chart-presence table.chart-data tbody tr")
    expect(presence_rows).to_have_count(len(chapters))
    expect(page.locator("#chart-presence table.chart-data thead th")).to_have_text(
        ["Chapter", *[c["name"] for c in characters]]
    )

    # The other new parts: writing metrics, the dialogue column, a failing check's example.
    writing = report["writing"]
    expect(page.locator("#report-writing .writing-line").first).to_have_text(
        re.compile(rf"^Readability: {writing['readability']['score']:.1f} \(Flesch reading ease")
    )
    first_word = writing["overused_words"][0]
    expect(page.locator("#report-overused li").first).to_have_text(
        f"{first_word['term']} ({first_word['count']}; ch. 1)"
    )
    first_phrase = writing["repeated_phrases"][0]
    expect(page.locator("#report-phrases li").first).to_have_text(
        f"“{first_phrase['phrase']}” ({first_phrase['count']}; ch. 1)"
    )
    dialogue_cells = page.locator("#task-report table.chapters td[data-label='Dialogue']")
    expect(dialogue_cells).to_have_text([f"{c['dialogue_ratio'] * 100:.1f}%" for c in chapters])
    truncated = next(c for c in report["quality"]["checks"] if c["name"] == "truncated")
    example = truncated["examples"][0]
    assert MARKUP_NAME in example["sample"]
    expect(
        page.locator("#report-checks li[data-check='truncated'] .check-examples li")
    ).to_have_text(f"Chapter 4, offset {example['offset']:,}: “{example['sample']}”")
    expect(page.locator("#report-checks li[data-check='truncated'] > span")).to_have_text(
        "✗ truncated (1, \u221220%)"  # a minus sign
    )

    assert page.locator("main img, main b, main script").count() == 0
    assert page.evaluate(UNLABELLED_CONTROLS) == []
    assert page.evaluate(LOW_CONTRAST_TEXT) == []
    assert page.evaluate(LOW_CONTRAST_GRAPHICS) == []


def test_charts_fit_a_phone_with_one_chapter_or_150(
    browser: Browser, server: Server, user: str
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    problems = PageProblems()
    try:
        page = context.new_page()
        page.on("console", problems.console)
        page.on("pageerror", problems.page_error)
        sign_in(page, server, user)
        ids = {}
        for count in (1, 150):
            created = server.api(
                "POST", "/tasks/upload", user, data={"processor": "reporter"},
                files={"file": (f"{count}-chapters.txt", manuscript(count).encode())},
            )  # fmt: skip
            assert created.status_code == 202
            ids[count] = created.json()["id"]
        for count, task_id in ids.items():
            page.goto(f"{server.base_url}/#/tasks/{task_id}")
            expect(page.locator("#task-status .badge")).to_have_text("completed", timeout=20_000)
            report = server.api("GET", f"/tasks/{task_id}/files/report.json", user).json()
            assert len(report["chapters"]) == count
            rows = len(report["character_names"])
            bars = page.locator("#chart-chapter-lengths rect.chart-bar")
            expect(bars).to_have_count(count)
            expect(page.locator("#chart-dialogue rect.chart-bar")).to_have_count(count)
            expect(page.locator("#chart-presence .heatmap-svg rect.chart-cell")).to_have_count(
                rows * count
            )
            name = f"Chapter lengths: words in each of the {count} chapters"
            expect(page.get_by_role("img", name=name)).to_be_visible()
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            for chart in ("#chart-chapter-lengths", "#chart-dialogue", "#chart-presence"):
                box = page.locator(f"{chart} svg.chart-svg").bounding_box()
                assert box is not None
                assert box["x"] >= 0
                assert box["x"] + box["width"] <= 390
                assert box["height"] >= 40
            # every bar visible and apart from its neighbours
            boxes: list[list[float]] = bars.evaluate_all(
                "els => els.map((e) => e.getBoundingClientRect()).map((r) => [r.x, r.width])"
            )
            assert all(width >= 1 for _, width in boxes)
            assert all(a[0] + a[1] <= b[0] + 0.01 for a, b in itertools.pairwise(boxes))
            axis = page.locator("#chart-chapter-lengths .chart-axis-x span")
            expect(axis).to_have_text(["Ch. 1"] if count == 1 else ["Ch. 1", "Ch. 75", "Ch. 150"])
            assert page.evaluate(LOW_CONTRAST_TEXT) == []
            assert page.evaluate(LOW_CONTRAST_GRAPHICS) == []
    finally:
        context.close()
    assert problems.messages == []


def test_a_schema_version_1_report_is_shown_without_the_new_charts(
    page: Page, server: Server, user: str
) -> None:
    """A report of the first schema (no dialogue per chapter, no presence lists,
    no writing metrics, checks without examples) still shows what it has."""

    def as_version_1(route: Route) -> None:
        response = route.fetch()
        report = response.json()
        report["schema_version"] = 1
        for chapter in report["chapters"]:
            for key in ("part", "sentences", "paragraphs", "dialogue_ratio"):
                del chapter[key]
        for character in report["character_names"]:
            del character["chapter_mentions"]
        for check in report["quality"]["checks"]:
            for key in ("weight", "penalty", "examples"):
                del check[key]
        del report["writing"]
        route.fulfill(response=response, json=report)

    page.route("**/files/report.json", as_version_1)
    sign_in(page, server, user)
    upload(page, [text_file("old.txt", story())], "reporter")
    page.get_by_role("link", name="old.txt", exact=True).click()
    expect(page.locator("#task-status .badge")).to_have_text("completed", timeout=20_000)
    expect(page.locator("#report-characters li").first).to_be_visible()
    # chapters[].words was there in version 1: pacing is drawn, the rest is not
    expect(page.locator("#chart-chapter-lengths rect.chart-bar")).to_have_count(4)
    expect(page.locator("#chart-dialogue, #chart-presence, #report-writing")).to_have_count(0)
    expect(page.locator("#task-report table.chapters th")).to_have_text(["#", "Title", "Words"])
    expect(page.locator("#report-checks li[data-check='truncated']")).to_have_text(
        "✗ truncated (1)"
    )
    expect(page.locator(".check-examples")).to_have_count(0)


def test_cancel_retry_and_delete_ask_first_and_follow_the_task(
    page: Page, server: Server, user: str
) -> None:
    sign_in(page, server, user)
    upload(page, [text_file("long.txt")], "slow")
    long_row = row(page, "long.txt")
    expect(long_row.locator(".badge")).to_have_text("processing")
    expect(long_row.get_by_role("progressbar")).not_to_have_attribute("aria-valuenow", "0")

    long_row.get_by_role("button", name="Cancel long.txt").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Cancel the processing of “long.txt”?")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(long_row.locator(".badge")).to_have_text("processing")

    long_row.get_by_role("button", name="Cancel long.txt").click()
    dialog.get_by_role("button", name="Cancel task").click()
    expect(long_row.locator(".badge")).to_have_text("cancelled")
    assert tasks_of(server, user)[0]["status"] == "cancelled"

    long_row.get_by_role("button", name="Retry long.txt").click()
    expect(long_row.locator(".badge")).to_have_text("processing")
    expect(long_row.get_by_role("button", name="Retry long.txt")).to_have_count(0)

    long_row.get_by_role("button", name="Delete long.txt").click()
    expect(dialog).to_contain_text("Delete “long.txt” with its logs and files?")
    dialog.get_by_role("button", name="Delete task").click()
    expect(long_row).to_have_count(0)
    expect(page.locator("#list-summary")).to_have_text("0 tasks")
    assert tasks_of(server, user) == []


def test_a_file_name_with_markup_is_shown_as_text(page: Page, server: Server, user: str) -> None:
    sign_in(page, server, user)
    upload(page, [text_file(XSS_NAME)], "noop")

    link = page.get_by_role("link", name=XSS_NAME, exact=True)
    expect(link).to_have_text(XSS_NAME)
    expect(row(page, XSS_NAME).locator(".badge")).to_have_text("completed")
    assert page.locator("#task-table img, #task-table script").count() == 0
    expect(page.locator("#upload-message")).to_have_text(f"Queued {XSS_NAME}.")

    row(page, XSS_NAME).get_by_role("button", name=f"Delete {XSS_NAME}").click()
    expect(page.locator("#confirm-message")).to_contain_text(XSS_NAME)
    page.keyboard.press("Escape")

    link.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(XSS_NAME)
    assert page.locator("main img, main script").count() == 0


def test_filters_search_sorting_and_pagination(page: Page, server: Server, user: str) -> None:
    project = server.api("POST", "/projects", user, json={"name": "Drafts", "description": ""})
    assert project.status_code == 201
    sign_in(page, server, user)
    upload(page, [text_file(f"alpha-{i:02}.txt") for i in range(1, 12)], "noop")
    expect(page.locator("#upload-message")).to_have_text("Queued 11 files.")
    page.get_by_label("Project", exact=True).first.select_option(label="Drafts")
    upload(page, [text_file("beta.txt")], "noop")
    expect(page.locator("#list-summary")).to_have_text("12 tasks")

    assert page.evaluate(UNLABELLED_CONTROLS) == []
    assert page.evaluate(LOW_CONTRAST_TEXT) == []
    body = page.locator("#task-table tbody tr")
    page.get_by_label("Per page").select_option("10")
    expect(page.locator("#page-info")).to_have_text("Page 1 of 2")
    expect(body).to_have_count(10)
    page.get_by_role("button", name="Next page").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#page-info")).to_have_text("Page 2 of 2")
    expect(body).to_have_count(2)

    page.get_by_label("Sort by").select_option("-file_name")
    expect(page.locator("#page-info")).to_have_text("Page 1 of 2")
    expect(body.first.get_by_role("link")).to_have_text("beta.txt")
    page.get_by_label("Sort by").select_option("file_name")
    expect(body.first.get_by_role("link")).to_have_text("alpha-01.txt")

    page.get_by_label("Search file names").fill("pha-1")
    expect(page.locator("#list-summary")).to_have_text("2 tasks")
    expect(body.get_by_role("link")).to_have_text(["alpha-10.txt", "alpha-11.txt"])
    page.get_by_label("Search file names").fill("")

    page.locator("#filter-project").select_option(label="Drafts")
    expect(page.locator("#list-summary")).to_have_text("1 task")
    expect(body.get_by_role("link")).to_have_text(["beta.txt"])
    page.locator("#filter-project").select_option(label="All projects")

    page.get_by_label("Status").select_option("failed")
    expect(page.locator("#task-table tbody")).to_have_text("No tasks match these filters.")
    page.get_by_label("Status").select_option("completed")
    expect(page.locator("#list-summary")).to_have_text("12 tasks")

    # The filters stay while browsing, and are forgotten at sign-out.
    page.get_by_label("Status").select_option("failed")
    page.get_by_role("link", name="Statistics").click()
    page.get_by_role("link", name="Tasks", exact=True).click()
    # by id: while the view changes, the label may still point at the old page
    expect(page.locator("#filter-status")).to_have_value("failed")
    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("Email", exact=True).fill(user)
    page.get_by_label("Password", exact=True).fill(USER_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#filter-status")).to_have_value("")
    expect(page.locator("#list-summary")).to_have_text("12 tasks")


def test_statistics_show_the_user_s_counts(page: Page, server: Server, user: str) -> None:
    sign_in(page, server, user)
    upload(page, [text_file("one.txt"), text_file("two.txt")], "noop")
    for name in ("one.txt", "two.txt"):
        expect(row(page, name).locator(".badge")).to_have_text("completed")

    page.get_by_role("link", name="Statistics").click()
    expect(page.get_by_role("heading", name="Statistics", level=1)).to_be_visible()
    stats = server.api("GET", "/tasks/statistics", user).json()
    expect(page.locator("#stat-total dd")).to_have_text("2")
    expect(page.locator("#stat-success-rate dd")).to_have_text("100.0%")
    expect(page.locator("#stat-queue-depth dd")).to_have_text("0")
    expect(page.locator("#stat-workers dd")).to_have_text(str(stats["active_workers"]))
    completed = page.locator("#stats-by-status tr[data-status='completed'] .count")
    expect(completed).to_have_text("2")
    expect(page.locator("#stats-by-status tr[data-status='failed'] .count")).to_have_text("0")
    assert page.evaluate(LOW_CONTRAST_TEXT) == []


def test_the_task_list_and_a_task_page_fit_a_phone_screen(
    browser: Browser, server: Server, user: str
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    problems = PageProblems()
    try:
        page = context.new_page()
        page.on("console", problems.console)
        page.on("pageerror", problems.page_error)
        sign_in(page, server, user)
        name = "a-rather-long-manuscript-name-for-a-small-screen-with-no-spaces-at-all.txt"
        upload(page, [text_file(name, manuscript(2))], "reporter")
        task_row = row(page, name)
        expect(task_row.locator(".badge")).to_have_text("completed", timeout=20_000)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        first_cell = task_row.locator("td").first.bounding_box()
        actions = task_row.get_by_role("button", name=re.compile("^Delete")).bounding_box()
        assert first_cell is not None
        assert actions is not None
        assert actions["y"] > first_cell["y"] + first_cell["height"] - 1
        assert actions["x"] + actions["width"] <= 390
        assert page.evaluate(LOW_CONTRAST_TEXT) == []

        page.get_by_role("link", name=name).click()
        page.locator("#report-figures").wait_for()
        page.locator("#task-logs tbody tr").first.wait_for()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert page.evaluate(LOW_CONTRAST_TEXT) == []
    finally:
        context.close()
    assert problems.messages == []


# Records each reconnection delay the page announces.
RECORD_RETRY_DELAYS = """() => {
  window.retryDelays = [];
  const status = document.getElementById("live-status");
  new MutationObserver(() => {
    if (status.dataset.retryMs) window.retryDelays.push(Number(status.dataset.retryMs));
  }).observe(status, { attributeFilter: ["data-retry-ms"] });
}"""


def test_the_live_connection_backs_off_reconnects_and_catches_up(
    page: Page, server: Server, user: str
) -> None:
    sockets: list[WebSocketRoute] = []
    urls: list[str] = []
    refuse = False

    def route(socket: WebSocketRoute) -> None:
        urls.append(socket.url)
        if refuse:
            socket.close(code=1011, reason="test: server unavailable")
            return
        socket.connect_to_server()
        sockets.append(socket)

    page.route_web_socket(re.compile(r"/api/v1/ws/tasks/"), route)
    sign_in(page, server, user)
    assert len(urls) == 1
    assert re.search(r"/api/v1/ws/tasks/[0-9a-f]{32}\?token=.+$", urls[0])
    page.evaluate(RECORD_RETRY_DELAYS)

    refuse = True
    sockets[0].close(code=1011, reason="test: connection lost")
    # (wait_for_function would eval a string, which the page's CSP forbids)
    for _ in range(100):
        if page.evaluate("window.retryDelays.length") >= 2:
            break
        page.wait_for_timeout(50)
    created = server.api(
        "POST", "/tasks/upload", user, files={"file": ("missed.txt", b"Missed.\n")},
        data={"processor": "noop"},
    )  # fmt: skip
    assert created.status_code == 202
    refuse = False

    expect(page.locator("#live-status")).to_have_text("Live", timeout=10_000)
    expect(row(page, "missed.txt").locator(".badge")).to_have_text("completed")
    delays: list[int] = page.evaluate("window.retryDelays")
    assert 250 <= delays[0] <= 500
    assert 500 <= delays[1] <= 1000
    assert len({u.split("?")[0] for u in urls}) == 1  # one client id for the page's life
