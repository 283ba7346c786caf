"""The processors a client may choose, described for a form's select."""

from __future__ import annotations

import sys
from typing import Any

import anyio

from app.config import Settings
from app.log import get_logger
from app.processors import registry
from app.processors.base import Processor

log = get_logger(__name__)


def _first_line(text: str | None) -> str | None:
    line = (text or "").strip().split("\n", 1)[0].strip()
    return line or None


def describe(processor: Processor) -> str:
    """Its ``description``; else the first line of its class's or module's docstring."""
    described = getattr(processor, "description", None)
    if isinstance(described, str) and described.strip():
        return described.strip()
    module = sys.modules.get(type(processor).__module__)
    return (
        _first_line(type(processor).__doc__)
        or _first_line(module.__doc__ if module else None)
        or processor.name
    )


def _accepted(processor: Processor, allowed: list[str]) -> list[str]:
    """What an upload to it may be: its ``accepted_extensions`` that the service allows."""
    own = getattr(processor, "accepted_extensions", None)
    if not own:
        return list(allowed)
    return [ext for ext in allowed if ext in {str(e).lower() for e in own}]


def _describe_all(allowed: list[str]) -> list[dict[str, Any]]:
    described = []
    for name in registry.processor_names():
        try:
            processor = registry.get_processor(name)
        except Exception:  # a plug-in that fails to import is left out of the list
            log.warning("processor_unavailable", processor=name, exc_info=True)
            continue
        described.append(
            {
                "name": name,
                "description": describe(processor),
                "accepted_extensions": _accepted(processor, allowed),
            }
        )
    return described


async def list_processors(settings: Settings) -> list[dict[str, Any]]:
    """Every registered processor, by name; importing one is blocking, so it runs in a thread."""
    return await anyio.to_thread.run_sync(_describe_all, list(settings.allowed_extensions))
