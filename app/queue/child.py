"""The process that runs one attempt of a CPU-bound processor.

Each CPU-bound attempt gets a process of its own, forked by the forkserver
(see ``runner.py``), so stopping an attempt is killing its process: a
processor that never reports progress, spins in C code or allocates without
end is stopped all the same. The child

- dies with its parent: ``PR_SET_PDEATHSIG`` (SIGKILL when the forkserver
  dies, which itself dies with the worker process), and a thread that exits
  the process as soon as the worker's end of the control pipe closes;
- runs at nice +``niceness`` under an address-space limit (``RLIMIT_AS``);
- sends ``("progress", percent, stage)`` messages and one final message on
  the results pipe: ``("done", output)``, ``("error", ProcessorError)``,
  ``("memory",)``, ``("unknown",)`` or ``("crashed", type name, traceback)``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

from app.processors import registry
from app.processors.base import ProcessorError
from app.services import storage

PR_SET_PDEATHSIG = 1
EXIT_ORPHANED = 70
"""Exit status of a child whose worker process went away."""
EXIT_OUT_OF_MEMORY = 71
"""Exit status of a child that ran out of memory even to report it."""


def die_with_parent(signum: int = signal.SIGKILL) -> bool:
    """Ask Linux to send ``signum`` to this process when its parent thread dies.

    Returns False where that is not available (other systems): the pipe
    watch of ``watch_parent`` still ends an orphaned child.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def watch_parent(control: Any) -> None:
    """Exit at once when the worker's end of ``control`` closes (it died or gave up on us).

    The worker never writes to the pipe; EOF is the only thing it can read.
    """
    with contextlib.suppress(EOFError, OSError):
        while True:
            control.recv()
    os._exit(EXIT_ORPHANED)


def limit_memory(megabytes: int) -> None:
    """Cap this process's address space; 0 means no limit."""
    if megabytes > 0:
        limit = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def run_attempt(
    control: Any,
    results: Any,
    name: str,
    input_path: str,
    output_dir: str,
    extra_processors: dict[str, str],
    memory_limit_mb: int,
    niceness: int,
) -> None:
    """The child's entry point (multiprocessing ``Process`` target)."""
    # Ctrl-C in a terminal reaches the whole process group: the worker decides what
    # happens to its attempts (finish within the grace period, else killed and handed
    # back), so the attempt must not die of KeyboardInterrupt and count as a failure.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()
    # Likewise a service manager may send SIGTERM to every process of the service:
    # the worker stops (kills) its attempts itself when it stops.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=watch_parent, args=(control,), name="parent-watch", daemon=True).start()
    with contextlib.suppress(OSError):  # not permitted everywhere; the work still runs
        os.nice(niceness)
    registry.configure(extra_processors)

    def progress(percent: int, stage: str) -> None:
        results.send(("progress", int(percent), str(stage)))

    message: tuple[Any, ...]
    try:
        processor = registry.get_processor(name)
        limit_memory(memory_limit_mb)  # after the imports, before the work
        message = ("done", processor.run(Path(input_path), Path(output_dir), progress))
    except MemoryError:
        message = ("memory",)  # the frames holding the memory are gone once we are here
    except ProcessorError as exc:
        message = ("error", exc)
    except registry.UnknownProcessor:
        message = ("unknown",)
    except OSError as exc:
        if exc.errno not in storage.UNWRITABLE:
            message = ("crashed", type(exc).__name__, traceback.format_exc(limit=20))
        else:  # the disk, not the processor: worth another attempt later
            message = ("error", ProcessorError(storage.describe_write_error(exc)))
    except BaseException as exc:  # any failure of a processor ends its attempt
        message = ("crashed", type(exc).__name__, traceback.format_exc(limit=20))
    try:
        results.send(message)
    except MemoryError:
        os._exit(EXIT_OUT_OF_MEMORY)
    except Exception as exc:  # e.g. a result that cannot be pickled
        results.send(("crashed", type(exc).__name__, traceback.format_exc(limit=20)))
