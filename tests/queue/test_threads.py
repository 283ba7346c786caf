"""The thread cache of thread-run attempts: reused threads, never a wait for one."""

from __future__ import annotations

import threading
import time

from app.queue.runner import _ThreadCache


def run_and_wait(cache: _ThreadCache) -> str:
    """Submit one job; the name and identity of the thread that ran it."""
    seen: list[int] = []
    done = threading.Event()

    def job() -> None:
        seen.append(threading.get_ident())
        done.set()

    cache.submit(job)
    assert done.wait(5)
    return str(seen[0])


def test_a_thread_that_came_back_runs_the_next_attempt() -> None:
    cache = _ThreadCache()
    first = run_and_wait(cache)
    time.sleep(0.05)  # the thread is idle again
    assert run_and_wait(cache) == first


def test_a_thread_that_never_comes_back_does_not_hold_up_the_next() -> None:
    cache = _ThreadCache()
    release = threading.Event()
    cache.submit(lambda: release.wait(10) and None)
    try:
        started = time.monotonic()
        run_and_wait(cache)  # a new thread, at once
        assert time.monotonic() - started < 2
    finally:
        release.set()


def test_idle_threads_end_and_new_ones_start_when_needed() -> None:
    cache = _ThreadCache()
    cache.IDLE_SECONDS = 0.1  # type: ignore[misc]
    ident = int(run_and_wait(cache))
    deadline = time.monotonic() + 5
    while any(t.ident == ident for t in threading.enumerate()):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert cache._idle == 0
    run_and_wait(cache)  # served by a new thread
    time.sleep(0.05)
    assert cache._idle == 1
