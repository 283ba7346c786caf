"""Projects and batches."""

from __future__ import annotations

import io
import zipfile

import httpx
from fastapi import FastAPI

from app.config import Settings
from tests.api.conftest import Upload, files_on_disk, finish_task


async def test_project_lifecycle(
    client: httpx.AsyncClient, headers: dict[str, str], upload: Upload, settings: Settings
) -> None:
    created = await client.post(
        "/api/v1/projects", json={"name": "Trilogy", "description": "Three books"}, headers=headers
    )
    assert created.status_code == 201
    project = created.json()
    assert (project["name"], project["description"], project["task_count"]) == (
        "Trilogy", "Three books", 0,
    )  # fmt: skip
    duplicate = await client.post("/api/v1/projects", json={"name": "Trilogy"}, headers=headers)
    assert (duplicate.status_code, duplicate.json()["code"]) == (409, "project_exists")

    assert (await upload(data={"project_id": project["id"]})).status_code == 202
    listed = (await client.get("/api/v1/projects", headers=headers)).json()
    assert (listed["total"], listed["items"][0]["task_count"]) == (1, 1)
    tasks = await client.get(
        "/api/v1/tasks/", params={"project_id": project["id"]}, headers=headers
    )
    assert tasks.json()["total"] == 1

    renamed = await client.patch(
        f"/api/v1/projects/{project['id']}", json={"name": "Saga"}, headers=headers
    )
    assert renamed.json()["name"] == "Saga"
    refused = await client.delete(f"/api/v1/projects/{project['id']}", headers=headers)
    assert (refused.status_code, refused.json()["code"]) == (409, "project_not_empty")
    deleted = await client.delete(
        f"/api/v1/projects/{project['id']}", params={"cascade": "true"}, headers=headers
    )
    assert deleted.status_code == 204
    assert (
        await client.get(f"/api/v1/projects/{project['id']}", headers=headers)
    ).status_code == 404
    assert (await client.get("/api/v1/tasks/", headers=headers)).json()["total"] == 0
    assert files_on_disk(settings.upload_dir) == []


async def test_project_validation(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    for body in ({"name": ""}, {}, {"name": 5}, {"name": "x", "extra": 1}):
        response = await client.post("/api/v1/projects", json=body, headers=headers)
        assert response.status_code == 422
    missing = await client.patch("/api/v1/projects/nope", json={"name": "x"}, headers=headers)
    assert (missing.status_code, missing.json()["code"]) == (404, "project_not_found")


async def test_batch_upload_progress_and_archive(
    client: httpx.AsyncClient, headers: dict[str, str], app: FastAPI, settings: Settings
) -> None:
    files = [("files", (f"part-{i}.txt", f"Part {i}.\n".encode(), "text/plain")) for i in range(3)]
    response = await client.post("/api/v1/tasks/batch", files=files, headers=headers)
    assert response.status_code == 202
    body = response.json()
    assert [t["file_name"] for t in body["tasks"]] == ["part-0.txt", "part-1.txt", "part-2.txt"]
    assert {t["batch_id"] for t in body["tasks"]} == {body["batch_id"]}
    await finish_task(app, settings, body["tasks"][0]["id"])
    batch = (await client.get(f"/api/v1/batches/{body['batch_id']}", headers=headers)).json()
    assert batch["total"] == 3
    assert batch["by_status"]["completed"] == 1
    assert batch["by_status"]["pending"] == 2
    assert batch["progress"] == round(100 / 3, 2)
    archive = await client.get(f"/api/v1/batches/{body['batch_id']}/archive", headers=headers)
    assert archive.status_code == 200
    assert archive.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
    prefix = f"part-0-{body['tasks'][0]['id'][:8]}"
    assert names == [f"{prefix}/report.json", f"{prefix}/summary.md"]


async def test_batch_is_all_or_nothing(
    client: httpx.AsyncClient, headers: dict[str, str], settings: Settings
) -> None:
    files = [
        ("files", ("good.txt", b"fine text\n", "text/plain")),
        ("files", ("bad.exe", b"MZ\x00\x00", "application/octet-stream")),
    ]
    response = await client.post("/api/v1/tasks/batch", files=files, headers=headers)
    assert response.status_code == 415
    assert files_on_disk(settings.upload_dir) == []
    assert (await client.get("/api/v1/tasks/", headers=headers)).json()["total"] == 0


async def test_too_many_files_is_422(
    client: httpx.AsyncClient, headers: dict[str, str], settings: Settings
) -> None:
    settings.max_batch_files = 2
    files = [("files", (f"{i}.txt", b"text\n", "text/plain")) for i in range(3)]
    response = await client.post("/api/v1/tasks/batch", files=files, headers=headers)
    assert (response.status_code, response.json()["code"]) == (422, "too_many_files")
    assert files_on_disk(settings.upload_dir) == []


async def test_unknown_batch_is_404(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    for suffix in ("", "/archive"):
        response = await client.get(f"/api/v1/batches/nope{suffix}", headers=headers)
        assert (response.status_code, response.json()["code"]) == (404, "batch_not_found")
