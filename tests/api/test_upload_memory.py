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
