"""Imported by the forkserver only (``set_forkserver_preload``), never by the worker itself.

Importing it makes the forkserver die with the thread that started it (a
thread of the worker process that lives as long as the process): a SIGKILLed
worker leaves no forkserver behind, and the attempt processes it forked,
which die with the forkserver, go with it. It also preloads what every
attempt needs, so a child starts without importing anything.
"""

from __future__ import annotations

import app.processors.analyze  # noqa: F401 - preloaded for the children
import app.queue.child as _child
from app.processors import registry

_child.die_with_parent()
registry.installed()  # the entry-point scan, once for every child
