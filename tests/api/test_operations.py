"""The operations API: processors, workers, statistics over time, bulk actions, users."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import delete, select

from app.config import Settings
from app.models import Role, Task, TaskQueue, TaskStatus, User, Worker
from app.models.base import utcnow
from tests.api.conftest import Upload
from tests.factories import app_sessions, bearer, make_user


async def admin_headers(app: FastAPI, settings: Settings) -> tuple[User, dict[str, str]]:
    admin = await make_user(app_sessions(app), role=Role.ADMIN)
    return admin, bearer(settings, admin)


async def add_task(app: FastAPI, owner: User, **values: Any) -> str:
    """A task row with the given status and timestamps (a queue row too while pending)."""
    queued_at = values.pop("queued_at", None)
    worker_id = values.pop("worker_id", None)
    async with app_sessions(app)() as session:
        task = Task(
            owner_id=owner.id,
            file_name=values.pop("file_name", "book.txt"),
            file_size=10,
            file_type="text/plain",
            checksum="sha256:00",
            **values,
        )
        session.add(task)
        await session.flush()
        if queued_at is not None or worker_id is not None:
            session.add(
                TaskQueue(task_id=task.id, enqueued_at=queued_at or utcnow(), worker_id=worker_id)
            )
        await session.commit()
        return task.id


async def fail(app: FastAPI, *task_ids: str) -> None:
    """Tasks that failed for good, as a worker leaves them (out of the queue)."""
    async with app_sessions(app)() as session:
        for task_id in task_ids:
            task = await session.get(Task, task_id)
            assert task is not None
            task.status, task.stage, task.error_message = TaskStatus.FAILED, "failed", "broken"
            task.completed_at = utcnow()
            await session.execute(delete(TaskQueue).where(TaskQueue.task_id == task_id))
        await session.commit()


async def statuses(app: FastAPI, *task_ids: str) -> list[str | None]:
    async with app_sessions(app)() as session:
        found = dict((await session.execute(select(Task.id, Task.status))).all())
    return [found.get(task_id) for task_id in task_ids]


# --- processors -------------------------------------------------------------------------


async def test_processors_are_listed_with_a_description_and_file_types(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.get("/api/v1/processors", headers=headers)
    assert response.status_code == 200
    by_name = {p["name"]: p for p in response.json()}
    assert by_name["analyze"] == {
        "name": "analyze",
        "description": "Chapters, counts, characters, keywords, a summary and a quality score: "
        "report.json and summary.md",
        "accepted_extensions": [".txt", ".md"],
    }
    assert by_name["noop"]["description"] == (
        "Completes at once and writes no files (benchmarks and smoke checks)"
    )
    assert (await client.get("/api/v1/processors")).status_code == 401


# --- workers ----------------------------------------------------------------------------


async def test_workers_show_their_heartbeat_and_running_tasks_to_admins_only(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, user: User, headers: dict[str, str]
) -> None:
    now = utcnow()
    async with app_sessions(app)() as session:
        session.add_all(
            [
                Worker(id="w-live", hostname="alpha", pid=101, concurrency=4, heartbeat_at=now),
                Worker(
                    id="w-stale",
                    hostname="beta",
                    pid=202,
                    concurrency=2,
                    heartbeat_at=now - timedelta(seconds=2 * settings.task_lease_seconds + 5),
                ),
            ]
        )
        await session.commit()
    running = await add_task(
        app,
        user,
        file_name="moby.txt",
        status=TaskStatus.PROCESSING,
        progress=40,
        stage="analysing",
        started_at=now,
        worker_id="w-live",
    )

    refused = await client.get("/api/v1/workers", headers=headers)
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")

    _, admin = await admin_headers(app, settings)
    workers = (await client.get("/api/v1/workers", headers=admin)).json()
    assert [(w["id"], w["hostname"], w["pid"], w["concurrency"], w["alive"]) for w in workers] == [
        ("w-live", "alpha", 101, 4, True),
        ("w-stale", "beta", 202, 2, False),
    ]
    assert workers[0]["running"] == [
        {
            "id": running,
            "file_name": "moby.txt",
            "owner_email": user.email,
            "processor": "analyze",
            "progress": 40,
            "stage": "analysing",
            "started_at": workers[0]["running"][0]["started_at"],
        }
    ]
    assert datetime.fromisoformat(workers[0]["running"][0]["started_at"]) == now
    assert workers[1]["running"] == []


# --- statistics over time ---------------------------------------------------------------


async def test_the_last_hour_minute_by_minute_for_a_user_and_for_an_admin(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, user: User, headers: dict[str, str]
) -> None:
    current = utcnow().replace(second=0, microsecond=0)

    def at(minutes_ago: int, second: int) -> datetime:
        return current - timedelta(minutes=minutes_ago, seconds=-second)

    for uploaded, done in ((5, 15), (0, 40), (1, 21)):  # 10 s, 40 s, 20 s
        await add_task(
            app,
            user,
            status=TaskStatus.COMPLETED,
            uploaded_at=at(10, uploaded),
            started_at=at(10, uploaded + 1),
            completed_at=at(10, done),
        )
    await add_task(
        app,
        user,
        status=TaskStatus.FAILED,
        uploaded_at=at(5, 0),
        started_at=at(5, 10),
        completed_at=at(5, 30),
    )
    await add_task(app, user, status=TaskStatus.PENDING, uploaded_at=at(3, 0), queued_at=at(3, 0))
    await add_task(  # waiting since before the window, started 20 minutes ago
        app,
        user,
        status=TaskStatus.PROCESSING,
        uploaded_at=current - timedelta(minutes=90),
        started_at=at(20, 0),
    )
    other = await make_user(app_sessions(app))
    await add_task(
        app,
        other,
        status=TaskStatus.COMPLETED,
        uploaded_at=at(10, 0),
        started_at=at(10, 1),
        completed_at=at(10, 100),
    )

    response = await client.get("/api/v1/tasks/statistics/timeseries", headers=headers)
    assert response.status_code == 200
    body = response.json()
    start = datetime.fromisoformat(body["start"])
    points = body["points"]
    assert (body["scope"], body["step_seconds"], len(points)) == ("own", 60, 60)

    def minute(moment: datetime) -> int:
        return int((moment - start).total_seconds() // 60)

    busy = minute(at(10, 0))
    assert points[busy] == {
        "at": points[busy]["at"],
        "queue_depth": 0,
        "completed": 3,
        "failed": 0,
        "p50_seconds": 20.0,
        "p95_seconds": 40.0,
    }
    assert datetime.fromisoformat(points[busy]["at"]) == start + timedelta(minutes=busy + 1)
    assert (points[minute(at(5, 0))]["failed"], points[minute(at(5, 0))]["completed"]) == (1, 0)
    depth = [p["queue_depth"] for p in points]
    started, queued = minute(at(20, 0)), minute(at(3, 0))
    assert depth == [1] * started + [0] * (queued - started) + [1] * (60 - queued)
    assert sum(p["completed"] for p in points) == 3
    assert (body["p50_seconds"], body["p95_seconds"]) == (20.0, 40.0)
    assert datetime.fromisoformat(points[-1]["at"]) == datetime.fromisoformat(body["end"])

    _, admin = await admin_headers(app, settings)
    everyone = (await client.get("/api/v1/tasks/statistics/timeseries", headers=admin)).json()
    assert everyone["scope"] == "all"
    assert [p["completed"] for p in everyone["points"][busy : busy + 3]] == [3, 1, 0]
    assert (everyone["p50_seconds"], everyone["p95_seconds"]) == (20.0, 100.0)

    short = await client.get(
        "/api/v1/tasks/statistics/timeseries", params={"minutes": 8}, headers=headers
    )
    recent = short.json()["points"]
    assert [p["completed"] for p in recent] == [0] * 8
    assert sum(p["failed"] for p in recent) == 1
    for bad in ("0", "1441", "x"):
        refused = await client.get(
            "/api/v1/tasks/statistics/timeseries", params={"minutes": bad}, headers=headers
        )
        assert refused.status_code == 422


# --- bulk actions -----------------------------------------------------------------------


async def test_bulk_retry_cancel_and_delete_skip_what_they_cannot_touch(
    app: FastAPI, client: httpx.AsyncClient, upload: Upload, headers: dict[str, str]
) -> None:
    ids = [(await upload(name=f"{n}.txt")).json()["id"] for n in ("a", "b", "c")]
    await fail(app, ids[0], ids[1])
    other = await make_user(app_sessions(app))
    foreign = await add_task(app, other, status=TaskStatus.FAILED)

    retried = await client.post(
        "/api/v1/tasks/bulk",
        json={"action": "retry", "task_ids": [ids[0], ids[1], ids[2], foreign, ids[0]]},
        headers=headers,
    )
    assert retried.status_code == 200
    body = retried.json()
    assert (body["action"], body["done"], body["remaining"]) == ("retry", ids[:2], 0)
    assert [(s["id"], s["code"]) for s in body["skipped"]] == [
        (ids[2], "invalid_transition"),
        (foreign, "task_not_found"),
    ]
    assert await statuses(app, *ids, foreign) == ["pending", "pending", "pending", "failed"]

    cancelled = await client.post(
        "/api/v1/tasks/bulk", json={"action": "cancel", "task_ids": ids}, headers=headers
    )
    assert (cancelled.json()["done"], cancelled.json()["skipped"]) == (ids, [])
    assert await statuses(app, *ids) == ["cancelled"] * 3

    deleted = await client.post(
        "/api/v1/tasks/bulk", json={"action": "delete", "task_ids": ids[1:]}, headers=headers
    )
    assert deleted.json()["done"] == ids[1:]
    assert await statuses(app, *ids) == ["cancelled", None, None]


async def test_bulk_retry_of_every_failed_task(
    app: FastAPI, client: httpx.AsyncClient, upload: Upload, headers: dict[str, str]
) -> None:
    ids = [(await upload(name=f"{n}.txt")).json()["id"] for n in range(4)]
    await fail(app, *ids[:3])
    response = await client.post(
        "/api/v1/tasks/bulk", json={"action": "retry", "status": "failed"}, headers=headers
    )
    assert (response.json()["done"], response.json()["remaining"]) == (ids[:3], 0)
    assert await statuses(app, *ids) == ["pending"] * 4
    listed = await client.get("/api/v1/tasks/", params={"status": "failed"}, headers=headers)
    assert listed.json()["total"] == 0


async def test_bulk_requests_are_validated(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    for body in (
        {"action": "retry"},
        {"action": "retry", "task_ids": ["a"], "status": "failed"},
        {"action": "retry", "task_ids": []},
        {"action": "retry", "task_ids": [str(n) for n in range(501)]},
        {"action": "archive", "task_ids": ["a"]},
        {"action": "retry", "status": "lost"},
    ):
        response = await client.post("/api/v1/tasks/bulk", json=body, headers=headers)
        assert (response.status_code, response.json()["code"]) == (422, "validation_error")


# --- users ------------------------------------------------------------------------------


async def test_admins_list_users_and_change_their_role(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, user: User, headers: dict[str, str]
) -> None:
    admin, admin_auth = await admin_headers(app, settings)
    listed = (await client.get("/api/v1/users", headers=admin_auth)).json()
    assert listed["total"] == 2
    assert {u["email"]: u["role"] for u in listed["items"]} == {
        user.email: "user",
        admin.email: "admin",
    }
    assert (await client.get("/api/v1/users", headers=headers)).status_code == 403
    refused = await client.patch(
        f"/api/v1/users/{admin.id}", json={"role": "user"}, headers=headers
    )
    assert refused.status_code == 403

    last = await client.patch(
        f"/api/v1/users/{admin.id}", json={"role": "user"}, headers=admin_auth
    )
    assert (last.status_code, last.json()["code"]) == (409, "last_admin")
    promoted = await client.patch(
        f"/api/v1/users/{user.id}", json={"role": "admin"}, headers=admin_auth
    )
    assert (promoted.status_code, promoted.json()["role"]) == (200, "admin")
    # the promoted user's next request is an admin's
    assert (await client.get("/api/v1/workers", headers=headers)).status_code == 200
    demoted = await client.patch(
        f"/api/v1/users/{admin.id}", json={"role": "user"}, headers=headers
    )
    assert demoted.json()["role"] == "user"

    missing = await client.patch("/api/v1/users/nope", json={"role": "user"}, headers=headers)
    assert (missing.status_code, missing.json()["code"]) == (404, "user_not_found")
    invalid = await client.patch(
        f"/api/v1/users/{user.id}", json={"role": "owner"}, headers=headers
    )
    assert invalid.status_code == 422
