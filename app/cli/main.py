"""The ``ntm`` console script: every command registered on one Typer app.

``app.cli.app`` holds what the commands share (output, errors, exit codes);
the commands live in ``account`` (login, logout), ``follow`` (upload, watch)
and ``tasks`` (ls, get, cancel, retry, rm, stats), imported here in the order
``ntm --help`` lists them.
"""

from __future__ import annotations

from app.cli import account, follow, tasks
from app.cli.app import EXIT_CANCELLED, EXIT_ERROR, EXIT_FAILED, EXIT_OK, EXIT_USAGE, app

__all__ = [
    "EXIT_CANCELLED",
    "EXIT_ERROR",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "account",
    "app",
    "follow",
    "tasks",
]


def main() -> None:
    """The ``ntm`` console script."""
    app()
