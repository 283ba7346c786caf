"""HTTP calls to the service, and its errors turned into one line each.

Errors::

    CliError             anything that stops a command: ``str()`` is the line shown
      └── ApiError       the server answered an error (problem+json: detail, status, code)
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import Message
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from app.cli.credentials import Credentials

TIMEOUT = httpx.Timeout(30.0, connect=10.0)
UPLOAD_TIMEOUT = httpx.Timeout(300.0, connect=10.0)
TERMINAL = frozenset({"completed", "failed", "cancelled"})

OnBytes = Callable[[int], None]


class CliError(Exception):
    """What stops a command; ``str(error)`` is the one line shown to the user."""


class ApiError(CliError):
    def __init__(self, line: str, status: int, code: str | None) -> None:
        super().__init__(line)
        self.status = status
        self.code = code


def describe(response: httpx.Response) -> ApiError:
    """One line from a problem+json answer (or from whatever the server sent)."""
    code: str | None = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = body.get("code") if isinstance(body.get("code"), str) else None
        detail = str(body.get("detail") or body.get("title") or response.reason_phrase)
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            parts = []
            for error in errors[:3]:
                if isinstance(error, dict):
                    where = ".".join(str(p) for p in error.get("loc", []) if p != "body")
                    parts.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
            detail = f"{detail}: {'; '.join(parts)}" if parts else detail
    else:
        detail = response.reason_phrase or "error"
    if response.status_code == 401:
        detail += " (run `ntm login`)"
    suffix = f"{response.status_code} {code}" if code else str(response.status_code)
    detail = " ".join(detail.split())  # one line, whatever the server put in it
    return ApiError(f"{detail} ({suffix})", response.status_code, code)


class _CountingReader:
    """A file object that reports each chunk httpx reads from it (the upload's progress)."""

    def __init__(self, file: BinaryIO, on_bytes: OnBytes) -> None:
        self._file = file
        self._on_bytes = on_bytes

    def read(self, size: int = -1) -> bytes:
        chunk = self._file.read(size)
        self._on_bytes(len(chunk))
        return chunk

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def fileno(self) -> int:  # lets httpx send a Content-Length (the server refuses early)
        return self._file.fileno()


def content_type_of(path: Path) -> str:
    if path.suffix.lower() == ".md":
        return "text/markdown"
    return mimetypes.guess_type(path.name)[0] or "text/plain"


def saved_name(response: httpx.Response, fallback: str) -> str:
    """The file name of ``Content-Disposition`` (RFC 8187 form preferred), kept to a base name."""
    header = response.headers.get("content-disposition", "")
    message = Message()
    message["content-disposition"] = header
    name = message.get_filename() if header else None
    base = Path(str(name or fallback).replace("\\", "/")).name
    return base if base not in {"", ".", ".."} and not base.startswith(".") else fallback


class Api:
    """The service's ``/api/v1``, signed in with ``credentials``."""

    def __init__(self, credentials: Credentials, *, transport: httpx.BaseTransport | None = None):
        self.credentials = credentials
        self.base_url = credentials.url.rstrip("/")
        self.http = httpx.Client(
            base_url=self.base_url + "/api/v1",
            headers={"Authorization": f"Bearer {credentials.token}", "User-Agent": "ntm"},
            timeout=TIMEOUT,
            transport=transport,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise CliError(f"{self.base_url} did not answer in time") from None
        except httpx.TransportError as exc:
            raise CliError(f"cannot reach {self.base_url}: {exc}") from None
        if response.status_code >= 400:
            raise describe(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    # --- tasks -------------------------------------------------------------------------

    def task(self, task_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.json("GET", f"/tasks/{task_id}")
        return result

    def upload(
        self,
        path: Path,
        *,
        on_bytes: OnBytes,
        project_id: str | None,
        priority: int | None,
        processor: str | None,
    ) -> dict[str, Any]:
        """Stream one file to ``/tasks/upload``; ``on_bytes`` hears of every chunk sent."""
        data = {
            key: str(value)
            for key, value in (
                ("project_id", project_id),
                ("priority", priority),
                ("processor", processor),
            )
            if value is not None
        }
        try:
            with path.open("rb") as file:
                reader = _CountingReader(file, on_bytes)
                files = {"file": (path.name, reader, content_type_of(path))}
                task: dict[str, Any] = self.json(
                    "POST", "/tasks/upload", data=data, files=files, timeout=UPLOAD_TIMEOUT
                )
        except OSError as exc:
            raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
        return task

    def project_id(self, name_or_id: str) -> str:
        """The id of the project named ``name_or_id`` (or with that id)."""
        page = 1
        while True:
            listing = self.json("GET", "/projects", params={"page": page, "page_size": 100})
            for project in listing["items"]:
                if name_or_id in (project["id"], project["name"]):
                    return str(project["id"])
            if page * 100 >= listing["total"]:
                raise CliError(f"no project named {name_or_id!r}")
            page += 1

    @contextmanager
    def stream(self, url: str) -> Iterator[httpx.Response]:
        """A streamed GET of ``url`` (absolute path on the server), errors as ApiError."""
        try:
            with self.http.stream("GET", self.base_url + url) as response:
                if response.status_code >= 400:
                    response.read()
                    raise describe(response)
                yield response
        except httpx.TimeoutException:
            raise CliError(f"{self.base_url} did not answer in time") from None
        except httpx.TransportError as exc:
            raise CliError(f"cannot reach {self.base_url}: {exc}") from None

    def download(self, url: str, directory: Path, fallback: str, on_bytes: OnBytes) -> Path:
        """Save one file into ``directory`` under the name the server gives it."""
        with self.stream(url) as response:
            target = directory / saved_name(response, fallback)
            partial = target.with_name(f".{target.name}.part")
            try:
                with partial.open("wb") as out:
                    for chunk in response.iter_bytes(64 * 1024):
                        out.write(chunk)
                        on_bytes(len(chunk))
                os.replace(partial, target)
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
        return target
