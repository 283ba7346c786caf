"""Listing tasks: pagination, filters and sorts agree with a Python model of the data.

Hypothesis draws a query (status, project, search text, sort, page, page size);
the API's answer must equal the same query run over a list of dicts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert

from app.config import Settings
from app.models import Project, Task, TaskStatus
from app.models.base import new_id
from tests.factories import app_sessions, bearer, make_user

STATUSES = [s.value for s in TaskStatus]
SORTS = ["uploaded_at", "-uploaded_at", "priority", "-priority", "file_name", "-file_name"]
NAMES = ["alpha", "beta", "gamma", "delta", "alphabet", "betamax", "omega", "gamma2"]
BASE = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"rate_limit": "100000/minute"}


@pytest.fixture
async def dataset(app: FastAPI, settings: Settings) -> dict[str, Any]:
    """40 tasks of one user (plus 5 of another) with repeating names, times and priorities."""
    sessions = app_sessions(app)
    owner = await make_user(sessions)
    stranger = await make_user(sessions)
    projects = [new_id(), new_id()]
    rows = []
    for i in range(45):
        rows.append(
            {
                "id": new_id(),
                "owner_id": owner.id if i < 40 else stranger.id,
                "project_id": projects[i % 3] if i % 3 < 2 else None,
                "file_name": f"{NAMES[i % len(NAMES)]}{i % 5}.txt",
                "file_size": 10,
                "file_type": "text/plain",
                "checksum": "sha256:0",
                "status": STATUSES[i % len(STATUSES)],
                "progress": 0,
                "stage": "queued",
                "priority": (i * 7) % 11,
                "processor": "noop",
                "retry_count": 0,
                "max_retries": 3,
                "attempt": 0,
                "event_seq": 0,
                # every fourth pair shares an upload time: ties break by id
                "uploaded_at": BASE + timedelta(minutes=i - (i % 2 if i % 4 == 0 else 0)),
                "updated_at": BASE,
            }
        )
    async with sessions() as session:
        for index, project_id in enumerate(projects):
            session.add(Project(id=project_id, owner_id=owner.id, name=f"p{index}"))
        await session.flush()
        await session.execute(insert(Task), rows)
        await session.commit()
    return {
        "headers": bearer(settings, owner),
        "rows": [r for r in rows if r["owner_id"] == owner.id],
        "projects": projects,
    }


def model(rows: list[dict[str, Any]], query: dict[str, Any]) -> tuple[list[str], int]:
    """The ids of the requested page and the total, computed in Python."""
    chosen = [
        r
        for r in rows
        if (query.get("status") is None or r["status"] == query["status"])
        and (query.get("project_id") is None or r["project_id"] == query["project_id"])
        and (not query.get("q") or query["q"].lower() in r["file_name"].lower())
    ]
    sort = query["sort"]
    descending = sort.startswith("-")
    field = sort.lstrip("-")
    if field == "priority":
        # priority in the requested direction; within it, newest first (then id)
        chosen.sort(key=lambda r: (r["uploaded_at"], r["id"]), reverse=True)
        chosen.sort(key=lambda r: r["priority"], reverse=descending)
    else:
        chosen.sort(key=lambda r: (r[field], r["id"]), reverse=descending)
    start = (query["page"] - 1) * query["page_size"]
    return [r["id"] for r in chosen[start : start + query["page_size"]]], len(chosen)


queries = st.fixed_dictionaries(
    {
        "sort": st.sampled_from(SORTS),
        "page": st.integers(min_value=1, max_value=6),
        "page_size": st.integers(min_value=1, max_value=25),
    },
    optional={
        "status": st.sampled_from(STATUSES),
        "project": st.integers(min_value=0, max_value=1),
        "q": st.sampled_from(["alpha", "ALPHA", "beta", "a2", "mega", ".txt", "zzz", "3"]),
    },
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(query=queries)
async def test_listing_matches_the_model(
    client: httpx.AsyncClient, dataset: dict[str, Any], query: dict[str, Any]
) -> None:
    query = dict(query)
    if "project" in query:
        query["project_id"] = dataset["projects"][query.pop("project")]
    response = await client.get("/api/v1/tasks/", params=query, headers=dataset["headers"])
    assert response.status_code == 200, response.text
    body = response.json()
    expected_ids, expected_total = model(dataset["rows"], query)
    assert body["total"] == expected_total
    assert [item["id"] for item in body["items"]] == expected_ids
    assert (body["page"], body["page_size"]) == (query["page"], query["page_size"])


@pytest.mark.parametrize(
    "params",
    [{"sort": "size"}, {"page": 0}, {"page_size": 101}, {"status": "done"}, {"page": "x"}],
)
async def test_bad_listing_parameters_are_422(
    client: httpx.AsyncClient, dataset: dict[str, Any], params: dict[str, Any]
) -> None:
    response = await client.get("/api/v1/tasks/", params=params, headers=dataset["headers"])
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
