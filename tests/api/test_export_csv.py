"""CSV export: no cell a spreadsheet would run as a formula (OWASP's CSV-injection rule)."""

from __future__ import annotations

import csv
import io
import json

import httpx
import pytest
from fastapi import FastAPI

from app.services.export import spreadsheet_safe
from tests.api.conftest import Upload, set_status

API = "/api/v1/tasks"
PLANTED = [
    "=HYPERLINK(A1&B1).txt",  # no "/" or '"': those never reach a stored file name
    "+1+cmd.txt",
    "-2+3.txt",
    "@SUM(A1A9).txt",
]


async def test_formula_file_names_are_quoted_in_csv_and_kept_in_json(
    app: FastAPI, upload: Upload, client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    ids = []
    for name in [*PLANTED, "plain.txt"]:
        response = await upload(name=name)
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    await set_status(app, ids[0], "failed", error_message="=1+1 in the processor", stage="\tx")

    as_csv = await client.get(f"{API}/export", params={"format": "csv"}, headers=headers)
    assert as_csv.status_code == 200
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(as_csv.text))}
    for task_id, name in zip(ids, PLANTED, strict=False):
        assert rows[task_id]["file_name"] == "'" + name
    assert rows[ids[-1]]["file_name"] == "plain.txt"
    assert rows[ids[0]]["error_message"] == "'=1+1 in the processor"
    assert rows[ids[0]]["stage"] == "'\tx"
    # no cell of the whole file starts a formula
    for row in rows.values():
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row.values())
    # numbers and timestamps are unchanged
    assert rows[ids[1]]["priority"] == "5"
    assert rows[ids[1]]["uploaded_at"][:2] == "20"

    as_json = await client.get(f"{API}/export", params={"format": "json"}, headers=headers)
    names = {t["file_name"] for t in json.loads(as_json.content)}
    assert set(PLANTED) <= names  # JSON is not a spreadsheet: the data stays as it is


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+33 1 23", "'+33 1 23"),
        ("-x", "'-x"),
        ("@cmd", "'@cmd"),
        ("\tfoo", "'\tfoo"),
        ("\rfoo", "'\rfoo"),
        ("\nfoo", "'\nfoo"),
        ("a=b", "a=b"),
        ("", ""),
        (None, None),
        (-5, -5),
        (3.5, 3.5),
    ],
)
def test_spreadsheet_safe(value: object, written: object) -> None:
    assert spreadsheet_safe(value) == written
