"""Uploads are streamed: neither an accepted file nor an oversized one is held in memory."""

from __future__ import annotations

import tracemalloc
import uuid
from typing import Any

import httpx
import pytest

from tests.factories import TEXT_CHUNK, multipart_body

MIB = 1024 * 1024


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"max_file_size": 4 * MIB}


async def peak_while(send: Any) -> tuple[httpx.Response, int]:
    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        response = await send()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return response, peak - baseline


@pytest.mark.parametrize("size", [4 * MIB - 4096, 40 * MIB])
async def test_upload_memory_stays_flat(
    client: httpx.AsyncClient, headers: dict[str, str], size: int
) -> None:
    boundary = uuid.uuid4().hex
    # chunked (no Content-Length): the size is only found out while streaming

    async def send() -> httpx.Response:
        return await client.post(
            "/api/v1/tasks/upload",
            content=multipart_body(size, boundary),
            headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        )

    await client.post(  # warm up: first-use imports and caches are not the upload's memory
        "/api/v1/tasks/upload",
        files={"file": ("warm.txt", TEXT_CHUNK, "text/plain")},
        data={"processor": "noop"},
        headers=headers,
    )
    response, peak = await peak_while(send)
    assert response.status_code == (202 if size < 4 * MIB else 413), response.text
    # a generous bound: the file is 4 MiB or 40 MiB, the growth stays a few MiB
    assert peak < 3 * MIB, f"peak grew by {peak / MIB:.1f} MiB"


async def test_fifty_thousand_fields_keep_memory_flat(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    """The reported body (chunked, no Content-Length): refused at MAX_FORM_FIELDS, 200 MB
    of fields never held."""
    boundary = uuid.uuid4().hex

    async def body() -> Any:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"'
        yield f"{head}\r\nContent-Type: text/plain\r\n\r\n".encode() + TEXT_CHUNK
        for i in range(50_000):
            part = f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\n'
            yield part.encode() + b"v" * 4000
        yield f"\r\n--{boundary}--\r\n".encode()

    async def send() -> httpx.Response:
        return await client.post(
            "/api/v1/tasks/upload",
            content=body(),
            headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        )

    response, peak = await peak_while(send)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "too_many_fields"
    assert peak < 3 * MIB, f"peak grew by {peak / MIB:.1f} MiB"


async def test_a_hundred_megabyte_json_body_keeps_memory_flat(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    async def body() -> Any:
        yield b'{"name": "big", "description": "'
        for _ in range(100 * 16):
            yield b"d" * (64 * 1024)
        yield b'"}'

    async def send() -> httpx.Response:
        return await client.post(
            "/api/v1/projects",
            content=body(),
            headers={**headers, "Content-Type": "application/json"},
        )

    response, peak = await peak_while(send)
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "request_too_large"
    assert peak < 3 * MIB, f"peak grew by {peak / MIB:.1f} MiB"
