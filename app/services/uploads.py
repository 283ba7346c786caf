"""Receiving uploads: a streaming multipart parser writing straight to a temp file.

The request body is parsed as it arrives (python-multipart's low-level
parser); each file part is hashed, counted and written to
``UPLOAD_DIR/.tmp/<uuid>.part`` in 256 KiB blocks through a worker thread, or
with ``STORAGE_BACKEND=s3`` streamed to a temp key of the bucket
(``storage.ObjectUpload``: one PUT, or a multipart upload past 5 MiB). A
file passing ``MAX_FILE_SIZE`` aborts the upload at once (413): nothing is
ever held whole in memory or written twice. Non-file fields are bounded in
number (``MAX_FORM_FIELDS``) and size (``MAX_FORM_FIELD_SIZE``), part headers
in size, so no body can grow memory; the whole body's size and pace are
bounded by ``app.api.body_limits``.

The last block of a local file (under ``FLUSH_BYTES``: all of a small file)
stays in memory when the body ends (``ReceivedFile.tail``): :meth:`ReceivedForm.keep`
appends it to the temp file and renames that into place in one thread call, so
a small upload costs one trip to a worker thread, and one refused before it is
kept never touches the disk.

The received form owns its temp files: ``async with receive_form(...) as
form`` removes on exit every temp file that was not moved into place with
:meth:`ReceivedForm.keep`, whatever refused the upload (a check, a replay, an
error, a client gone, a cancellation). Validation (extension, emptiness, text
sniffing) happens on what was received, before anything is kept.
"""

from __future__ import annotations

import hashlib
import time
import unicodedata
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import anyio
from python_multipart.multipart import MultipartParser, parse_options_header

from app.config import Settings
from app.errors import FileTooLarge, Unprocessable, UnsupportedFileType
from app.processors.analyze.decoding import SNIFF_BYTES, binary_format, sniff
from app.processors.base import PermanentError
from app.services import storage

FLUSH_BYTES = 256 * 1024
SAMPLE_BYTES = SNIFF_BYTES  # what the text check sees of each file
INLINE_CHECK_BYTES = 16 * 1024  # a sample this small is checked on the loop (< 0.1 ms)
MAX_PART_HEADER_BYTES = 8 * 1024
PART_OVERHEAD_BYTES = 16 * 1024  # a part's headers, its boundary line and CRLFs
FORM_OVERHEAD_BYTES = 64 * 1024  # preamble, epilogue, the closing boundary
TOUCH_SECONDS = 60.0  # temp files of an upload still arriving are touched this often
# Start-up removes temp files untouched this long. Every process sharing UPLOAD_DIR may be
# receiving into .tmp right now, so "all of them" is never safe; a live upload's files are
# touched at least every TOUCH_SECONDS + BODY_TIMEOUT_SECONDS (<= 600), so an hour is far
# beyond any live one and covers clock skew between machines sharing the volume.
STALE_TEMP_SECONDS = 3600.0
MAX_NAME_LENGTH = 255
CONTENT_TYPES = {".txt": "text/plain", ".md": "text/markdown"}


@dataclass
class ReceivedFile:
    """One file part, under a temp name on disk (``temp_path``) or in the bucket
    (``upload``). ``filename`` is display data only."""

    filename: str
    temp_path: Path | None = None
    upload: storage.ObjectUpload | None = None
    size: int = 0
    sha256: Any = field(default_factory=hashlib.sha256)
    sample: bytearray = field(default_factory=bytearray)
    has_nul: bool = False
    kept: bool = False  # moved into place: no longer a temp file of the form
    tail: bytearray = field(default_factory=bytearray)  # received, not yet on disk

    @property
    def extension(self) -> str:
        return PurePosixPath(self.filename).suffix.lower()

    @property
    def checksum(self) -> str:
        return "sha256:" + str(self.sha256.hexdigest())

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES.get(self.extension, "text/plain")


@dataclass
class ReceivedForm:
    """The files and fields of one upload; it owns the files' temp paths.

    Used as ``async with form:``, every temp file not :meth:`keep`-ed is removed
    on exit (:func:`receive_form` does this for the upload routes).
    """

    files: list[ReceivedFile]
    fields: dict[str, str]

    async def keep(
        self, received: ReceivedFile, target: storage.Stored, settings: Settings
    ) -> None:
        """Move one received file into place: from now on it is the caller's."""
        if received.upload is not None:
            await received.upload.place(target)
        else:
            assert received.temp_path is not None
            tail, received.tail = received.tail, bytearray()
            await anyio.to_thread.run_sync(
                _place, received.temp_path, tail, storage.new_local_path(settings, target)
            )
        received.kept = True

    async def discard(self) -> None:
        """Remove every temp file not kept, abort every upload to the bucket still running
        and delete its temp object (shielded: it runs even when cancelled)."""
        with anyio.CancelScope(shield=True):
            for received in self.files:
                if received.upload is not None:
                    await received.upload.discard()
            await storage.remove(
                *(f.temp_path for f in self.files if not f.kept and f.temp_path is not None)
            )

    async def __aenter__(self) -> ReceivedForm:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.discard()


def upload_body_limit(settings: Settings, *, batch: bool) -> int:
    """The most bytes a valid upload form can take: every file at ``MAX_FILE_SIZE`` and
    every field at ``MAX_FORM_FIELD_SIZE``, each with its part's framing, plus the form's."""
    files = settings.max_batch_files if batch else 1
    fields = settings.max_form_fields * (settings.max_form_field_size + PART_OVERHEAD_BYTES)
    return files * (settings.max_file_size + PART_OVERHEAD_BYTES) + fields + FORM_OVERHEAD_BYTES


def display_name(raw: str) -> str:
    """The client's file name reduced to a safe display string (never used as a path)."""
    name = PureWindowsPath(PurePosixPath(raw.replace("\x00", "")).name).name
    name = unicodedata.normalize("NFC", name)
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip(" .")
    if not name:
        return "upload"
    if len(name) > MAX_NAME_LENGTH:
        suffix = PurePosixPath(name).suffix[:16]
        name = name[: MAX_NAME_LENGTH - len(suffix)] + suffix
    return name


class _FormReceiver:
    """Collects the parts of one multipart body; file data goes to disk in blocks."""

    def __init__(self, settings: Settings, file_field: str, max_files: int) -> None:
        self.settings = settings
        self.file_field = file_field
        self.max_files = max_files
        self.files: list[ReceivedFile] = []
        self.fields: dict[str, str] = {}
        self.field_count = 0
        self.ended = False
        self._headers: dict[bytes, bytes] = {}
        self._header_bytes = 0
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._current: ReceivedFile | None = None
        self._field_name: str | None = None
        self._field_value = bytearray()
        self._blocks: list[tuple[ReceivedFile, bytearray]] = []
        self.pending_bytes = 0
        self.ended_files: list[ReceivedFile] = []

    # python-multipart callbacks (synchronous, called from parser.write)
    def on_part_begin(self) -> None:
        self._headers = {}
        self._header_bytes = 0

    def _count_header_bytes(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > MAX_PART_HEADER_BYTES:
            raise Unprocessable(
                f"A part's headers are longer than {MAX_PART_HEADER_BYTES} bytes",
                code="invalid_form",
                extra={"errors": [{"loc": ["body"], "msg": "part headers too long",
                                   "type": "invalid_form"}]},
            )  # fmt: skip

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._count_header_bytes(end - start)
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._count_header_bytes(end - start)
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[bytes(self._header_field).lower()] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        self._field_name = name
        self._field_value.clear()
        if filename is not None and name != self.file_field:
            expected = self.file_field
            raise Unprocessable(
                f"Files go in the form field {expected!r}, not {name[:50]!r}",
                code="invalid_form",
                extra={"errors": [{"loc": ["body", name[:50]],
                                   "msg": f"unexpected file field: use {expected!r}",
                                   "type": "invalid_form"}]},
            )  # fmt: skip
        if filename is not None:
            if len(self.files) >= self.max_files:
                raise Unprocessable(
                    f"At most {self.max_files} files may be sent at once", code="too_many_files"
                )
            received = ReceivedFile(filename=display_name(filename.decode("utf-8", "replace")))
            if self.settings.storage_backend == storage.S3:
                received.upload = storage.ObjectUpload(self.settings)
            else:
                received.temp_path = storage.new_temp_path(self.settings.upload_dir)
            self.files.append(received)
            self._current = received
            return
        self.field_count += 1
        if self.field_count > self.settings.max_form_fields:
            limit = self.settings.max_form_fields
            raise Unprocessable(
                f"The form has more than {limit} fields besides its files",
                code="too_many_fields",
                extra={"errors": [{"loc": ["body", name], "msg": f"more than {limit} fields",
                                   "type": "too_many_fields"}]},
            )  # fmt: skip

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        current = self._current
        if current is None:
            self._field_value += chunk
            limit = self.settings.max_form_field_size
            if len(self._field_value) > limit:
                raise Unprocessable(
                    f"Form field {self._field_name!r} is longer than {limit} bytes",
                    code="field_too_long",
                    extra={"errors": [{"loc": ["body", self._field_name or ""],
                                       "msg": f"longer than {limit} bytes",
                                       "type": "field_too_long"}]},
                )  # fmt: skip
            return
        current.size += len(chunk)
        if current.size > self.settings.max_file_size:
            raise FileTooLarge(
                f"{current.filename} is larger than the limit of "
                f"{self.settings.max_file_size} bytes"
            )
        current.sha256.update(chunk)
        if len(current.sample) < SAMPLE_BYTES:
            current.sample += chunk[: SAMPLE_BYTES - len(current.sample)]
        if b"\x00" in chunk:
            current.has_nul = True
        if self._blocks and self._blocks[-1][0] is current:
            self._blocks[-1][1].extend(chunk)
        else:
            self._blocks.append((current, bytearray(chunk)))
        self.pending_bytes += len(chunk)

    def on_part_end(self) -> None:
        if self._current is None and self._field_name:
            self.fields[self._field_name] = self._field_value.decode("utf-8", "replace")
        if self._current is not None and self._current.upload is not None:
            self.ended_files.append(self._current)  # its object is completed at the next flush
        self._current = None

    def on_end(self) -> None:
        self.ended = True

    def take_blocks(self) -> list[tuple[ReceivedFile, bytearray]]:
        """The file data received since the last call, in order (written outside the callbacks)."""
        blocks, self._blocks, self.pending_bytes = self._blocks, [], 0
        return blocks


def _append(path: Path, data: bytes | bytearray) -> None:
    try:
        handle = path.open("ab")
    except FileNotFoundError:  # the first upload into a new UPLOAD_DIR/.tmp
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("ab")
    with handle:
        handle.write(data)


def _place(temp_path: Path, tail: bytearray, target: Path) -> None:
    """The file's last block appended under its temp name, then the temp file renamed
    into place (``storage.move``): one thread call. If either fails, the temp file is
    left for the form's owner to remove."""
    if tail:
        _append(temp_path, tail)
    storage.move_now(temp_path, target)


@asynccontextmanager
async def receive_form(
    chunks: AsyncIterator[bytes],
    content_type: str | None,
    settings: Settings,
    *,
    file_field: str,
    max_files: int,
) -> AsyncIterator[ReceivedForm]:
    """Parse a multipart body into temp files and fields, then hand over the form.

    Raises FileTooLarge as soon as a file passes ``MAX_FILE_SIZE``,
    Unprocessable for a malformed or truncated form, too many files or fields
    or a field too long; errors of ``chunks`` (the client left, the body is
    too large or too slow) pass through. Whether receiving fails or the block
    using the form does, every temp file not kept is removed on the way out.
    """
    mime, options = parse_options_header(content_type or "")
    boundary = options.get(b"boundary")
    if mime != b"multipart/form-data" or not boundary:
        raise Unprocessable(
            "The request must be multipart/form-data with a file part", code="invalid_form"
        )
    receiver = _FormReceiver(settings, file_field, max_files)
    async with ReceivedForm(receiver.files, receiver.fields) as form:
        await _receive(receiver, chunks, boundary)
        yield form


async def _receive(receiver: _FormReceiver, chunks: AsyncIterator[bytes], boundary: bytes) -> None:
    callbacks: Any = {
        name: getattr(receiver, name)
        for name in (
            "on_part_begin", "on_part_data", "on_part_end", "on_header_field",
            "on_header_value", "on_header_end", "on_headers_finished", "on_end",
        )
    }  # fmt: skip
    parser = MultipartParser(boundary, callbacks)
    touched = time.monotonic()
    async for chunk in chunks:
        try:
            written = parser.write(chunk)
        except (FileTooLarge, Unprocessable):
            raise
        except Exception as exc:  # python-multipart's parse errors
            raise Unprocessable("The multipart body is malformed", code="invalid_form") from exc
        if written != len(chunk):
            raise Unprocessable("The multipart body is malformed", code="invalid_form")
        if receiver.pending_bytes >= FLUSH_BYTES or receiver.ended_files:
            await _flush(receiver)
        if time.monotonic() - touched >= TOUCH_SECONDS:
            # A slow upload's temp files stay fresh for the start-up sweep of any process.
            await _flush(receiver)
            temp_paths = [f.temp_path for f in receiver.files if f.temp_path is not None]
            await anyio.to_thread.run_sync(_touch, temp_paths)
            touched = time.monotonic()
    if not receiver.ended:
        raise Unprocessable(
            "The multipart body ended before its closing boundary", code="invalid_form"
        )
    await _flush(receiver, last=True)


def _touch(paths: list[Path]) -> None:
    for path in paths:
        if path.exists():
            path.touch()


async def _flush(receiver: _FormReceiver, *, last: bool = False) -> None:
    """Write the blocks received so far; the ``last`` block of a local file (the body has
    ended) stays in memory as its ``tail``, written when the file is kept."""
    for target, data in receiver.take_blocks():
        if target.upload is not None:
            await target.upload.write(data)
        elif last:
            target.tail += data
        else:
            assert target.temp_path is not None
            await anyio.to_thread.run_sync(_append, target.temp_path, data)
    ended, receiver.ended_files = receiver.ended_files, []
    for received in ended:
        assert received.upload is not None
        await received.upload.finish()


def _check_text(received: ReceivedFile) -> None:
    """415 unless the analyzer could decode the file (the same decoding module decides,
    from the first SNIFF_BYTES: see ``app.processors.analyze.decoding.sniff``)."""
    sample = bytes(received.sample)
    kind = binary_format(sample)
    if kind is not None:
        raise UnsupportedFileType(f"{received.filename} is {kind}, not a text file")
    try:
        sniff(sample, received.size, has_nul=received.has_nul)
    except PermanentError as exc:
        raise UnsupportedFileType(f"{received.filename} does not look like a text file") from exc


async def validate(form: ReceivedForm, settings: Settings) -> None:
    """Every received file must be allowed text, and not empty (the form's owner removes
    its temp files when this refuses it)."""
    if not form.files:
        raise Unprocessable("The form has no file part", code="missing_file")
    for received in form.files:
        if received.extension not in settings.allowed_extensions:
            allowed = ", ".join(settings.allowed_extensions)
            raise UnsupportedFileType(f"{received.filename}: only {allowed} files are accepted")
        if received.size == 0:
            raise Unprocessable(f"{received.filename} is empty", code="empty_file")
        if len(received.sample) <= INLINE_CHECK_BYTES:
            _check_text(received)
        else:
            await anyio.to_thread.run_sync(_check_text, received)
