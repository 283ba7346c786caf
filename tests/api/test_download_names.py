"""What a newcomer trips over: downloads named after the manuscript, the file field named."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from app.api.disposition import ascii_fallback, attachment
from app.config import Settings
from tests.api.conftest import Upload, finish_task

API = "/api/v1/tasks"


@pytest.mark.parametrize(
    ("manuscript", "report", "original"),
    [
        (
            "pride_and_prejudice.txt",
            'attachment; filename="pride_and_prejudice.report.json"',
            'attachment; filename="pride_and_prejudice.txt"',
        ),
        (
            "红楼梦.txt",
            "attachment; filename=\"download.report.json\"; filename*=utf-8''"
            "%E7%BA%A2%E6%A5%BC%E6%A2%A6.report.json",
            "attachment; filename=\"download.txt\"; filename*=utf-8''"
            "%E7%BA%A2%E6%A5%BC%E6%A2%A6.txt",
        ),
        (
            "Émile à l'école.md",
            "attachment; filename=\"Emile a l'ecole.report.json\"; filename*=utf-8''"
            "%C3%89mile%20%C3%A0%20l%27%C3%A9cole.report.json",
            "attachment; filename=\"Emile a l'ecole.md\"; filename*=utf-8''"
            "%C3%89mile%20%C3%A0%20l%27%C3%A9cole.md",
        ),
    ],
)
async def test_downloads_are_named_after_the_manuscript(
    upload: Upload,
    client: httpx.AsyncClient,
    headers: dict[str, str],
    app: FastAPI,
    settings: Settings,
    manuscript: str,
    report: str,
    original: str,
) -> None:
    task_id = (await upload(b"Chapter 1\n\nIt was a fine day.\n", manuscript)).json()["id"]
    await finish_task(app, settings, task_id)
    names = {}
    for name in ("report.json", "summary.md", "original" + manuscript[manuscript.rfind(".") :]):
        response = await client.get(f"{API}/{task_id}/files/{name}", headers=headers)
        assert response.status_code == 200, response.text
        names[name] = response.headers["content-disposition"]
    assert names["report.json"] == report
    assert names["summary.md"] == report.replace("report.json", "summary.md")
    assert names[f"original{manuscript[manuscript.rfind('.') :]}"] == original


@pytest.mark.parametrize(
    "name",
    [
        'my "best" book.txt',
        "back\\slash.txt",
        "tab\there.txt",
        "\uff46\uff55\uff4c\uff4c.txt",  # full-width letters
        "——.md",
    ],
)
def test_the_ascii_name_is_always_a_safe_quoted_string(name: str) -> None:
    fallback = ascii_fallback(name)
    assert fallback.isascii()
    assert fallback.isprintable()
    assert '"' not in fallback
    assert "\\" not in fallback
    assert fallback.split(".")[0]  # never an empty stem
    header = attachment(name)
    assert header.startswith(f"attachment; filename=\"{fallback}\"; filename*=utf-8''")


async def test_a_file_in_the_wrong_field_names_the_expected_one(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    big = b"Chapter 1\n\n" + b"A long line of a long book.\n" * 4000
    single = await client.post(
        f"{API}/upload", files={"files": ("big.md", big, "text/markdown")}, headers=headers
    )
    assert single.status_code == 422
    problem = single.json()
    assert problem["code"] == "invalid_form"
    assert problem["detail"] == "Files go in the form field 'file', not 'files'"
    assert problem["errors"][0]["loc"] == ["body", "files"]
    batch = await client.post(
        f"{API}/batch", files={"file": ("a.txt", b"Some text.\n", "text/plain")}, headers=headers
    )
    assert batch.status_code == 422
    assert batch.json()["detail"] == "Files go in the form field 'files', not 'file'"
