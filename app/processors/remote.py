"""Remote processors: the work is done by an HTTP service, the worker relays it.

Each entry of ``REMOTE_PROCESSORS`` (``{"name": {"url": …, …}}``, see
:class:`app.config.RemoteProcessorSettings`) is a processor of that name. An
attempt speaks this protocol with the service (every URL the service returns
may be relative to the one it came from):

1. **submit** ``POST <url>``, multipart, the manuscript in the field ``file``,
   with an ``Idempotency-Key`` header that every retry of it repeats
   → 2xx JSON ``{"id": "…"}``; the job is at ``status_url`` if the answer has
   one, else at its ``Location`` header, else at ``<url>/<id>``;
2. **poll** ``GET <job>`` every ``poll_interval_seconds`` (or the answer's
   ``Retry-After``) → ``{"status": "queued|running|succeeded|failed",
   "progress": 0-100, "stage": "…", "error": "…", "retryable": false}``;
   ``progress`` and ``stage`` are relayed to the task as they change;
3. **fetch** once ``succeeded``: every ``{"name", "url"}`` of the answer's
   ``files`` (else the one at ``result_url``, else ``<job>/result``) is
   stored as a result file of the task; ``summary``, ``metrics``,
   ``quality_score`` and ``confidence_score`` of the answer become the task's
   result.

Failures::

    timeout, connection error, 5xx, 408, 429   transient: retried with exponential
                                               backoff and jitter (stamina), honouring
                                               Retry-After, then the attempt fails and
                                               the queue retries it later
    any other 4xx, a malformed answer          permanent: the task fails at once
    a job the service reports ``failed``       permanent unless it says ``"retryable": true``
    a job not done in job_timeout_seconds      the attempt fails (retryable)
    breaker_failures failed requests in a row  the circuit opens: for breaker_reset_seconds
                                               attempts fail at once without calling the
                                               service, then one trial request decides

The processor runs in a thread of the worker process (``cpu_bound = False``):
there is no CPU work to isolate, and the circuit breaker must outlive a single
attempt, which an attempt's own process would not. Every request is bounded
by its timeouts and every wait is followed by a ``progress`` call, which
raises ``AttemptCancelled`` once the attempt was stopped; the remote job is
then cancelled with a best-effort ``DELETE <job>``. Headers (credentials) are
sent only to the service's own origin, never to another host a result URL
may name; redirects are not followed.

The circuit breaker is in ``circuit.py``.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import stamina

from app.config import RemoteProcessorSettings, get_settings
from app.log import get_logger
from app.processors.base import (
    AttemptCancelled,
    OutputFile,
    PermanentError,
    ProcessorError,
    ProcessorOutput,
    ProgressCallback,
)
from app.processors.circuit import CircuitOpen, breaker_for

log = get_logger(__name__)

TARGET_PREFIX = "remote:"
"""Registry targets are ``app.processors.remote:remote:<name>`` (see ``__getattr__``)."""
CANCEL_TIMEOUT_SECONDS = 5.0
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_RUNNING = {"queued": "queued", "pending": "queued", "running": "running", "processing": "running"}
_SUCCEEDED = {"succeeded", "completed", "done"}
_FAILED = {"failed", "error", "cancelled"}
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_CONTENT_SUFFIX = {
    "application/json": ".json",
    "text/markdown": ".md",
    "text/plain": ".txt",
    "text/csv": ".csv",
    "text/html": ".html",
}


class Transient(ProcessorError):
    """A request that may succeed if sent again; ``retry_after`` is the service's hint."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message, retryable=True)
        self.retry_after = retry_after


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "").strip()
    if value.isdigit():
        return float(value)
    return None


def _retry_hook(exc: Exception) -> bool | float:
    """stamina's ``on``: retry transient errors only, after Retry-After when given."""
    if isinstance(exc, CircuitOpen) or not isinstance(exc, Transient):
        return False
    return exc.retry_after if exc.retry_after is not None else True


def _safe_name(name: str, fallback: str) -> str:
    """A plain file name (no directory, no leading dot, never the upload's ``original``)."""
    cleaned = _SAFE_NAME.sub("_", Path(name.replace("\\", "/")).name).strip("._")[:100]
    if not cleaned or cleaned.lower().startswith("original"):
        return fallback
    return cleaned


def _filename(response: httpx.Response) -> str | None:
    header = response.headers.get("content-disposition")
    if not header:
        return None
    message = Message()
    message["content-disposition"] = header
    name = message.get_filename()
    return name if isinstance(name, str) else None


class RemoteProcessor:
    """One configured remote service; see the module docstring for the protocol."""

    cpu_bound = False

    def __init__(self, name: str, config: RemoteProcessorSettings) -> None:
        self.name = name
        self.config = config
        self.base_url = httpx.URL(str(config.url))

    @property
    def description(self) -> str:
        """For ``GET /processors``: where the work is done (no path, no credential)."""
        return f"Processed by the remote service at {self.base_url.scheme}://{self.base_url.host}"

    # --- requests ---------------------------------------------------------------------

    def _headers_for(self, url: httpx.URL) -> dict[str, str]:
        same_origin = (url.scheme, url.host, url.port) == (
            self.base_url.scheme,
            self.base_url.host,
            self.base_url.port,
        )
        return dict(self.config.headers) if same_origin else {}

    def _send_once(
        self,
        client: httpx.Client,
        method: str,
        url: httpx.URL,
        *,
        extra_headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request through the breaker; raises Transient, PermanentError or CircuitOpen."""
        breaker = breaker_for(self.name, self.config)
        breaker.before_call()
        what = f"{method} {url.copy_with(query=None)}"
        headers = {**self._headers_for(url), **(extra_headers or {})}
        try:
            response = client.request(method, url, headers=headers, **kwargs)
        except httpx.TimeoutException:
            breaker.failed()
            raise Transient(f"The remote service did not answer in time ({what}).") from None
        except httpx.TransportError as exc:
            breaker.failed()
            raise Transient(
                f"The remote service could not be reached ({what}: {type(exc).__name__})."
            ) from None
        if response.status_code in TRANSIENT_STATUSES:
            breaker.failed()
            raise Transient(
                f"The remote service answered {response.status_code} ({what}).",
                retry_after=_retry_after(response),
            )
        breaker.succeeded()  # it answered: a 4xx is our request's fault, not its health
        if response.status_code >= 400:
            raise PermanentError(
                f"The remote service refused the request with {response.status_code} ({what})."
            )
        return response

    def _retrying(self) -> Any:
        """stamina's retry loop for one request: exponential backoff with jitter."""
        return stamina.retry_context(
            on=_retry_hook,
            attempts=self.config.retry_attempts,
            timeout=None,
            wait_initial=self.config.retry_initial_seconds,
            wait_max=self.config.retry_max_seconds,
            wait_jitter=self.config.retry_initial_seconds,
        )

    def _send(
        self,
        client: httpx.Client,
        method: str,
        url: httpx.URL,
        checkpoint: Callable[[], None],
        **kwargs: Any,
    ) -> httpx.Response:
        """A request retried on transient errors; the last one's error when all tries fail."""
        for attempt in self._retrying():
            with attempt:
                checkpoint()  # stopped while backing off: go no further
                return self._send_once(client, method, url, **kwargs)
        raise AssertionError("unreachable: stamina raises the last error")  # pragma: no cover

    @staticmethod
    def _json(response: httpx.Response, what: str) -> dict[str, Any]:
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            raise PermanentError(f"The remote service's answer to {what} is not a JSON object.")
        return body

    # --- the attempt ------------------------------------------------------------------

    def run(
        self, input_path: Path, output_dir: Path, progress: ProgressCallback
    ) -> ProcessorOutput:
        latest_percent, latest_stage = 0, "submitting"

        def report(percent: int, stage: str) -> None:
            nonlocal latest_percent, latest_stage
            latest_percent = max(latest_percent, min(percent, 99))  # 100 comes with completion
            latest_stage = stage[:100]
            progress(latest_percent, latest_stage)

        def checkpoint() -> None:
            progress(latest_percent, latest_stage)  # raises AttemptCancelled once stopped

        timeout = httpx.Timeout(
            self.config.read_timeout_seconds, connect=self.config.connect_timeout_seconds
        )
        job_url: httpx.URL | None = None
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            try:
                report(1, "submitting")
                job_url = self._submit(client, input_path, checkpoint)
                report(5, "queued remotely")
                final = self._wait(client, job_url, report, checkpoint)
                report(96, "fetching results")
                files = self._fetch(client, job_url, final, output_dir, checkpoint)
            except AttemptCancelled:
                if job_url is not None:
                    self._cancel_remote(client, job_url)
                raise
        return ProcessorOutput(
            files=files,
            summary=str(final.get("summary") or ""),
            quality_score=_score(final.get("quality_score")),
            confidence_score=_score(final.get("confidence_score")),
            metrics=final["metrics"] if isinstance(final.get("metrics"), dict) else {},
        )

    def _submit(
        self, client: httpx.Client, input_path: Path, checkpoint: Callable[[], None]
    ) -> httpx.URL:
        # One key for every try of this submission: a service that honours it makes one
        # job even when a try timed out after the service had received it.
        key = {"Idempotency-Key": uuid.uuid4().hex}

        def send() -> httpx.Response:
            with input_path.open("rb") as file:  # reopened by every try: streamed from disk
                files = {"file": (input_path.name, file, "application/octet-stream")}
                return self._send_once(
                    client, "POST", self.base_url, files=files, extra_headers=key
                )

        response: httpx.Response | None = None
        for attempt in self._retrying():
            with attempt:
                checkpoint()
                response = send()
        assert response is not None
        if "location" in response.headers and not response.content.strip():
            return self.base_url.join(response.headers["location"])  # a bare 202 + Location
        body = self._json(response, "the submission")
        if isinstance(body.get("status_url"), str):
            return self.base_url.join(body["status_url"])
        if "location" in response.headers:
            return self.base_url.join(response.headers["location"])
        job_id = body.get("id")
        if not isinstance(job_id, str | int) or not str(job_id).strip():
            raise PermanentError("The remote service accepted the manuscript but gave no job id.")
        path = f"{self.base_url.path.rstrip('/')}/{quote(str(job_id), safe='')}"
        return self.base_url.join(path)

    def _wait(
        self,
        client: httpx.Client,
        job_url: httpx.URL,
        report: Callable[[int, str], None],
        checkpoint: Callable[[], None],
    ) -> dict[str, Any]:
        deadline = time.monotonic() + self.config.job_timeout_seconds
        while True:
            response = self._send(client, "GET", job_url, checkpoint)
            body = self._json(response, "a status request")
            status = str(body.get("status", "")).lower()
            if status in _SUCCEEDED:
                return body
            if status in _FAILED:
                reason = str(body.get("error") or f"the job ended as {status}")[:500]
                retryable = body.get("retryable") is True
                raise ProcessorError(f"The remote service failed: {reason}", retryable=retryable)
            if status not in _RUNNING:
                raise PermanentError(f"The remote service reported an unknown status {status!r}.")
            remote = body.get("progress")
            percent = 5
            if isinstance(remote, int | float) and not isinstance(remote, bool):
                percent = 5 + int(max(0.0, min(float(remote), 100.0)) * 0.9)
            stage = body.get("stage")
            report(percent, stage if isinstance(stage, str) and stage else _RUNNING[status])
            if time.monotonic() >= deadline:
                raise ProcessorError(
                    "The remote service did not finish the job within "
                    f"{self.config.job_timeout_seconds:g} s."
                )
            hint = _retry_after(response)
            time.sleep(min(hint if hint is not None else self.config.poll_interval_seconds, 60))
            checkpoint()

    def _fetch(
        self,
        client: httpx.Client,
        job_url: httpx.URL,
        final: dict[str, Any],
        output_dir: Path,
        checkpoint: Callable[[], None],
    ) -> list[OutputFile]:
        wanted: list[tuple[httpx.URL, str | None]] = []
        entries = final.get("files")
        if isinstance(entries, list) and entries:
            for entry in entries:
                if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
                    raise PermanentError("The remote service listed a result file without a url.")
                name = entry.get("name")
                wanted.append((job_url.join(entry["url"]), name if isinstance(name, str) else None))
        elif isinstance(final.get("result_url"), str):
            wanted.append((job_url.join(final["result_url"]), None))
        else:
            wanted.append((job_url.join(f"{job_url.path.rstrip('/')}/result"), None))
        files: list[OutputFile] = []
        taken: set[str] = set()
        for index, (url, name) in enumerate(wanted, start=1):
            files.append(self._download(client, url, name, index, output_dir, taken, checkpoint))
        return files

    def _download(
        self,
        client: httpx.Client,
        url: httpx.URL,
        name: str | None,
        index: int,
        output_dir: Path,
        taken: set[str],
        checkpoint: Callable[[], None],
    ) -> OutputFile:
        """Stream one result file into ``output_dir`` (retried whole on a transient error)."""
        limit = self.config.max_result_bytes
        for attempt in self._retrying():
            with attempt:
                checkpoint()
                with self._stream(client, url) as response:
                    content_type = response.headers.get("content-type", "application/octet-stream")
                    media = content_type.split(";")[0].strip().lower()
                    suffix = _CONTENT_SUFFIX.get(media, ".bin")
                    fallback = "result" + suffix if index == 1 else f"result-{index}{suffix}"
                    final_name = _safe_name(name or _filename(response) or fallback, fallback)
                    if final_name in taken:
                        final_name = f"{index}-{final_name}"
                    size = 0
                    with (output_dir / final_name).open("wb") as out:
                        try:
                            for chunk in response.iter_bytes(64 * 1024):
                                size += len(chunk)
                                if size > limit:
                                    raise PermanentError(
                                        f"A result file of the remote service is larger than "
                                        f"{limit} bytes."
                                    )
                                out.write(chunk)
                        except httpx.TimeoutException:
                            breaker_for(self.name, self.config).failed()
                            raise Transient(
                                "The remote service stalled sending a result."
                            ) from None
                        except httpx.TransportError:
                            breaker_for(self.name, self.config).failed()
                            raise Transient("A result download was cut off.") from None
                taken.add(final_name)
                return OutputFile(final_name, media)
        raise AssertionError("unreachable: stamina raises the last error")  # pragma: no cover

    @contextlib.contextmanager
    def _stream(self, client: httpx.Client, url: httpx.URL) -> Iterator[httpx.Response]:
        """A streamed GET with the same classification of errors as ``_send_once``."""
        breaker = breaker_for(self.name, self.config)
        breaker.before_call()
        request = client.build_request("GET", url, headers=self._headers_for(url))
        try:
            response = client.send(request, stream=True)
        except httpx.TimeoutException:
            breaker.failed()
            raise Transient("The remote service did not answer in time (a result).") from None
        except httpx.TransportError as exc:
            breaker.failed()
            raise Transient(
                f"The remote service could not be reached ({type(exc).__name__})."
            ) from None
        try:
            if response.status_code in TRANSIENT_STATUSES:
                breaker.failed()
                raise Transient(
                    f"The remote service answered {response.status_code} (a result).",
                    retry_after=_retry_after(response),
                )
            breaker.succeeded()
            if response.status_code >= 400:
                raise PermanentError(
                    f"The remote service refused a result download with {response.status_code}."
                )
            yield response
        finally:
            response.close()

    def _cancel_remote(self, client: httpx.Client, job_url: httpx.URL) -> None:
        """Best effort: the attempt is stopped, tell the service (one try, short timeout)."""
        try:
            client.delete(
                job_url, headers=self._headers_for(job_url), timeout=CANCEL_TIMEOUT_SECONDS
            )
        except httpx.HTTPError as exc:
            log.info("remote_cancel_failed", processor=self.name, error=type(exc).__name__)


def _score(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1:
        return float(value)
    return None


def __getattr__(attribute: str) -> RemoteProcessor:
    """``remote:<name>``: the processor configured as ``name`` in ``REMOTE_PROCESSORS``.

    The registry loads ``app.processors.remote:remote:<name>`` (the colon keeps the
    name from ever meeting a real attribute of this module).
    """
    if attribute.startswith(TARGET_PREFIX):
        name = attribute[len(TARGET_PREFIX) :]
        config = get_settings().remote_processors.get(name)
        if config is not None:
            return RemoteProcessor(name, config)
    raise AttributeError(attribute)
