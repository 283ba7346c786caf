"""Names of projects and API keys: stored trimmed; a name of only whitespace is 422."""

from __future__ import annotations

import httpx
import pytest

BLANK = ["   ", "\t \n", "\u3000", "\u00a0 \u2003"]


@pytest.mark.parametrize("name", BLANK)
async def test_a_blank_project_name_is_422(
    client: httpx.AsyncClient, headers: dict[str, str], name: str
) -> None:
    response = await client.post("/api/v1/projects", json={"name": name}, headers=headers)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["errors"][0]["loc"] == ["body", "name"]
    listed = await client.get("/api/v1/projects", headers=headers)
    assert listed.json()["total"] == 0


async def test_project_names_are_trimmed_and_unique_once_trimmed(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    created = await client.post(
        "/api/v1/projects", json={"name": "  Drafts\t", "description": "  kept as is "},
        headers=headers,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "Drafts"
    assert created.json()["description"] == "  kept as is "
    again = await client.post("/api/v1/projects", json={"name": "Drafts "}, headers=headers)
    assert (again.status_code, again.json()["code"]) == (409, "project_exists")
    project_id = created.json()["id"]
    for name in BLANK:
        renamed = await client.patch(
            f"/api/v1/projects/{project_id}", json={"name": name}, headers=headers
        )
        assert renamed.status_code == 422, name
    renamed = await client.patch(
        f"/api/v1/projects/{project_id}", json={"name": " Final "}, headers=headers
    )
    assert renamed.json()["name"] == "Final"


async def test_api_key_names_are_trimmed_and_never_blank(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    for name in BLANK:
        response = await client.post("/api/v1/auth/api-keys", json={"name": name}, headers=headers)
        assert response.status_code == 422, name
        assert response.json()["errors"][0]["loc"] == ["body", "name"]
    created = await client.post("/api/v1/auth/api-keys", json={"name": " ci "}, headers=headers)
    assert created.status_code == 201
    assert created.json()["name"] == "ci"
    listed = await client.get("/api/v1/auth/api-keys", headers=headers)
    assert [key["name"] for key in listed.json()] == ["ci"]
