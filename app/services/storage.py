"""Where uploads and result files are kept: ``UPLOAD_DIR`` or an S3 bucket.

Two backends, chosen by ``STORAGE_BACKEND`` for new files; every
``file_storage`` row records the backend, bucket and key of its file, so files
stored before a switch stay readable (``Stored``). Both use one layout, relative
to ``UPLOAD_DIR`` (local) or to ``S3_PREFIX`` in ``S3_BUCKET`` (s3)::

    .tmp/<uuid>.part                      an upload being received
    tasks/<task_id>/upload-<uuid><ext>    the stored upload (generated name)
    tasks/<task_id>/attempt-<n>.tmp/      result files of a running attempt (always local:
                                          the worker's scratch, with its copy of the upload)
    tasks/<task_id>/results/<name>        result files of the completed attempt

Every one of these paths, and the URL a stored file is downloaded from, is
spelled here and nowhere else. No path is ever built from a client-supplied
name. Every operation runs off the event loop: local files in worker threads,
the bucket through obstore, whose requests run on its own Rust runtime.

An upload to the bucket streams while it arrives: a file that ends within
``PART_SIZE`` is one PUT, a larger one a multipart upload fed as the body
arrives; a refusal aborts it (nothing is left, not even hidden parts). An
unreachable or refusing bucket raises :class:`ObjectStoreUnavailable`, an
``OSError`` like a refusing disk, so callers handle both alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import os
import re
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import anyio
import obstore
from obstore.exceptions import BaseError as ObstoreError
from obstore.store import S3Store

from app.log import get_logger
from app.models.base import random_hex

if TYPE_CHECKING:
    from app.config import Settings

log = get_logger(__name__)

LOCAL = "local"
S3 = "s3"
TMP_DIR = ".tmp"


def task_dir(upload_dir: Path, task_id: str) -> Path:
    return upload_dir / "tasks" / task_id


def tasks_root(upload_dir: Path) -> Path:
    """The directory holding every task's directory."""
    return upload_dir / "tasks"


ATTEMPT_DIR_NAME = re.compile(r"attempt-([0-9]+)\.tmp")
"""The name of an attempt's directory inside its task's; the group is the attempt number."""


def attempt_dir(upload_dir: Path, task_id: str, attempt: int) -> Path:
    """Where attempt ``attempt`` of a task writes its result files while it runs."""
    return task_dir(upload_dir, task_id) / f"attempt-{attempt}.tmp"


def results_dir(upload_dir: Path, task_id: str) -> Path:
    """Where the result files of a task's completed attempt are kept."""
    return task_dir(upload_dir, task_id) / "results"


def file_url(task_id: str, name: str) -> str:
    """The API path a task's listed file (a result or the upload) is downloaded from."""
    return f"/api/v1/tasks/{task_id}/files/{name}"


def relative(upload_dir: Path, path: Path) -> str:
    return path.relative_to(upload_dir).as_posix()


@functools.lru_cache(maxsize=16)
def _resolved(upload_dir: Path) -> Path:
    """``upload_dir`` with its symlinks resolved, once per directory: it is configured at
    start-up, while a stored file's own path is resolved at every use."""
    return upload_dir.resolve()


def absolute(upload_dir: Path, storage_path: str) -> Path:
    """The absolute path of a stored file; refuses anything outside ``upload_dir``."""
    path = (upload_dir / storage_path).resolve()
    if not path.is_relative_to(_resolved(upload_dir)):
        raise ValueError(f"stored path escapes the upload dir: {storage_path!r}")
    return path


def new_temp_path(upload_dir: Path) -> Path:
    return upload_dir / TMP_DIR / f"{random_hex()}.part"


def _sweep_temp(upload_dir: Path, older_than: float) -> int:
    cutoff = time.time() - older_than
    removed = 0
    try:
        entries = list(os.scandir(upload_dir / TMP_DIR))
    except FileNotFoundError:
        return 0
    for entry in entries:
        try:
            if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)
                removed += 1
        except FileNotFoundError:  # another process swept it first
            continue
    return removed


async def sweep_temp(upload_dir: Path, older_than: float) -> int:
    """Remove temp files of ``UPLOAD_DIR/.tmp`` untouched for ``older_than`` seconds.

    Every process sharing ``UPLOAD_DIR`` may be receiving an upload into
    ``.tmp`` right now, so only files nobody has written to for a long time
    are taken: an upload still arriving is appended to at least every
    ``BODY_TIMEOUT_SECONDS`` (or refused and removed), so a file older than
    that by a wide margin belongs to a process that died mid-upload.
    Returns how many files were removed.
    """
    return await anyio.to_thread.run_sync(_sweep_temp, upload_dir, older_than)


def new_upload_path(upload_dir: Path, task_id: str, extension: str) -> Path:
    return task_dir(upload_dir, task_id) / f"upload-{random_hex()}{extension}"


def move_now(source: Path, target: Path) -> None:
    """:func:`move` in the calling thread (for code already running in a worker thread)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)


async def move(source: Path, target: Path) -> None:
    """Atomic rename into place (same file system)."""
    await anyio.to_thread.run_sync(move_now, source, target)


def _remove(path: Path) -> bool:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
    return not os.path.lexists(path)


async def remove(*paths: Path) -> list[Path]:
    """Remove files or directories; missing ones are fine. Returns the paths that are
    still there because the storage refused (read-only, say): a later sweep's work."""
    left = []
    for path in paths:
        if not await anyio.to_thread.run_sync(_remove, path):
            left.append(path)
    return left


UNWRITABLE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


def describe_write_error(error: OSError) -> str:
    """A sentence for a person about a failed write under ``UPLOAD_DIR`` or to the bucket."""
    if isinstance(error, ObjectStoreUnavailable):
        return f"{error.strerror}."
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return "The server's storage is full, so the results could not be written."
    if error.errno == errno.EROFS:
        return "The server's storage is read-only, so the results could not be written."
    reason = error.strerror or type(error).__name__
    return f"The server's storage could not be written ({reason})."


def describe_read_error(error: OSError) -> str:
    """A sentence for a person about a manuscript that could not be read."""
    if isinstance(error, ObjectStoreUnavailable):
        return f"{error.strerror}."
    if isinstance(error, FileNotFoundError):
        return "The manuscript is missing from the server's storage."
    if error.errno in UNWRITABLE:
        return describe_write_error(error)
    reason = error.strerror or type(error).__name__
    return f"The manuscript could not be read from the server's storage ({reason})."


def _empty_dir(path: Path) -> None:
    _remove(path)
    path.mkdir(parents=True)


async def empty_dir(path: Path) -> None:
    """``path`` as a new, empty directory (whatever was there is removed)."""
    await anyio.to_thread.run_sync(_empty_dir, path)


# ---------------------------------------------------------------------------
# Stored files of either backend


@dataclass(frozen=True, slots=True)
class Stored:
    """Where one stored file is: its backend, its key (local: relative to ``UPLOAD_DIR``;
    s3: the whole object key, prefix included) and, for s3, its bucket."""

    backend: str
    key: str
    bucket: str | None = None

    @property
    def locator(self) -> str:
        """One string naming the file (what a claimed attempt carries to its worker)."""
        return self.key if self.backend == LOCAL else f"s3://{self.bucket}/{self.key}"

    @classmethod
    def of(cls, locator: str) -> Stored:
        if locator.startswith("s3://"):
            bucket, _, key = locator.removeprefix("s3://").partition("/")
            return cls(S3, key, bucket)
        return cls(LOCAL, locator)

    @classmethod
    def from_row(cls, backend: str, key: str, bucket: str | None) -> Stored:
        return cls(backend, key, bucket if backend == S3 else None)


class ObjectStoreUnavailable(OSError):
    """The bucket could not be reached or refused a request (errno EIO)."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.EIO, message)


_OBJECT_ERRORS = (ObstoreError, ValueError, TimeoutError, ConnectionError)


@contextlib.contextmanager
def _object_errors(action: str) -> Iterator[None]:
    """obstore's errors as :class:`ObjectStoreUnavailable` (a missing object stays
    ``FileNotFoundError``, which obstore raises itself)."""
    try:
        yield
    except FileNotFoundError:
        raise
    except ObjectStoreUnavailable:
        raise
    except _OBJECT_ERRORS as exc:
        first_line = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        reason = first_line or type(exc).__name__
        raise ObjectStoreUnavailable(f"The object store could not {action}: {reason}") from exc


PART_SIZE = 5 * 1024 * 1024
"""A file up to this size is one PUT; a larger one a multipart upload of parts this size
(S3's smallest part)."""
_QUEUED_BLOCKS = 8  # blocks (>= 256 KiB each) waiting for the multipart upload to take them
_STORES: dict[tuple[Any, ...], S3Store] = {}


def object_store(settings: Settings, bucket: str | None = None) -> S3Store:
    """The client of ``bucket`` (default ``S3_BUCKET``): one per process and bucket, so
    its connections are reused. Credentials come from the environment the standard way
    (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``, web
    identity, the container's or instance's role)."""
    name = bucket or settings.s3_bucket
    if not name:
        raise ObjectStoreUnavailable("The object store is not configured (S3_BUCKET is empty)")
    endpoint = settings.s3_endpoint_url or None
    region = settings.s3_region or None
    key = (name, endpoint, region, settings.s3_timeout_seconds)
    store = _STORES.get(key)
    if store is None:
        timeout = timedelta(seconds=settings.s3_timeout_seconds)
        millis = int(settings.s3_timeout_seconds * 1000)
        config: dict[str, Any] = {}
        if endpoint:
            config["endpoint"] = endpoint
        if region:
            config["region"] = region
        store = S3Store(
            name,
            client_options={
                "allow_http": bool(endpoint and endpoint.startswith("http://")),
                "connect_timeout": f"{min(millis, 5000)}ms",
                "timeout": f"{millis}ms",
            },
            retry_config={
                "max_retries": 3,
                "retry_timeout": timeout,
                "backoff": {
                    "init_backoff": timedelta(milliseconds=100),
                    "max_backoff": timedelta(seconds=2),
                    "base": 2,
                },
            },
            **config,
        )
        _STORES[key] = store
    return store


def object_key(settings: Settings, relative: str) -> str:
    """The object key of a layout path (``S3_PREFIX`` + path)."""
    return settings.s3_prefix + relative


def _new_location(settings: Settings, relative: str) -> Stored:
    if settings.storage_backend == S3:
        return Stored(S3, object_key(settings, relative), settings.s3_bucket)
    return Stored(LOCAL, relative)


def new_upload_location(settings: Settings, task_id: str, extension: str) -> Stored:
    """Where a new upload of ``task_id`` is kept, on the configured backend."""
    return _new_location(settings, f"tasks/{task_id}/upload-{random_hex()}{extension}")


def local_path(settings: Settings, stored: Stored) -> Path:
    return absolute(settings.upload_dir, stored.key)


def new_local_path(settings: Settings, stored: Stored) -> Path:
    """The path of a local location this process just made (``new_upload_location``):
    its key is built from a generated id and name, so it is joined without the checks of
    :func:`local_path`, which resolves the stored path (a ``realpath`` walk) to refuse a
    stored key that escapes ``UPLOAD_DIR``."""
    return settings.upload_dir / stored.key


async def _delete_objects(settings: Settings, bucket: str | None, keys: list[str]) -> bool:
    """Delete objects (missing ones are fine); False, logged, when the bucket refused."""
    if not keys:
        return True
    try:
        with _object_errors("delete files"):
            await obstore.delete_async(object_store(settings, bucket), keys)
    except OSError as exc:
        log.warning("object_delete_failed", error=str(exc), objects=len(keys))
        return False
    return True


async def _list_objects(
    settings: Settings, bucket: str | None, prefix: str
) -> AsyncIterator[tuple[str, datetime]]:
    with _object_errors("list files"):
        stream = obstore.list(object_store(settings, bucket), prefix=prefix, chunk_size=1000)
        async for chunk in stream:
            for meta in chunk:
                yield meta["path"], meta["last_modified"]


async def remove_stored(settings: Settings, stored: Stored) -> bool:
    """Remove one stored file; False when the storage refused (a later pass retries)."""
    if stored.backend == LOCAL:
        return not await remove(local_path(settings, stored))
    return await _delete_objects(settings, stored.bucket, [stored.key])


async def remove_placed_upload(settings: Settings, stored: Stored) -> None:
    """Undo placing an upload whose task was not committed (its task's files go with it)."""
    if stored.backend == LOCAL:
        await remove(local_path(settings, stored).parent)
    else:
        await _delete_objects(settings, stored.bucket, [stored.key])


async def remove_task_files(settings: Settings, task_id: str) -> None:
    """Remove everything a deleted task had, on disk and (when one is configured) in the
    bucket: its upload, its results, the attempt directories of this host."""
    await remove(task_dir(settings.upload_dir, task_id))
    if settings.s3_bucket:
        try:
            keys = [key async for key, _ in _list_objects(
                settings, None, object_key(settings, f"tasks/{task_id}/"))]  # fmt: skip
        except OSError as exc:
            log.warning("object_delete_failed", error=str(exc), task_id=task_id)
            return
        await _delete_objects(settings, None, keys)


async def sweep_temp_objects(settings: Settings, older_than: float) -> int:
    """The bucket's ``.tmp/`` objects untouched for ``older_than`` seconds (left by an API
    process that died between receiving an upload and placing it); how many went."""
    if settings.storage_backend != S3:
        return 0
    cutoff = datetime.now(UTC) - timedelta(seconds=older_than)
    prefix = object_key(settings, f"{TMP_DIR}/")
    stale = [key async for key, modified in _list_objects(settings, None, prefix)
             if modified < cutoff]  # fmt: skip
    return len(stale) if await _delete_objects(settings, None, stale) else 0


# The upload being received


class ObjectUpload:
    """One file of an upload, streamed to a temp key of the bucket while it arrives.

    Up to ``PART_SIZE`` bytes are held; a file that ends there is one PUT. Past it a
    multipart upload starts and takes every later block as it comes (a bounded queue
    between the body and the upload, so a slow bucket slows the body, not memory).
    :meth:`discard` aborts an unfinished upload by making its source fail, which is
    how obstore aborts a multipart upload (cancelling it would leave the parts), and
    deletes the temp object of a finished one.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = object_store(settings)
        self.stored = Stored(
            S3, object_key(settings, f"{TMP_DIR}/{random_hex()}.part"), settings.s3_bucket
        )
        self._head = bytearray()
        self._queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(_QUEUED_BLOCKS)
        self._upload: asyncio.Future[Any] | None = None
        self.finished = False
        self._written = False  # an object may exist under the temp key

    async def write(self, data: bytes | bytearray) -> None:
        if self._upload is None:
            self._head += data
            if len(self._head) <= PART_SIZE:
                return
            data, self._head = bytes(self._head), bytearray()
            self._upload = asyncio.ensure_future(
                obstore.put_async(self.store, self.stored.key, self._blocks(),
                                  chunk_size=PART_SIZE, max_concurrency=4)
            )  # fmt: skip
        await self._send(bytes(data))

    async def _blocks(self) -> AsyncIterator[bytes]:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    async def _send(self, item: bytes | None) -> None:
        assert self._upload is not None
        put = asyncio.ensure_future(self._queue.put(item))
        try:
            await asyncio.wait({put, self._upload}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not put.done():
                put.cancel()
        if not put.done() or put.cancelled():
            await self._outcome()  # the upload stopped taking blocks: raises why
            raise ObjectStoreUnavailable("The object store stopped taking the upload")

    async def _outcome(self) -> None:
        assert self._upload is not None
        with _object_errors("store the upload"):
            await self._upload

    async def finish(self) -> None:
        """The file's last byte has arrived: complete its object."""
        if self.finished:
            return
        self._written = True
        if self._upload is None:
            with _object_errors("store the upload"):
                await obstore.put_async(self.store, self.stored.key, bytes(self._head),
                                        use_multipart=False)  # fmt: skip
            self._head = bytearray()
        else:
            await self._send(None)
            await self._outcome()
        self.finished = True

    async def place(self, target: Stored) -> None:
        """Copy the finished object to where the task keeps it (a copy inside the bucket);
        the temp object goes with :meth:`discard`."""
        if not self.finished:
            await self.finish()
        with _object_errors("store the upload"):
            await obstore.copy_async(self.store, self.stored.key, target.key)

    async def discard(self) -> None:
        """Abort an unfinished multipart upload, delete the temp object (shield it)."""
        upload, stored = self._upload, self._written
        if upload is not None:
            if not upload.done():
                while not self._queue.empty():
                    self._queue.get_nowait()
                self._queue.put_nowait(ObjectStoreUnavailable("The upload was refused"))
                with contextlib.suppress(Exception):
                    await upload
            stored = stored or (not upload.cancelled() and upload.exception() is None)
        self._head = bytearray()
        if stored:
            await _delete_objects(self.settings, self.stored.bucket, [self.stored.key])


# The worker's side


def _download(store: S3Store, key: str, target: Path) -> None:
    """Stream one object to a local file (blocking: run in a thread; obstore releases the GIL)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as handle:
        for chunk in obstore.get(store, key).stream(min_chunk_size=1024 * 1024):
            handle.write(chunk)


async def fetch_input(settings: Settings, locator: str, attempt_dir: Path) -> Path:
    """A local path of a claimed task's upload: the file itself (local), or a copy streamed
    from the bucket into the attempt's directory (removed with it)."""
    stored = Stored.of(locator)
    if stored.backend == LOCAL:
        return local_path(settings, stored)
    target = attempt_dir / f".manuscript{PurePosixPath(stored.key).suffix}"
    store = object_store(settings, stored.bucket)
    with _object_errors("read the manuscript"):
        await anyio.to_thread.run_sync(_download, store, stored.key, target)
    return target


async def publish_result(settings: Settings, task_id: str, source: Path, name: str) -> Stored:
    """Put one result file of a completed attempt where its task keeps it: moved into
    ``results/`` (local) or uploaded under the task's prefix (s3; multipart above
    ``PART_SIZE``, so a failed upload leaves no object)."""
    relative = f"tasks/{task_id}/results/{name}"
    target = _new_location(settings, relative)
    if target.backend == LOCAL:
        await move(source, results_dir(settings.upload_dir, task_id) / name)
        return target
    with _object_errors("store the results"):
        await obstore.put_async(object_store(settings), target.key, source, chunk_size=PART_SIZE)
    return target


async def remove_uploaded(settings: Settings, uploaded: list[Stored]) -> None:
    """Undo :func:`publish_result` in the bucket for a completion that did not commit (the
    local backend's moves are undone by moving the files back)."""
    by_bucket: dict[str | None, list[str]] = {}
    for stored in uploaded:
        by_bucket.setdefault(stored.bucket, []).append(stored.key)
    for bucket, keys in by_bucket.items():
        await _delete_objects(settings, bucket, keys)


# Reading stored files (downloads, archives)


@dataclass(frozen=True, slots=True)
class ObjectFacts:
    size: int
    modified: float


async def object_facts(settings: Settings, stored: Stored) -> ObjectFacts:
    """Size and modification time of an object (FileNotFoundError when it is gone)."""
    with _object_errors("read the file"):
        meta = await obstore.head_async(object_store(settings, stored.bucket), stored.key)
    return ObjectFacts(size=meta["size"], modified=meta["last_modified"].timestamp())


class ObjectReader:
    """What ``FileResponse`` reads a file with (``seek``, ``read``), reading an object:
    one ranged GET streamed from the position sought to the end, read as it is taken."""

    def __init__(self, settings: Settings, stored: Stored, size: int) -> None:
        self._store = object_store(settings, stored.bucket)
        self._key = stored.key
        self._size = size
        self._position = 0
        self._stream: Any = None
        self._buffer = bytearray()

    async def seek(self, position: int) -> None:
        self._position, self._stream, self._buffer = position, None, bytearray()

    async def read(self, size: int) -> bytes:
        while len(self._buffer) < size:
            if self._stream is None:
                if self._position >= self._size:
                    break
                with _object_errors("read the file"):
                    result = await obstore.get_async(
                        self._store, self._key, options={"range": (self._position, self._size)}
                    )
                self._stream = result.stream(min_chunk_size=64 * 1024)
            try:
                with _object_errors("read the file"):
                    chunk = await self._stream.__anext__()
            except StopAsyncIteration:
                self._position = self._size
                break
            self._buffer += chunk
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out


def open_stored(settings: Settings, stored: Stored) -> Iterator[bytes]:
    """A stored file's bytes in chunks (blocking: iterate it in a thread)."""
    if stored.backend == LOCAL:
        with local_path(settings, stored).open("rb") as handle:
            while chunk := handle.read(64 * 1024):
                yield chunk
        return
    with _object_errors("read the file"):
        result = obstore.get(object_store(settings, stored.bucket), stored.key)
        yield from result.stream(min_chunk_size=64 * 1024)


PROBE_SECONDS = 5.0


async def probe_bucket(settings: Settings) -> None:
    """Raise unless the bucket answers within ``PROBE_SECONDS`` (a HEAD of a key nobody
    writes: 404 is an answer), so a health check never waits for every retry."""
    with contextlib.suppress(FileNotFoundError), _object_errors("be reached"):
        async with asyncio.timeout(min(PROBE_SECONDS, settings.s3_timeout_seconds)):
            await obstore.head_async(object_store(settings), object_key(settings, ".health"))
