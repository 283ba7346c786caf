"""A small fake of a remote processing service, served by uvicorn on loopback.

It speaks the protocol of ``app/processors/remote.py``. The first segment of
the path picks a behaviour, so one server plays every kind of service:

- ``/ok/jobs``: accepts, reports ``running`` once, then ``succeeded`` with two
  result files (``report.json`` and ``notes.md``) built from the manuscript;
- ``/located/jobs``: like ``ok``, but the submission's answer is a bare 202
  whose ``Location`` names the job;
- ``/progress/jobs``: reports 0, 25, 50, 75 % with a stage each, then succeeds
  with a single result at ``<job>/result`` (no ``files`` list);
- ``/flaky/jobs``: answers 503 (with ``Retry-After: 0``) to the first two
  requests of every kind, then behaves like ``ok``;
- ``/down/jobs``: answers 500 to everything;
- ``/reject/jobs``: answers 400 to the submission;
- ``/fail/jobs``: accepts, then reports the job ``failed``;
- ``/hang/jobs``: accepts, then never answers a status request;
- ``/slow/jobs``: accepts, then stays ``running`` for ever (to be cancelled).

Every request is recorded (method, path, headers) in ``requests``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.e2e.server import free_port


@dataclass
class Job:
    kind: str
    text: str
    polls: int = 0
    cancelled: bool = False


@dataclass
class FakeService:
    base_url: str = ""
    jobs: dict[str, Job] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    closing: bool = False

    def url(self, kind: str) -> str:
        return f"{self.base_url}/{kind}/jobs"

    def calls(self, kind: str) -> list[tuple[str, str]]:
        return [(m, p) for m, p, _ in self.requests if p.startswith(f"/{kind}/")]

    def app(self) -> Starlette:
        async def submit(request: Request) -> Response:
            kind = request.path_params["kind"]
            self._record(request)
            if (failure := self._failure(kind, "submit")) is not None:
                return failure
            if kind == "reject":
                return JSONResponse({"error": "unsupported"}, status_code=400)
            async with request.form() as form:
                upload = form["file"]
                assert not isinstance(upload, str)
                text = (await upload.read()).decode("utf-8", "replace")
            job_id = uuid.uuid4().hex
            self.jobs[job_id] = Job(kind, text)
            if kind == "located":  # no body: the job is where Location says
                return Response(status_code=202, headers={"Location": f"/located/jobs/{job_id}"})
            return JSONResponse({"id": job_id, "status": "queued"}, status_code=202)

        async def status(request: Request) -> Response:
            kind, job_id = request.path_params["kind"], request.path_params["job"]
            self._record(request)
            if request.method == "DELETE":
                self.jobs[job_id].cancelled = True
                return Response(status_code=204)
            if (failure := self._failure(kind, "status")) is not None:
                return failure
            job = self.jobs[job_id]
            job.polls += 1
            if kind == "hang":
                while not self.closing:  # "for ever": until the server stops
                    await asyncio.sleep(0.05)
                return PlainTextResponse("shutting down", status_code=503)
            if kind == "fail":
                return JSONResponse({"status": "failed", "error": "the model rejected the text"})
            if kind == "slow":
                return JSONResponse({"status": "running", "progress": 10, "stage": "thinking"})
            if kind == "progress":
                if job.polls <= 4:
                    stage = ["reading", "parsing", "thinking", "writing"][job.polls - 1]
                    body = {"status": "running", "progress": (job.polls - 1) * 25, "stage": stage}
                    return JSONResponse(body)
                return JSONResponse({"status": "succeeded", "summary": "Counted."})
            if job.polls == 1:
                return JSONResponse({"status": "queued"})
            return JSONResponse(
                {
                    "status": "succeeded",
                    "summary": f"{len(job.text.split())} words",
                    "metrics": {"words": len(job.text.split())},
                    "quality_score": 0.5,
                    "files": [
                        {"name": "report.json", "url": f"{job_id}/files/report"},
                        {"name": "../notes.md", "url": f"/{kind}/jobs/{job_id}/files/notes"},
                    ],
                }
            )

        async def result(request: Request) -> Response:
            kind, job_id = request.path_params["kind"], request.path_params["job"]
            self._record(request)
            if (failure := self._failure(kind, "result")) is not None:
                return failure
            job = self.jobs[job_id]
            which = request.path_params.get("name", "result")
            if which == "notes":
                return PlainTextResponse(
                    f"# Notes\n\n{job.text[:40]}\n", media_type="text/markdown"
                )
            body = {"words": len(job.text.split()), "kind": kind}
            return Response(json.dumps(body), media_type="application/json")

        return Starlette(
            routes=[
                Route("/{kind}/jobs", submit, methods=["POST"]),
                Route("/{kind}/jobs/{job}", status, methods=["GET", "DELETE"]),
                Route("/{kind}/jobs/{job}/result", result, methods=["GET"]),
                Route("/{kind}/jobs/{job}/files/{name}", result, methods=["GET"]),
            ]
        )

    def _record(self, request: Request) -> None:
        self.requests.append((request.method, request.url.path, dict(request.headers)))

    def _failure(self, kind: str, step: str) -> Response | None:
        if kind == "down":
            return PlainTextResponse("internal error", status_code=500)
        if kind == "flaky":
            self.counts[(kind, step)] += 1
            if self.counts[(kind, step)] <= 2:
                return PlainTextResponse("busy", status_code=503, headers={"Retry-After": "0"})
        return None


@contextmanager
def run_fake_service() -> Iterator[FakeService]:
    """Serve a FakeService on a free loopback port in a thread of this process."""
    service = FakeService()
    port = free_port()
    config = uvicorn.Config(
        service.app(),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        log_config=None,  # leave the process's logging alone (later tests read it)
        timeout_graceful_shutdown=1,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="fake-remote-service", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the fake remote service did not start")
        time.sleep(0.02)
    service.base_url = f"http://127.0.0.1:{port}"
    try:
        yield service
    finally:
        service.closing = True
        server.should_exit = True
        thread.join(10)


def settings_for(url: str, **overrides: Any) -> dict[str, Any]:
    """A remote processor's settings with timings short enough for tests."""
    values: dict[str, Any] = {
        "url": url,
        "headers": {"Authorization": "Bearer remote-secret"},
        "connect_timeout_seconds": 2,
        # long enough that a loaded machine never turns a slow answer into a retry
        # (tests count requests); the hanging-service test sets its own, shorter
        "read_timeout_seconds": 5,
        "job_timeout_seconds": 20,
        "poll_interval_seconds": 0.05,
        "retry_attempts": 3,
        "retry_initial_seconds": 0.01,
        "retry_max_seconds": 0.05,
        "breaker_failures": 5,
        "breaker_reset_seconds": 60,
    }
    values.update(overrides)
    return values
