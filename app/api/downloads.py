"""Conditional and partial downloads, as RFC 9110 says.

- ``If-None-Match``: ``*`` or any listed entity tag matching the ETag by weak
  comparison (``W/"x"`` matches ``"x"``) answers 304 (section 13.1.2).
- ``Range``: a header that is not a valid ``bytes`` range set (``bytes=5-1``,
  ``bytes=abc``, ``items=0-5``) is ignored and the whole file is sent (200,
  section 14.2); a valid one none of whose ranges can be satisfied is 416
  problem+json with ``Content-Range: bytes */size``; otherwise 206 with the
  satisfiable ranges, overlapping ones merged. ``If-Range`` that does not
  match (strong ETag comparison, or the exact Last-Modified date) means the
  whole file (section 13.1.5).

Starlette's ``FileResponse`` streams the parts; this module decides what it is
asked for, so it never answers a malformed range with its text/plain 400. A
file in the bucket (``STORAGE_BACKEND=s3``) is streamed through the API by
:class:`ObjectDownloadResponse`, the same response reading an object instead
of a file, so both backends answer the same headers, ranges, 304 and 416.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from email.utils import formatdate
from typing import Any

import anyio
from starlette.datastructures import Headers
from starlette.responses import FileResponse
from starlette.types import Receive, Scope, Send

from app.api.problems import problem_response
from app.config import Settings
from app.errors import RangeNotSatisfiable
from app.services import storage

_ENTITY_TAG = re.compile(r'\s*(?:W/)?("[\x21\x23-\x7e\x80-\xff]*")\s*(?:,|$)')
_RANGE_SPEC = re.compile(r"([0-9]*)-([0-9]*)")
_HUGE = 10**18  # past any file; longer digit strings are not converted (int() limits them)


def not_modified(if_none_match: str | None, etag: str) -> bool:
    """True when ``If-None-Match`` matches ``etag`` (``*``, or weak comparison)."""
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return True
    opaque = etag.removeprefix("W/")
    position, text = 0, if_none_match.strip()
    while position < len(text):
        found = _ENTITY_TAG.match(text, position)
        if found is None:
            return False  # not a list of entity tags: the condition cannot match
        if found.group(1) == opaque:
            return True
        position = found.end()
    return False


def _position(digits: str) -> int:
    return int(digits) if len(digits) <= 18 else _HUGE


def byte_ranges(header: str, size: int) -> list[tuple[int, int]] | None:
    """The satisfiable ranges of a ``Range`` header as ``(start, end)`` (end exclusive),
    sorted and merged; ``[]`` when none is satisfiable; None when the header must be
    ignored (another unit, or not valid syntax)."""
    unit, equals, range_set = header.partition("=")
    if not equals or unit.strip().lower() != "bytes":
        return None
    wanted: list[tuple[int, int]] = []
    specs = [spec.strip() for spec in range_set.split(",")]
    if not any(specs):
        return None
    for spec in specs:
        if not spec:
            continue  # the list rule allows empty elements
        match = _RANGE_SPEC.fullmatch(spec)
        if match is None:
            return None
        first, last = match.groups()
        if first:
            start = _position(first)
            end = _position(last) + 1 if last else _HUGE
            if last and end <= start:
                return None  # last-pos before first-pos: invalid, so the header is ignored
            if start < size:
                wanted.append((start, min(end, size)))
        elif last:
            suffix = _position(last)
            if suffix > 0 and size > 0:
                wanted.append((max(size - suffix, 0), size))
        else:
            return None  # "-" alone
    wanted.sort()
    merged: list[tuple[int, int]] = []
    for start, end in wanted:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _with_range(scope: Scope, value: str | None) -> Scope:
    """A copy of ``scope`` whose ``Range`` header is ``value`` (removed when None)."""
    headers = [(k, v) for k, v in scope["headers"] if k != b"range"]
    if value is not None:
        headers.append((b"range", value.encode("latin-1")))
    return {**scope, "headers": headers}


class DownloadResponse(FileResponse):
    """A ``FileResponse`` whose ``Range`` handling follows RFC 9110 (module docstring)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.status_code == 200:
            request_headers = Headers(scope=scope)
            header = request_headers.get("range")
            if header is not None:
                if self.stat_result is None:
                    self.stat_result = await anyio.Path(self.path).stat()
                    self.set_stat_headers(self.stat_result)
                size = self.stat_result.st_size
                ranges = (
                    byte_ranges(header, size)
                    if self._if_range_holds(request_headers.get("if-range"))
                    else None
                )
                if ranges == []:
                    error = RangeNotSatisfiable(
                        f"No range of {header[:100]!r} lies within the file's {size} bytes"
                    )
                    response = problem_response(
                        error.to_problem(scope.get("path")),
                        error.status,
                        {"Content-Range": f"bytes */{size}", "ETag": self.headers["etag"]},
                    )
                    await response(scope, receive, send)
                    return
                normalised = (
                    None
                    if ranges is None
                    else "bytes=" + ",".join(f"{start}-{end - 1}" for start, end in ranges)
                )
                scope = _with_range(scope, normalised)
        await super().__call__(scope, receive, send)

    def _if_range_holds(self, if_range: str | None) -> bool:
        """RFC 9110 13.1.5: a strong ETag match or the exact Last-Modified date."""
        if if_range is None:
            return True
        if_range = if_range.strip()
        if if_range.startswith(('"', "W/")):
            return if_range == self.headers.get("etag") and not if_range.startswith("W/")
        if self.stat_result is None:
            return False
        return if_range == formatdate(self.stat_result.st_mtime, usegmt=True)


class ObjectDownloadResponse(DownloadResponse):
    """:class:`DownloadResponse` for an object of the bucket: its size and date come from
    a HEAD made before the response starts (so a missing object is a 404 and an
    unreachable bucket a 503, not a broken stream), and its bytes from ranged GETs
    streamed as they are sent."""

    def __init__(
        self,
        settings: Settings,
        stored: storage.Stored,
        facts: storage.ObjectFacts,
        *,
        media_type: str,
        filename: str,
        headers: Mapping[str, str],
    ) -> None:
        self._settings, self._stored = settings, stored
        stat_result = os.stat_result(
            (stat.S_IFREG | 0o644, 0, 0, 1, 0, 0, facts.size, facts.modified,
             facts.modified, facts.modified)
        )  # fmt: skip
        super().__init__(
            stored.key, media_type=media_type, filename=filename, headers=headers,
            stat_result=stat_result,
        )  # fmt: skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        extensions = {
            k: v for k, v in scope.get("extensions", {}).items() if k != "http.response.pathsend"
        }
        await super().__call__({**scope, "extensions": extensions}, receive, send)

    @asynccontextmanager
    async def _open_file(self) -> AsyncIterator[Any]:
        assert self.stat_result is not None
        yield storage.ObjectReader(self._settings, self._stored, self.stat_result.st_size)
