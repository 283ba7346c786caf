"""The ceiling for the HTTP upload figure: a bare FastAPI endpoint that streams a file to disk.

    .venv/bin/python -m uvicorn bench.bare_upload:app --port 8001   # BARE_UPLOAD_DIR=/tmp/x

``POST /upload`` parses the multipart body as it arrives with the same
streaming parser as the service (python-multipart's ``MultipartParser``) and
appends the ``file`` part's bytes to a new file under ``BARE_UPLOAD_DIR``
through a worker thread, then answers 202 with the stored name and size. No
auth, no validation, no hashing, no database: what any upload costs on the
same server with the same uvicorn settings.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from python_multipart.multipart import MultipartParser, parse_options_header

UPLOAD_DIR = Path(os.environ.get("BARE_UPLOAD_DIR") or tempfile.mkdtemp(prefix="bare-upload-"))
UPLOAD_DIR.mkdir(parents=True, exist_ok=True)

app = FastAPI()


def _write(path: Path, blocks: list[bytes]) -> int:
    with path.open("ab") as out:
        for block in blocks:
            out.write(block)
    return sum(len(b) for b in blocks)


@app.post("/upload", status_code=202)
async def upload(request: Request) -> JSONResponse:
    _, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary", b"")
    target = UPLOAD_DIR / f"{uuid.uuid4().hex}.bin"
    pending: list[bytes] = []

    def on_part_data(data: bytes, start: int, end: int) -> None:
        pending.append(data[start:end])

    parser = MultipartParser(boundary, {"on_part_data": on_part_data})
    size = 0
    async for chunk in request.stream():
        parser.write(chunk)
        if pending:
            blocks, pending[:] = list(pending), []
            size += await anyio.to_thread.run_sync(_write, target, blocks)
    parser.finalize()
    if pending:
        size += await anyio.to_thread.run_sync(_write, target, list(pending))
    return JSONResponse({"name": target.name, "size": size}, status_code=202)
