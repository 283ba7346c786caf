"""The remote (``http``) processor against a fake service on loopback.

The processor is called as the worker calls it (``run(input, output_dir,
progress)``, in a thread); ``test_remote_live.py`` runs it inside a real
server's worker pool.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import RemoteProcessorSettings, Settings
from app.processors import circuit, remote
from app.processors.base import AttemptCancelled, PermanentError, ProcessorError
from tests.processors.remote_service import FakeService, run_fake_service, settings_for

TEXT = "It is a truth universally acknowledged, that a single man in possession of a good fortune"


@pytest.fixture(scope="module")
def service() -> Iterator[FakeService]:
    with run_fake_service() as fake:
        yield fake


@pytest.fixture
def manuscript(tmp_path: Path) -> Path:
    path = tmp_path / "stored-upload.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


class Recorder:
    """The worker's progress callback: keeps every call; raises once ``stop_after`` is reached."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.calls: list[tuple[int, str]] = []
        self.stop_after = stop_after

    def __call__(self, percent: int, stage: str) -> None:
        if self.stop_after is not None and len(self.calls) >= self.stop_after:
            raise AttemptCancelled("stopped")
        self.calls.append((percent, stage))


def processor(url: str, **overrides: Any) -> remote.RemoteProcessor:
    """A processor with a name of its own, so its circuit breaker is its own."""
    config = RemoteProcessorSettings(**settings_for(url, **overrides))
    return remote.RemoteProcessor(f"remote-{uuid.uuid4().hex[:8]}", config)


def run(proc: remote.RemoteProcessor, manuscript: Path, out: Path, progress: Recorder) -> Any:
    out.mkdir(exist_ok=True)
    return proc.run(manuscript, out, progress)


def test_success_stores_every_remote_file_and_the_result(
    service: FakeService, manuscript: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    output = run(processor(service.url("ok")), manuscript, out, Recorder())

    assert [(f.name, f.content_type) for f in output.files] == [
        ("report.json", "application/json"),
        ("notes.md", "text/markdown"),  # "../notes.md" from the service, kept to its name
    ]
    assert sorted(p.name for p in out.iterdir()) == ["notes.md", "report.json"]
    assert json.loads((out / "report.json").read_text()) == {"words": 16, "kind": "ok"}
    assert (out / "notes.md").read_text() == f"# Notes\n\n{TEXT[:40]}\n"
    assert output.summary == "16 words"
    assert output.metrics == {"words": 16}
    assert output.quality_score == 0.5
    assert output.confidence_score is None
    sent = [h.get("authorization") for _, path, h in service.requests if path.startswith("/ok/")]
    assert sent == ["Bearer remote-secret"] * 5  # submit, 2 polls, 2 files


def test_a_job_named_by_location_only_is_followed(
    service: FakeService, manuscript: Path, tmp_path: Path
) -> None:
    output = run(processor(service.url("located")), manuscript, tmp_path / "out", Recorder())
    assert [f.name for f in output.files] == ["report.json", "notes.md"]
    assert [m for m, _ in service.calls("located")] == ["POST", "GET", "GET", "GET", "GET"]


def test_remote_progress_and_stages_are_relayed_in_order(
    service: FakeService, manuscript: Path, tmp_path: Path
) -> None:
    progress = Recorder()
    output = run(processor(service.url("progress")), manuscript, tmp_path / "out", progress)

    changes = [call for i, call in enumerate(progress.calls) if progress.calls[i - 1] != call]
    assert changes == [
        (1, "submitting"),
        (5, "queued remotely"),
        (5, "reading"),
        (27, "parsing"),
        (50, "thinking"),
        (72, "writing"),
        (96, "fetching results"),
    ]
    percents = [p for p, _ in progress.calls]
    assert percents == sorted(percents)
    assert [(f.name, f.content_type) for f in output.files] == [("result.json", "application/json")]
    assert output.summary == "Counted."


def test_transient_errors_are_retried_with_backoff(
    service: FakeService, manuscript: Path, tmp_path: Path
) -> None:
    output = run(processor(service.url("flaky")), manuscript, tmp_path / "out", Recorder())

    assert [f.name for f in output.files] == ["report.json", "notes.md"]
    assert service.counts[("flaky", "submit")] == 3  # two 503s, then accepted
    keys = [
        h["idempotency-key"] for m, p, h in service.requests if (m, p) == ("POST", "/flaky/jobs")
    ]
    assert len(keys) == 3
    assert len(set(keys)) == 1  # the tries of one submission share their key
    assert service.counts[("flaky", "status")] == 4  # two 503s, queued, succeeded
    assert service.counts[("flaky", "result")] == 4  # two 503s, then both files


def test_a_failing_service_fails_the_attempt_retryably_then_opens_the_circuit(
    service: FakeService, manuscript: Path, tmp_path: Path
) -> None:
    proc = processor(service.url("down"), retry_attempts=3, breaker_failures=5)
    before = len(service.calls("down"))

    with pytest.raises(ProcessorError) as first:
        run(proc, manuscript, tmp_path / "a", Recorder())
    assert first.value.retryable is True
    assert first.value.message.startswith("The remote service answered 500 (POST ")
    assert len(service.calls("down")) - before == 3

    # two more failed requests reach the limit of five: the circuit opens
    with pytest.raises(circuit.CircuitOpen) as second:
        run(proc, manuscript, tmp_path / "b", Recorder())
    assert len(service.calls("down")) - before == 5
    assert second.value.retryable is True

    started = time.monotonic()
    with pytest.raises(circuit.CircuitOpen) as third:
        run(proc, manuscript, tmp_path / "c", Recorder())
    assert time.monotonic() - started < 1.0  # no request, no backoff
    assert len(service.calls("down")) - before == 5  # not called at all
    assert "failed 5 times in a row; it is not called again for" in third.value.message


def test_the_circuit_lets_one_trial_through_after_its_reset_time(
    service: FakeService, manuscript: Path, tmp_path: Path
) -> None:
    down = processor(service.url("down"), retry_attempts=2, breaker_failures=2)
    down.config.breaker_reset_seconds = 1.0
    with pytest.raises(ProcessorError):
        run(down, manuscript, tmp_path / "a", Recorder())
    breaker = circuit.breaker_for(down.name, down.config)
    assert breaker.state == "open"
    time.sleep(1.05)
    assert breaker.state == "half-open"
    calls = len(service.calls("down"))
    with pytest.raises(circuit.CircuitOpen):  # the trial failed: open again at once
        run(down, manuscript, tmp_path / "b", Recorder())
    assert len(service.calls("down")) == calls + 1

    # the same breaker, a healthy service: the trial succeeds and closes the circuit
    healthy = remote.RemoteProcessor(down.name, down.config.model_copy())
    healthy.base_url = httpx.URL(service.url("ok"))
    time.sleep(1.05)
    output = run(healthy, manuscript, tmp_path / "c", Recorder())
    assert [f.name for f in output.files] == ["report.json", "notes.md"]
    assert breaker.state == "closed"


def test_a_refused_submission_fails_the_task_at_once(
    service: FakeService, manuscript: Path, tmp_path: Path
) -> None:
    before = len(service.calls("reject"))
    with pytest.raises(PermanentError) as caught:
        run(processor(service.url("reject")), manuscript, tmp_path / "out", Recorder())
    assert caught.value.retryable is False
    assert caught.value.message.startswith("The remote service refused the request with 400")
    assert len(service.calls("reject")) - before == 1  # no retry


def test_a_job_the_service_failed_fails_the_task_with_its_reason(
    service: FakeService, manuscript: Path, tmp_path: Path
) -> None:
    with pytest.raises(ProcessorError) as caught:
        run(processor(service.url("fail")), manuscript, tmp_path / "out", Recorder())
    assert caught.value.retryable is False
    assert caught.value.message == "The remote service failed: the model rejected the text"


def test_a_hanging_service_times_out_and_is_retried_then_gives_up(
    service: FakeService, manuscript: Path, tmp_path: Path
) -> None:
    proc = processor(service.url("hang"), read_timeout_seconds=0.3, retry_attempts=2)
    started = time.monotonic()
    with pytest.raises(ProcessorError) as caught:
        run(proc, manuscript, tmp_path / "out", Recorder())
    elapsed = time.monotonic() - started
    assert caught.value.retryable is True
    assert caught.value.message.startswith("The remote service did not answer in time (GET ")
    assert [m for m, _ in service.calls("hang")][-2:] == ["GET", "GET"]
    assert 0.6 <= elapsed < 5  # two tries of 0.3 s, a short backoff between them


def test_a_job_that_never_ends_fails_after_the_job_timeout(
    service: FakeService, manuscript: Path, tmp_path: Path
) -> None:
    proc = processor(service.url("slow"), job_timeout_seconds=0.3)
    with pytest.raises(ProcessorError) as caught:
        run(proc, manuscript, tmp_path / "out", Recorder())
    assert caught.value.retryable is True
    assert caught.value.message == "The remote service did not finish the job within 0.3 s."


def test_a_stopped_attempt_cancels_the_remote_job(
    service: FakeService, manuscript: Path, tmp_path: Path
) -> None:
    with pytest.raises(AttemptCancelled):
        run(processor(service.url("slow")), manuscript, tmp_path / "out", Recorder(stop_after=6))
    methods = [m for m, _ in service.calls("slow")]
    assert methods[0] == "POST"
    assert methods[-1] == "DELETE"
    job_id = service.calls("slow")[-1][1].rsplit("/", 1)[1]
    assert service.jobs[job_id].cancelled is True


def test_credentials_go_only_to_the_service_origin() -> None:
    proc = processor("https://ocr.example:8443/v1/jobs")
    assert proc._headers_for(httpx.URL("https://ocr.example:8443/v1/jobs/7/result")) == {
        "Authorization": "Bearer remote-secret"
    }
    assert proc._headers_for(httpx.URL("https://bucket.storage.example/7/result")) == {}
    assert proc._headers_for(httpx.URL("http://ocr.example:8443/v1/jobs/7")) == {}


def test_remote_processors_are_registered_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    value = json.dumps({"http": settings_for("http://127.0.0.1:9/jobs")})
    monkeypatch.setenv("REMOTE_PROCESSORS", value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.processors == {"http": "app.processors.remote:remote:http"}
    assert settings.remote_processors["http"].read_timeout_seconds == 5
    monkeypatch.delenv("REMOTE_PROCESSORS")

    with pytest.raises(ValueError, match="'analyze' is not a free processor name"):
        Settings(_env_file=None, remote_processors={"analyze": {"url": "http://x/jobs"}})  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="url"):
        Settings(_env_file=None, remote_processors={"http": {"headers": {}}})  # type: ignore[call-arg]


def test_the_registry_loads_a_configured_remote_processor(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.config import get_settings
    from app.processors import registry

    monkeypatch.setenv("REMOTE_PROCESSORS", json.dumps({"ocr": {"url": "http://127.0.0.1:9/j"}}))
    get_settings.cache_clear()
    try:
        registry.configure(get_settings().processors)
        loaded = registry.get_processor("ocr")
        assert isinstance(loaded, remote.RemoteProcessor)
        assert (loaded.name, loaded.cpu_bound, str(loaded.base_url)) == (
            "ocr",
            False,
            "http://127.0.0.1:9/j",
        )
        assert "ocr" in registry.processor_names()
    finally:
        registry._extra.pop("ocr", None)
        registry._load.cache_clear()
        registry._targets.cache_clear()
        get_settings.cache_clear()
