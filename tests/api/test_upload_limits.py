"""Nothing left behind, everything bounded: every refused upload leaves UPLOAD_DIR/.tmp
empty, stale temp files are swept at start-up, and bodies are bounded in size (with or
without Content-Length) and in pace (a stalled body is refused with 408)."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import func, select
from starlette.types import Message

from app.api.body_limits import UPLOAD_ROUTES
from app.config import Settings
from app.main import create_app
from app.models import Task
from app.services import storage
from app.services.uploads import FLUSH_BYTES, STALE_TEMP_SECONDS, upload_body_limit
from tests.api.conftest import Upload, files_on_disk
from tests.factories import TEXT_CHUNK, app_sessions

KIB = 1024
MIB = 1024 * KIB
TEXT = b"Chapter 1\n\nIt was a bright cold day in April.\n"


def temp_area(settings: Settings) -> list[Path]:
    return sorted((settings.upload_dir / storage.TMP_DIR).glob("*"))


async def task_count(app: FastAPI) -> int:
    async with app_sessions(app)() as session:
        return int((await session.execute(select(func.count()).select_from(Task))).scalar_one())


def file_part(boundary: str, field: str = "file", name: str = "book.txt") -> bytes:
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()


def field_part(boundary: str, name: str, value: bytes) -> bytes:
    head = f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
    return head.encode() + value


def text_of(size: int) -> bytes:
    """``size`` bytes of text, several flushes' worth when large (so temp files exist)."""
    return (TEXT_CHUNK * (size // len(TEXT_CHUNK) + 1))[:size]


class Body:
    """A chunked request body made piece by piece; counts what the server pulled."""

    def __init__(self, pieces: Callable[[], Any]) -> None:
        self.pieces = pieces
        self.pulled = 0
        self.finished = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces():
            self.pulled += len(piece)
            yield piece
        self.finished = True


def multipart(boundary: str) -> dict[str, str]:
    return {"Content-Type": f"multipart/form-data; boundary={boundary}"}


# --- every refusal leaves the temp area empty ---------------------------------------------


async def test_unknown_project_after_a_large_body_leaves_nothing(
    upload: Upload, app: FastAPI, settings: Settings
) -> None:
    """The reported leak: the file was on disk when the 404 was found."""
    for _ in range(3):
        response = await upload(text_of(3 * FLUSH_BYTES), data={"project_id": "does-not-exist"})
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "project_not_found"
    assert temp_area(settings) == []
    assert files_on_disk(settings.upload_dir) == []
    assert await task_count(app) == 0


@pytest.mark.parametrize(
    ("content", "name", "data", "status", "code"),
    [
        (text_of(2 * FLUSH_BYTES), "book.png", {}, 415, "unsupported_file_type"),
        (b"\x00\x01\x02binary" * 60_000, "book.txt", {}, 415, "unsupported_file_type"),
        (b"", "book.txt", {}, 422, "empty_file"),
        (text_of(2 * FLUSH_BYTES), "book.txt", {"processor": "nope"}, 422, "validation_error"),
        (text_of(2 * FLUSH_BYTES), "book.txt", {"priority": "99"}, 422, "validation_error"),
    ],
    ids=["415-extension", "415-binary", "422-empty", "422-processor", "422-priority"],
)
async def test_refusals_after_the_body_leave_nothing(
    upload: Upload,
    app: FastAPI,
    settings: Settings,
    content: bytes,
    name: str,
    data: dict[str, str],
    status: int,
    code: str,
) -> None:
    response = await upload(content, name, data=data)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert temp_area(settings) == []
    assert files_on_disk(settings.upload_dir) == []
    assert await task_count(app) == 0


async def test_file_too_large_while_streaming_leaves_nothing(
    client: httpx.AsyncClient, headers: dict[str, str], settings: Settings
) -> None:
    settings.max_file_size = 3 * FLUSH_BYTES  # a few blocks are on disk when it is refused
    boundary = uuid.uuid4().hex
    body = Body(lambda: [file_part(boundary), *[TEXT_CHUNK] * 200])
    response = await client.post(
        "/api/v1/tasks/upload", content=body, headers={**headers, **multipart(boundary)}
    )
    assert response.status_code == 413
    assert response.json()["code"] == "file_too_large"
    assert not body.finished
    assert temp_area(settings) == []


async def test_batch_with_one_bad_file_leaves_nothing(
    client: httpx.AsyncClient, headers: dict[str, str], app: FastAPI, settings: Settings
) -> None:
    files = [
        ("files", ("a.txt", text_of(2 * FLUSH_BYTES), "text/plain")),
        ("files", ("b.md", text_of(FLUSH_BYTES + 7), "text/markdown")),
        ("files", ("c.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 50, "text/plain")),
    ]
    response = await client.post("/api/v1/tasks/batch", files=files, headers=headers)
    assert response.status_code == 415, response.text
    assert temp_area(settings) == []
    assert files_on_disk(settings.upload_dir) == []
    assert await task_count(app) == 0


async def test_idempotent_replay_leaves_only_the_first_file(
    upload: Upload, app: FastAPI, settings: Settings
) -> None:
    key = {"Idempotency-Key": "same-book"}
    first = await upload(text_of(2 * FLUSH_BYTES), extra_headers=key)
    second = await upload(text_of(2 * FLUSH_BYTES), extra_headers=key)
    reused = await upload(text_of(2 * FLUSH_BYTES + 1), extra_headers=key)  # other bytes
    assert (first.status_code, second.status_code, reused.status_code) == (202, 200, 422)
    assert temp_area(settings) == []
    stored = files_on_disk(settings.upload_dir)
    assert len(stored) == 1
    assert stored[0].parent.name == first.json()["id"]
    assert await task_count(app) == 1


async def test_client_leaving_mid_body_leaves_nothing(
    app: FastAPI, headers: dict[str, str], settings: Settings
) -> None:
    """Straight ASGI: half a body, then the server reports the client gone."""
    boundary = uuid.uuid4().hex
    pieces = [file_part(boundary), *[TEXT_CHUNK] * 12]  # ~700 KiB: blocks are on disk
    messages: list[Message] = [
        {"type": "http.request", "body": piece, "more_body": True} for piece in pieces
    ]
    messages.append({"type": "http.disconnect"})
    sent: list[dict[str, Any]] = []
    seen_on_disk: list[int] = []

    async def receive() -> Message:
        if len(messages) == 1:
            seen_on_disk.append(len(temp_area(settings)))
        return messages.pop(0) if len(messages) > 1 else messages[0]

    async def send(message: Message) -> None:
        sent.append(dict(message))

    raw_headers = [
        (b"authorization", headers["Authorization"].encode()),
        (b"content-type", f"multipart/form-data; boundary={boundary}".encode()),
        (b"transfer-encoding", b"chunked"),
    ]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/api/v1/tasks/upload", "raw_path": b"/api/v1/tasks/upload",
        "root_path": "", "query_string": b"", "headers": raw_headers,
        "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
    }  # fmt: skip
    await app(scope, receive, send)
    assert seen_on_disk == [1]  # the temp file existed when the client left
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 400
    body = json.loads(b"".join(m.get("body", b"") for m in sent if m["type"].endswith("body")))
    assert body["code"] == "client_disconnected"
    assert temp_area(settings) == []


# --- stale temp files are swept at start-up -------------------------------------------------


async def test_start_up_sweeps_stale_temp_files_and_keeps_fresh_ones(settings: Settings) -> None:
    tmp = settings.upload_dir / storage.TMP_DIR
    tmp.mkdir(parents=True)
    stale, fresh = tmp / "stale.part", tmp / "fresh.part"
    stale.write_bytes(b"left by a process that died mid-upload")
    fresh.write_bytes(b"another process is receiving this one")
    old = time.time() - STALE_TEMP_SECONDS - 60
    os.utime(stale, (old, old))
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=30, shutdown_timeout=60):
        assert temp_area(settings) == [fresh]


async def test_sweep_takes_only_files_older_than_asked(tmp_path: Path) -> None:
    assert await storage.sweep_temp(tmp_path, 60) == 0  # no .tmp yet
    tmp = tmp_path / storage.TMP_DIR
    tmp.mkdir()
    for age, name in ((10, "young.part"), (120, "old.part"), (7200, "older.part")):
        path = tmp / name
        path.write_bytes(b"x")
        os.utime(path, (time.time() - age, time.time() - age))
    assert await storage.sweep_temp(tmp_path, 60) == 2
    assert [p.name for p in tmp.iterdir()] == ["young.part"]


# --- non-file fields and the whole body are bounded while streaming -------------------------


async def test_fifty_thousand_fields_are_refused_at_the_limit(
    client: httpx.AsyncClient, headers: dict[str, str], settings: Settings
) -> None:
    """The reported body: a file, then 50,000 distinct 4,000-byte fields, chunked."""
    boundary = uuid.uuid4().hex

    def pieces() -> Any:
        yield file_part(boundary) + text_of(2 * FLUSH_BYTES)
        for i in range(50_000):
            yield field_part(boundary, f"field{i}", b"v" * 4000)
        yield f"\r\n--{boundary}--\r\n".encode()

    body = Body(pieces)
    response = await client.post(
        "/api/v1/tasks/upload", content=body, headers={**headers, **multipart(boundary)}
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "too_many_fields"
    assert problem["errors"][0]["type"] == "too_many_fields"
    assert str(settings.max_form_fields) in problem["detail"]
    assert not body.finished
    assert body.pulled < 2 * FLUSH_BYTES + (settings.max_form_fields + 5) * 4200
    assert temp_area(settings) == []


async def test_a_field_over_the_size_limit_is_refused(upload: Upload, settings: Settings) -> None:
    settings.max_form_field_size = 100
    response = await upload(data={"project_id": "p" * 101})
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "field_too_long"
    assert problem["errors"][0]["loc"] == ["body", "project_id"]
    ok = await upload(data={"processor": "analyze", "project_id": ""})
    assert ok.status_code == 202, ok.text
    assert temp_area(settings) == []


async def test_oversized_part_headers_are_refused(
    client: httpx.AsyncClient, headers: dict[str, str], settings: Settings
) -> None:
    boundary = uuid.uuid4().hex
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="x"\r\nX-Junk: '.encode()
    body = Body(lambda: [head, *[b"j" * 4096] * 1000])
    response = await client.post(
        "/api/v1/tasks/upload", content=body, headers={**headers, **multipart(boundary)}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_form"
    assert body.pulled < 64 * KIB


async def test_a_truncated_form_is_refused_not_stored(
    client: httpx.AsyncClient, headers: dict[str, str], app: FastAPI, settings: Settings
) -> None:
    """A body that ends without its closing boundary is not a complete file."""
    boundary = uuid.uuid4().hex
    body = Body(lambda: [file_part(boundary), text_of(FLUSH_BYTES + 10)])
    response = await client.post(
        "/api/v1/tasks/upload", content=body, headers={**headers, **multipart(boundary)}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_form"
    assert temp_area(settings) == []
    assert await task_count(app) == 0


async def test_a_chunked_upload_body_past_the_form_limit_is_refused_while_streaming(
    client: httpx.AsyncClient, headers: dict[str, str], settings: Settings
) -> None:
    """Junk after the closing boundary is no part of any file: only the body limit sees it."""
    settings.max_file_size = 4 * KIB
    boundary = uuid.uuid4().hex
    limit = upload_body_limit(settings, batch=False)
    body = Body(
        lambda: [
            file_part(boundary) + TEXT,
            f"\r\n--{boundary}--\r\n".encode(),
            *[b"epilogue " * 7000] * (limit // 63_000 + 100),
        ]
    )
    response = await client.post(
        "/api/v1/tasks/upload", content=body, headers={**headers, **multipart(boundary)}
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "request_too_large"
    assert str(limit) in problem["detail"]
    assert not body.finished
    assert body.pulled <= limit + 63_000
    assert temp_area(settings) == []


async def test_upload_content_length_over_the_form_limit_is_refused_unread(
    client: httpx.AsyncClient, headers: dict[str, str], settings: Settings
) -> None:
    limit = upload_body_limit(settings, batch=True)
    body = Body(lambda: [b"x" * 1024] * 10)
    response = await client.post(
        "/api/v1/tasks/batch",
        content=body,
        headers={
            **headers,
            **multipart("xyz"),
            "Content-Length": str(limit + 1),
        },
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["connection"] == "close"
    assert response.json()["code"] == "file_too_large"
    assert body.pulled == 0


async def test_the_upload_limits_name_the_real_upload_routes(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    for path in UPLOAD_ROUTES:
        assert "multipart/form-data" in paths[path]["post"]["requestBody"]["content"]


# --- JSON bodies ----------------------------------------------------------------------------


def json_pieces(total: int) -> Callable[[], Any]:
    def pieces() -> Any:
        yield b'{"name": "big", "description": "'
        for _ in range(total // (64 * KIB)):
            yield b"d" * (64 * KIB)
        yield b'"}'

    return pieces


async def test_oversized_chunked_json_is_refused_while_streaming(
    client: httpx.AsyncClient, headers: dict[str, str], settings: Settings
) -> None:
    body = Body(json_pieces(100 * MIB))
    response = await client.post(
        "/api/v1/projects",
        content=body,
        headers={**headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["connection"] == "close"
    problem = response.json()
    assert problem["code"] == "request_too_large"
    assert str(settings.max_json_body_size) in problem["detail"]
    assert body.pulled <= settings.max_json_body_size + 64 * KIB + 64


async def test_oversized_json_with_content_length_is_refused_unread(
    client: httpx.AsyncClient, headers: dict[str, str], settings: Settings
) -> None:
    settings.max_json_body_size = 64 * KIB
    body = Body(json_pieces(MIB))
    response = await client.post(
        "/api/v1/projects",
        content=body,
        headers={
            **headers,
            "Content-Type": "application/json",
            "Content-Length": str(MIB + 100),
        },
    )
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"
    assert body.pulled == 0


async def test_json_under_the_limit_is_accepted(
    client: httpx.AsyncClient, headers: dict[str, str], settings: Settings
) -> None:
    settings.max_json_body_size = 4 * KIB
    small = {"name": "fits", "description": "d" * 1000}
    response = await client.post("/api/v1/projects", json=small, headers=headers)
    assert response.status_code == 201, response.text
    assert "connection" not in response.headers


async def test_oversized_login_form_is_refused(client: httpx.AsyncClient) -> None:
    body = Body(lambda: [b"username=a%40b.c&password=", *[b"p" * (64 * KIB)] * 40])
    response = await client.post(
        "/api/v1/auth/login",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"
    assert not body.finished


async def test_credentials_are_checked_before_the_body_size(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/projects",
        content=b"{}",
        headers={"Content-Type": "application/json", "Content-Length": str(50 * MIB)},
    )
    assert response.status_code == 401


# --- a stalled body, against a real uvicorn ---------------------------------------------------


@pytest.fixture
async def server(app: FastAPI) -> AsyncIterator[tuple[str, int]]:
    """The app (lifespan already running) served by uvicorn on a free local port."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_config=None)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield "127.0.0.1", port
    server.should_exit = True
    await asyncio.wait_for(serving, timeout=30)


RawRequest = Callable[[bytes, list[bytes], float], Awaitable[tuple[bytes, bool]]]


@pytest.fixture
def raw_request(server: tuple[str, int]) -> RawRequest:
    async def send(head: bytes, pieces: list[bytes], pause: float) -> tuple[bytes, bool]:
        """Send ``head`` and ``pieces`` (``pause`` s apart), then nothing; return what
        came back and whether the server closed the connection."""
        reader, writer = await asyncio.open_connection(*server)
        try:
            writer.write(head)
            for piece in pieces:
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(pause)
            received = b""
            closed = False
            async with asyncio.timeout(20):
                while True:
                    data = await reader.read(65536)
                    if not data:
                        closed = True
                        break
                    received += data
        finally:
            writer.close()
        return received, closed

    return send


def request_head(path: str, headers: dict[str, str], content_type: str, length: int) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: testserver", f"Content-Type: {content_type}",
             f"Content-Length: {length}", *(f"{k}: {v}" for k, v in headers.items())]  # fmt: skip
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def parse_response(raw: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), {k.lower(): v for k, v in fields.items()}, json.loads(body)


async def test_a_stalled_upload_is_refused_with_408_and_its_temp_file_removed(
    raw_request: RawRequest, headers: dict[str, str], settings: Settings
) -> None:
    settings.body_timeout_seconds = 0.5
    boundary = uuid.uuid4().hex
    half = file_part(boundary) + text_of(3 * FLUSH_BYTES)  # blocks reach the disk first
    head = request_head(
        "/api/v1/tasks/upload", headers, f"multipart/form-data; boundary={boundary}", 4 * MIB
    )
    raw, closed = await raw_request(head, [half], 0)
    status, response_headers, problem = parse_response(raw)
    assert status == 408
    assert response_headers["content-type"] == "application/problem+json"
    assert response_headers["connection"] == "close"
    assert problem["code"] == "request_timeout"
    assert closed
    assert temp_area(settings) == []


async def test_a_stalled_json_body_is_refused_with_408(
    raw_request: RawRequest, headers: dict[str, str], settings: Settings
) -> None:
    settings.body_timeout_seconds = 0.5
    head = request_head("/api/v1/projects", headers, "application/json", 1000)
    raw, closed = await raw_request(head, [b'{"name": "half'], 0)
    status, _, problem = parse_response(raw)
    assert (status, problem["code"], closed) == (408, "request_timeout", True)


async def test_a_slow_but_steady_body_is_not_cut(
    raw_request: RawRequest, headers: dict[str, str], app: FastAPI, settings: Settings
) -> None:
    """The deadline is per read: a body that keeps arriving may take longer than it."""
    settings.body_timeout_seconds = 2.0
    boundary = uuid.uuid4().hex
    body = file_part(boundary) + TEXT + f"\r\n--{boundary}--\r\n".encode()
    pieces = [body[i : i + 16] for i in range(0, len(body), 16)]
    assert len(pieces) * 0.25 > settings.body_timeout_seconds
    head = request_head(
        "/api/v1/tasks/upload",
        {**headers, "Connection": "close"},
        f"multipart/form-data; boundary={boundary}",
        len(body),
    )
    raw, _ = await raw_request(head, pieces, 0.25)
    status, _, task = parse_response(raw)
    assert status == 202, task
    assert task["file_size"] == len(TEXT)
    assert temp_area(settings) == []
