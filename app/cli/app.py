"""What every ``ntm`` command shares: the Typer app, output, errors, exit codes.

Output: tables and progress bars with Rich (progress on stderr, results on
stdout); ``--json`` on every command prints machine-readable JSON instead
(``watch --json`` one ``task_update`` per line as they come). A server's
problem+json error, or a server that cannot be reached, is one line on stderr:
``ntm: error: Task … not found (404 task_not_found)``.

Exit codes (``upload --wait`` and ``watch`` follow the tasks' final states,
the worst one winning): ``0`` done, every task completed; ``1`` a task failed;
``2`` a bad command line; ``3`` a task was cancelled, none failed; ``4`` the
server refused a request or could not be reached, or nobody is signed in.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterable
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from app.cli import credentials as creds
from app.cli.client import CliError

EXIT_OK = 0
"""Done; every task followed completed."""
EXIT_FAILED = 1
"""A task followed failed."""
EXIT_USAGE = 2
"""Bad command line (Click's own code)."""
EXIT_CANCELLED = 3
"""A task followed was cancelled (and none failed)."""
EXIT_ERROR = 4
"""The server refused a request, could not be reached, or no credential is stored."""


app = typer.Typer(
    name="ntm",
    help="Novel Task Manager from the command line: upload manuscripts, watch them, get reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

P = ParamSpec("P")
R = TypeVar("R")
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
TransportOption = Annotated[
    str,
    typer.Option(
        "--transport",
        help="How to follow progress: auto (WebSocket, falling back to SSE), websocket, sse.",
    ),
]


def stdout() -> Console:
    return Console(highlight=False, soft_wrap=True)


def stderr() -> Console:
    return Console(stderr=True, highlight=False)


def fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    stderr().print(f"ntm: error: {message}", markup=False, soft_wrap=True)
    return typer.Exit(code)


def handles_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Show CliError and NotSignedIn as one line and exit with EXIT_ERROR."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except (CliError, creds.NotSignedIn) as exc:
            raise fail(str(exc)) from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None

    return wrapper


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def exit_code_for(tasks: Iterable[dict[str, Any]]) -> int:
    statuses = {task["status"] for task in tasks}
    if "failed" in statuses:
        return EXIT_FAILED
    if "cancelled" in statuses:
        return EXIT_CANCELLED
    return EXIT_OK
