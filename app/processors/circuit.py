"""A circuit breaker for calls to a remote service, shared by the threads of a process.

Closed → (``failures`` consecutive failures) → open: calls fail at once with
CircuitOpen → (``reset_seconds``) → half-open: one trial call; its success
closes the circuit, its failure opens it again.

Hand-written (50 lines) rather than pybreaker's, which holds one lock for the
whole duration of every call and would so serialise the concurrent attempts
of a worker; purgatory's is asyncio-only, and processors run in threads.
"""

from __future__ import annotations

import threading
import time

from app.config import RemoteProcessorSettings
from app.processors.base import ProcessorError


class CircuitOpen(ProcessorError):
    """The service failed too often lately: not called until the breaker lets a trial through."""


class CircuitBreaker:
    """Thread-safe; the lock is held only to read or change the state, never during a call."""

    def __init__(self, failures: int, reset_seconds: float) -> None:
        self.failures = failures
        self.reset_seconds = reset_seconds
        self._lock = threading.Lock()
        self._count = 0
        self._opened_at: float | None = None
        self._trial = False

    @property
    def state(self) -> str:
        with self._lock:
            if self._opened_at is None:
                return "closed"
            expired = time.monotonic() - self._opened_at >= self.reset_seconds
            return "half-open" if expired else "open"

    def before_call(self) -> None:
        """Raise CircuitOpen unless a call may go out now."""
        with self._lock:
            if self._opened_at is None:
                return
            waited = time.monotonic() - self._opened_at
            if waited < self.reset_seconds or self._trial:
                left = max(self.reset_seconds - waited, 0.0)
                raise CircuitOpen(
                    f"The remote service failed {self._count} times in a row; it is not "
                    f"called again for {left:.0f} s."
                )
            self._trial = True  # half-open: this call is the trial

    def succeeded(self) -> None:
        with self._lock:
            self._count, self._opened_at, self._trial = 0, None, False

    def failed(self) -> None:
        with self._lock:
            self._count += 1
            self._trial = False
            if self._opened_at is not None or self._count >= self.failures:
                self._opened_at = time.monotonic()


_breakers: dict[str, CircuitBreaker] = {}
_breakers_lock = threading.Lock()


def breaker_for(name: str, config: RemoteProcessorSettings) -> CircuitBreaker:
    """The process-wide breaker of processor ``name`` (shared by its concurrent attempts)."""
    with _breakers_lock:
        breaker = _breakers.get(name)
        if breaker is None:
            breaker = _breakers[name] = CircuitBreaker(
                config.breaker_failures, config.breaker_reset_seconds
            )
        return breaker
