"""The processor registry: built-ins plus third-party processors.

Third-party processors register through the Python entry point group
``novel_task_manager.processors`` (``name = "package.module:processor"``), or
through the ``PROCESSORS`` setting (``name=module:attribute,…``) without
packaging. Processors are imported on first use.
"""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import entry_points

from app.processors.base import Processor

ENTRY_POINT_GROUP = "novel_task_manager.processors"
BUILT_IN = {
    "analyze": "app.processors.analyze:processor",
    "noop": "app.processors.noop:processor",
}
_extra: dict[str, str] = {}


class UnknownProcessor(KeyError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def configure(extra: dict[str, str]) -> None:
    """Add processors named in settings (``{"name": "module:attribute"}``)."""
    _extra.update(extra)
    _load.cache_clear()
    _targets.cache_clear()


@cache
def installed() -> dict[str, str]:
    """Processors registered by installed packages (entry points), read once per process:
    the scan costs a tenth of a second, and each attempt's process would pay it again."""
    return {entry.name: entry.value for entry in entry_points(group=ENTRY_POINT_GROUP)}


@cache
def _targets() -> dict[str, str]:
    targets = dict(BUILT_IN)
    for name, value in installed().items():
        targets.setdefault(name, value)
    targets.update(_extra)
    return targets


def processor_names() -> list[str]:
    return sorted(_targets())


@cache
def _load(target: str) -> Processor:
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    loaded: Processor = getattr(module, attribute or "processor")
    return loaded


def get_processor(name: str) -> Processor:
    """The processor called ``name``; UnknownProcessor when there is none."""
    target = _targets().get(name)
    if target is None:
        raise UnknownProcessor(name)
    return _load(target)
