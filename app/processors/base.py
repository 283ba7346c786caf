"""The contract every processor follows.

A processor is a pure function of an input file and a progress callback: it
reads ``input_path``, writes its result files into ``output_dir`` (which
exists and is empty), reports progress through ``progress(percent, stage)``
and returns a :class:`ProcessorOutput`. It never touches the database; the
worker pool does that around it. Nor does it use the network, with one kind
of exception: remote processors (``app/processors/remote.py``), whose work *is*
a call to another service; they run in a thread of the worker so that their
circuit breaker outlives one attempt.

Errors::

    ProcessorError            the attempt failed; ``retryable`` says whether
      └── PermanentError      a new attempt could succeed (False here: e.g.
                              an undecodable file fails the task at once)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

ProgressCallback = Callable[[int, str], None]
"""``progress(percent, stage)``: percent is 0-100 and never decreases; stage is a short label."""


class ProcessorError(Exception):
    """An attempt failed. ``message`` is a human sentence shown to the user (no traceback)."""

    retryable: bool = True

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        if retryable is not None:
            self.retryable = retryable

    def __reduce__(self) -> tuple[Any, ...]:
        # keep ``retryable`` when the error crosses from a worker process
        return (type(self), (self.message,), {"retryable": self.retryable})


class AttemptCancelled(Exception):
    """Raised inside a processor's ``progress`` call when its attempt was stopped."""


class PermanentError(ProcessorError):
    """A failure that another attempt cannot fix (bad input)."""

    retryable = False


@dataclass(frozen=True, slots=True)
class OutputFile:
    """One result file written into ``output_dir``; ``name`` is its file name there."""

    name: str
    content_type: str


@dataclass(slots=True)
class ProcessorOutput:
    """What a processor hands back. ``files[0]`` is the primary result (``result_url``)."""

    files: list[OutputFile] = field(default_factory=list)
    summary: str = ""
    quality_score: float | None = None
    confidence_score: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


class Processor(Protocol):
    """A kind of work.

    ``cpu_bound`` processors run each attempt in a process of their own, under
    ``PROCESSOR_MEMORY_LIMIT_MB``; stopping the attempt (timeout, cancel, lost
    lease, shutdown) kills that process wherever it is, so they need not report
    progress to be stoppable. The others run in a thread of the worker process,
    which cannot be killed: they must be quick, or call ``progress`` often (the
    call raises ``AttemptCancelled`` once the attempt was stopped).

    A processor may also say ``writes_files = False`` (see :func:`writes_files`):
    it returns no result files, so the worker gives it no attempt directory; and
    ``returns_at_once = True`` (``noop``): it does no work at all, so it is called
    on the worker's event loop, without a thread (it must never block nor wait).
    """

    name: str
    cpu_bound: bool

    def run(
        self, input_path: Path, output_dir: Path, progress: ProgressCallback
    ) -> ProcessorOutput: ...


def writes_files(processor: object) -> bool:
    """Whether ``processor`` may write result files (its ``writes_files``, default True).

    One that says False is handed an ``output_dir`` that does not exist (the worker
    skips creating and removing an attempt directory for it) and must return no
    ``files``; its attempt fails if it does.
    """
    return bool(getattr(processor, "writes_files", True))
