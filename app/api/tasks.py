"""Task routes: uploads, list, statistics, export, one task, its logs, result and files."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse

from app.api.deps import (
    CurrentUser,
    PageQuery,
    PageSizeQuery,
    SessionDep,
    SettingsDep,
)
from app.api.disposition import attachment
from app.api.downloads import DownloadResponse, ObjectDownloadResponse, not_modified
from app.api.responses import BODY_PROBLEMS, problems
from app.errors import NotFound
from app.models import FileStorage, LogLevel, Task, TaskStatus
from app.schemas.common import Page
from app.schemas.task import (
    BatchCreated,
    StatisticsRead,
    TaskFileRead,
    TaskLogRead,
    TaskRead,
    TaskResultRead,
    TaskSort,
    TaskUpdate,
)
from app.services import export as export_service
from app.services import stats as stats_service
from app.services import storage
from app.services import tasks as task_service

router = APIRouter(prefix="/tasks", tags=["tasks"], responses=problems(401, 422))

IdempotencyKey = Annotated[
    str | None,
    Header(
        max_length=255,
        description="Retrying an upload with the same key returns the first task (200)",
    ),
]


def _upload_body(field: str, many: bool) -> dict[str, Any]:
    file_schema: dict[str, Any] = {"type": "string", "format": "binary"}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": [field],
                        "properties": {
                            field: {"type": "array", "items": file_schema} if many else file_schema,
                            "project_id": {"type": "string"},
                            "priority": {"type": "integer", "minimum": 0, "maximum": 10},
                            "processor": {"type": "string", "default": "analyze"},
                            "callback_url": {
                                "type": "string",
                                "format": "uri",
                                "maxLength": 2048,
                                "description": "Where the final events are POSTed, signed "
                                "with the account's callback secret (see Webhooks)",
                            },
                        },
                    }
                }
            },
        }
    }


async def _stream(request: Request) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        yield chunk


@router.post(
    "/upload",
    status_code=202,
    response_model=TaskRead,
    responses={
        200: {"model": TaskRead, "description": "A retried upload (same Idempotency-Key)"},
        **problems(404, 413, 415),
        **BODY_PROBLEMS,
    },
    openapi_extra=_upload_body("file", many=False),
)
async def upload_task(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Upload one manuscript (multipart field `file`); it is queued at once."""
    tasks, _, created = await task_service.upload(
        session,
        settings,
        user,
        _stream(request),
        content_type=request.headers.get("content-type"),
        idempotency_key=idempotency_key,
        batch=False,
    )
    task = tasks[0]
    return JSONResponse(
        TaskRead.model_validate(task).model_dump(mode="json"),
        status_code=202 if created else 200,
        headers={"Location": f"/api/v1/tasks/{task.id}"},
    )


@router.post(
    "/batch",
    status_code=202,
    response_model=BatchCreated,
    responses={**problems(404, 413, 415), **BODY_PROBLEMS},
    openapi_extra=_upload_body("files", many=True),
)
async def upload_batch(
    request: Request, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> JSONResponse:
    """Upload several manuscripts (multipart field `files`, up to MAX_BATCH_FILES): all or none."""
    tasks, batch_id, _ = await task_service.upload(
        session,
        settings,
        user,
        _stream(request),
        content_type=request.headers.get("content-type"),
        idempotency_key=None,
        batch=True,
    )
    body = BatchCreated(batch_id=batch_id or "", tasks=[TaskRead.model_validate(t) for t in tasks])
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=202,
        headers={"Location": f"/api/v1/batches/{batch_id}"},
    )


def _filters(
    status: TaskStatus | None,
    project_id: str | None,
    batch_id: str | None,
    q: str | None,
    sort: str,
) -> task_service.TaskFilters:
    return task_service.TaskFilters(
        status=status, project_id=project_id, batch_id=batch_id, q=q, sort=sort
    )


@router.get("/", response_model=Page[TaskRead])
async def list_tasks(
    session: SessionDep,
    user: CurrentUser,
    page: PageQuery = 1,
    page_size: PageSizeQuery = 20,
    status: TaskStatus | None = None,
    project_id: str | None = None,
    batch_id: str | None = None,
    q: Annotated[str | None, Query(max_length=255)] = None,
    sort: TaskSort = "-uploaded_at",
) -> Page[TaskRead]:
    """The caller's tasks, newest first by default."""
    items, total = await task_service.list_tasks(
        session,
        user,
        _filters(status, project_id, batch_id, q, sort),
        offset=(page - 1) * page_size,
        limit=page_size,
    )
    return Page[TaskRead].model_validate(
        {"items": items, "total": total, "page": page, "page_size": page_size}
    )


@router.get("/statistics", response_model=StatisticsRead)
async def statistics(
    session: SessionDep, settings: SettingsDep, user: CurrentUser
) -> StatisticsRead:
    """Counts, success rate and timings of the caller's tasks (every task for admins)."""
    return StatisticsRead.model_validate(await stats_service.statistics(session, settings, user))


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}, "application/json": {}}}},
)
async def export_tasks(
    session: SessionDep,
    user: CurrentUser,
    format: Literal["csv", "json"] = "json",
    status: TaskStatus | None = None,
    project_id: str | None = None,
    batch_id: str | None = None,
    q: Annotated[str | None, Query(max_length=255)] = None,
    sort: TaskSort = "-uploaded_at",
) -> StreamingResponse:
    """Every matching task as a CSV or JSON download, streamed."""
    filters = _filters(status, project_id, batch_id, q, sort)
    if format == "csv":
        body, media_type = export_service.export_csv(session, user, filters), "text/csv"
    else:
        body, media_type = export_service.export_json(session, user, filters), "application/json"
    return StreamingResponse(
        body,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="tasks.{format}"'},
    )


@router.get("/{task_id}", response_model=TaskRead, responses=problems(404))
async def get_task(task_id: str, session: SessionDep, user: CurrentUser) -> Task:
    return await task_service.get_task(session, user, task_id)


@router.patch(
    "/{task_id}", response_model=TaskRead, responses={**problems(404, 409), **BODY_PROBLEMS}
)
async def update_task(
    task_id: str, body: TaskUpdate, session: SessionDep, user: CurrentUser
) -> Task:
    """Cancel (`status: cancelled`), retry (`status: pending`), reprioritise or move a task."""
    return await task_service.update_task(
        session, user, task_id, body.model_dump(exclude_unset=True)
    )


@router.delete("/{task_id}", status_code=204, responses=problems(404))
async def delete_task(
    task_id: str, session: SessionDep, settings: SettingsDep, user: CurrentUser
) -> Response:
    """Cancel the task if running and delete it with its logs, results and files."""
    await task_service.delete_task(session, settings, user, task_id)
    return Response(status_code=204)


@router.get("/{task_id}/logs", response_model=Page[TaskLogRead], responses=problems(404))
async def task_logs(
    task_id: str,
    session: SessionDep,
    user: CurrentUser,
    page: PageQuery = 1,
    page_size: PageSizeQuery = 20,
    level: LogLevel | None = None,
) -> Page[TaskLogRead]:
    """The task's log entries, oldest first."""
    items, total = await task_service.list_logs(
        session, user, task_id, level=level, offset=(page - 1) * page_size, limit=page_size
    )
    return Page[TaskLogRead].model_validate(
        {"items": items, "total": total, "page": page, "page_size": page_size}
    )


def _file_read(row: FileStorage) -> TaskFileRead:
    return TaskFileRead(
        name=row.name,
        size=row.size,
        content_type=row.content_type,
        checksum=row.checksum,
        url=storage.file_url(row.task_id, row.name),
    )


@router.get("/{task_id}/result", response_model=TaskResultRead, responses=problems(404))
async def task_result(task_id: str, session: SessionDep, user: CurrentUser) -> Any:
    """The summary, scores and metrics of a completed task (404 `result_not_ready` before)."""
    result, files = await task_service.get_result(session, user, task_id)
    return TaskResultRead(
        summary=result.summary,
        quality_score=result.quality_score,
        confidence_score=result.confidence_score,
        metrics=result.metrics,
        files=[_file_read(row) for row in files],
    )


@router.get("/{task_id}/files", response_model=list[TaskFileRead], responses=problems(404))
async def task_files(task_id: str, session: SessionDep, user: CurrentUser) -> Any:
    """The result files and the original upload."""
    return [_file_read(row) for row in await task_service.list_files(session, user, task_id)]


@router.get(
    "/{task_id}/files/{name}",
    response_class=FileResponse,
    responses={
        200: {
            "description": "The file, as the media type it was stored with "
            "(report.json: application/json, summary.md: text/markdown, an upload: "
            "text/plain or text/markdown; other processors' files: their own)",
            "content": {"*/*": {}},
        },
        206: {
            "description": "Partial content (Range)",
            "content": {"*/*": {}},
        },
        304: {"description": "Not modified (If-None-Match)"},
        **problems(404, 416),
    },
)
async def download_file(
    task_id: str,
    name: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: CurrentUser,
) -> Response:
    """One file, with ETag, Content-Disposition and Range support."""
    download = await task_service.get_download(session, settings, user, task_id, name)
    etag = f'"{download.checksum.removeprefix("sha256:")}"'
    if not_modified(request.headers.get("if-none-match"), etag):
        return Response(
            status_code=304, headers={"ETag": etag, "Cache-Control": "private, max-age=0"}
        )
    headers = {
        "ETag": etag,
        "Cache-Control": "private, max-age=0",
        "Content-Disposition": attachment(download.filename),
    }
    if download.stored.backend == storage.S3:  # streamed from the bucket through the API
        try:
            facts = await storage.object_facts(settings, download.stored)
        except FileNotFoundError:
            raise NotFound(
                f"Task {task_id} has no file named {name!r}", code="file_not_found"
            ) from None
        return ObjectDownloadResponse(
            settings, download.stored, facts, media_type=download.content_type,
            filename=download.filename, headers=headers,
        )  # fmt: skip
    return DownloadResponse(  # Range as RFC 9110 says (app/api/downloads.py)
        storage.local_path(settings, download.stored),
        media_type=download.content_type,
        filename=download.filename,
        headers=headers,
    )
