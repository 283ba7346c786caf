"""Files on local disk under ``UPLOAD_DIR``, every operation off the event loop.

Layout (relative to ``UPLOAD_DIR``)::

    .tmp/<uuid>.part                      an upload being received
    tasks/<task_id>/upload-<uuid><ext>    the stored upload (generated name)
    tasks/<task_id>/attempt-<n>.tmp/      result files of a running attempt
    tasks/<task_id>/results/<name>        result files of the completed attempt

Every one of these paths, and the URL a stored file is downloaded from, is
spelled here and nowhere else. No path is ever built from a client-supplied
name.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import time
import uuid
from pathlib import Path

import anyio

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


def absolute(upload_dir: Path, storage_path: str) -> Path:
    """The absolute path of a stored file; refuses anything outside ``upload_dir``."""
    path = (upload_dir / storage_path).resolve()
    if not path.is_relative_to(upload_dir.resolve()):
        raise ValueError(f"stored path escapes the upload dir: {storage_path!r}")
    return path


def new_temp_path(upload_dir: Path) -> Path:
    return upload_dir / TMP_DIR / f"{uuid.uuid4().hex}.part"


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
    return task_dir(upload_dir, task_id) / f"upload-{uuid.uuid4().hex}{extension}"


def _move(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)


async def move(source: Path, target: Path) -> None:
    """Atomic rename into place (same file system)."""
    await anyio.to_thread.run_sync(_move, source, target)


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
    """A sentence for a person about a failed write under ``UPLOAD_DIR``."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return "The server's storage is full, so the results could not be written."
    if error.errno == errno.EROFS:
        return "The server's storage is read-only, so the results could not be written."
    reason = error.strerror or type(error).__name__
    return f"The server's storage could not be written ({reason})."


def _empty_dir(path: Path) -> None:
    _remove(path)
    path.mkdir(parents=True)


async def empty_dir(path: Path) -> None:
    """``path`` as a new, empty directory (whatever was there is removed)."""
    await anyio.to_thread.run_sync(_empty_dir, path)


async def remove_task_files(upload_dir: Path, task_id: str) -> None:
    await remove(task_dir(upload_dir, task_id))
