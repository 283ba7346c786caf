"""The ``ntm`` commands.

Output: tables and progress bars with Rich (progress on stderr, results on
stdout); ``--json`` on every command prints machine-readable JSON instead
(``watch --json`` one ``task_update`` per line as they come). A server's
problem+json error, or a server that cannot be reached, is one line on stderr:
``ntm: error: Task … not found (404 task_not_found)``.

Exit codes (``upload --wait`` and ``watch`` follow the tasks' final states,
the worst one winning):
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import httpx
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from app.cli import credentials as creds
from app.cli.client import TERMINAL, Api, ApiError, CliError, describe
from app.cli.live import follow

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

__doc__ += "\n".join(
    f"``{code}`` {meaning}"
    for code, meaning in (
        (EXIT_OK, "done, every task completed"),
        (EXIT_FAILED, "a task failed"),
        (EXIT_USAGE, "bad command line"),
        (EXIT_CANCELLED, "a task was cancelled, none failed"),
        (EXIT_ERROR, "the server refused a request or could not be reached; not signed in"),
    )
)

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


# --- login ---------------------------------------------------------------------------------


@app.command()
@handles_errors
def login(
    url: Annotated[
        str | None, typer.Option("--url", help="The server (default: NTM_URL, the stored one)")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option("--api-key", help="An API key (asked for when not given)")
    ] = None,
    email: Annotated[
        str | None, typer.Option("--email", "-e", help="Sign in with email and password instead")
    ] = None,
    password: Annotated[
        str | None, typer.Option("--password", help="With --email (asked for when not given)")
    ] = None,
    json_: JsonOption = False,
) -> None:
    """Sign in and keep the credential in your config directory (mode 0600)."""
    server = (url or creds.server_url()).rstrip("/")
    expires_at: str | None = None
    if email is not None:
        password = password or typer.prompt("Password", hide_input=True)
        try:
            response = httpx.post(
                f"{server}/api/v1/auth/login",
                data={"username": email, "password": password},
                timeout=30,
            )
        except httpx.TransportError as exc:
            raise CliError(f"cannot reach {server}: {exc}") from None
        if response.status_code >= 400:
            raise describe(response)
        body = response.json()
        token, kind = body["access_token"], "jwt"
        expires = datetime.now(UTC) + timedelta(seconds=int(body["expires_in"]))
        expires_at = expires.isoformat(timespec="seconds")
    else:
        token = (api_key or typer.prompt("API key", hide_input=True)).strip()
        kind = "api_key"
    candidate = creds.Credentials(url=server, token=token, kind=kind, expires_at=expires_at)
    with Api(candidate) as api:
        me = api.json("GET", "/users/me")
    candidate.email = me["email"]
    path = creds.save(candidate)
    if json_:
        print_json({"url": server, "email": me["email"], "kind": kind, "path": str(path)})
        return
    what = "API key" if kind == "api_key" else f"access token (valid until {expires_at})"
    stdout().print(f"Signed in to {server} as {me['email']}; the {what} is kept in {path}.")


@app.command()
@handles_errors
def logout(json_: JsonOption = False) -> None:
    """Forget the stored credential."""
    removed = creds.remove()
    if json_:
        print_json({"removed": removed, "path": str(creds.credentials_path())})
    else:
        stdout().print("Signed out." if removed else "Not signed in.")


# --- upload and watch ----------------------------------------------------------------------


def _label(task: dict[str, Any]) -> str:
    status = task["status"]
    if status == "failed":
        return f"failed: {task.get('error_message') or ''}".strip()
    if status in {"processing", "pending"} and task.get("stage"):
        return f"{status} · {task['stage']}"
    return str(status)


def watch_tasks(
    api: Api, tasks: list[dict[str, Any]], *, output: str, transport: str
) -> list[dict[str, Any]]:
    """Follow ``tasks`` until each is terminal; their final states.

    ``output``: ``bars`` (one live bar per task on stderr, then a line per task on
    stdout), ``json`` (every update as a JSON line) or ``quiet``.
    """
    states = {task["id"]: dict(task) for task in tasks}
    open_ids = [task_id for task_id, task in states.items() if task["status"] not in TERMINAL]
    if output != "bars":
        for task_id, task in states.items():
            if task["status"] in TERMINAL and output == "json":
                print_json({"type": "task_update", "task_id": task_id, **_update_fields(task)})
        for update in follow(api, open_ids, transport):
            states[update["task_id"]].update(_update_fields(update))
            if output == "json":
                print_json(update)
        return list(states.values())
    progress = Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[state]}", markup=False),
        TimeRemainingColumn(elapsed_when_finished=True),
        console=stderr(),
    )
    with progress:
        bars = {
            task_id: progress.add_task(
                task["file_name"][:40], total=100, completed=task["progress"], state=_label(task)
            )
            for task_id, task in states.items()
        }
        for update in follow(api, open_ids, transport):
            task = states[update["task_id"]]
            task.update(_update_fields(update))
            progress.update(bars[task["id"]], completed=task["progress"], state=_label(task))
    console = stdout()
    for task in states.values():
        console.print(f"{task['status']:<10} {task['id']}  {task['file_name']}", markup=False)
        if task["status"] == "failed" and task.get("error_message"):
            console.print(f"           {task['error_message']}", markup=False)
    return list(states.values())


def _update_fields(source: dict[str, Any]) -> dict[str, Any]:
    keys = ("status", "progress", "stage", "result_url", "error_message")
    return {key: source.get(key) for key in keys}


@app.command()
@handles_errors
def upload(
    files: Annotated[
        list[Path],
        typer.Argument(help="Manuscripts (.txt, .md)", exists=True, dir_okay=False, readable=True),
    ],
    project: Annotated[
        str | None, typer.Option("--project", "-p", help="A project's name or id")
    ] = None,
    priority: Annotated[
        int | None, typer.Option("--priority", min=0, max=10, help="0-10, higher runs first")
    ] = None,
    processor: Annotated[
        str | None, typer.Option("--processor", help="The processor (default: analyze)")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", "-w", help="Follow the tasks until they end")
    ] = False,
    transport: TransportOption = "auto",
    json_: JsonOption = False,
) -> None:
    """Upload manuscripts (one task each), with a progress bar while each one streams."""
    with Api(creds.current()) as api:
        project_id = api.project_id(project) if project else None
        created: list[dict[str, Any]] = []
        refused = 0
        progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=stderr(),
            disable=json_,
        )
        with progress:
            for path in files:
                bar = progress.add_task(path.name[:40], total=path.stat().st_size)
                try:
                    task = api.upload(
                        path,
                        on_bytes=functools.partial(progress.advance, bar),
                        project_id=project_id,
                        priority=priority,
                        processor=processor,
                    )
                except ApiError as exc:
                    refused += 1
                    progress.console.print(
                        f"ntm: error: {path.name}: {exc}", markup=False, soft_wrap=True
                    )
                    continue
                created.append(task)
        if wait and created:
            mode = "quiet" if json_ else "bars"
            final = watch_tasks(api, created, output=mode, transport=transport)
            code = EXIT_ERROR if refused else exit_code_for(final)
            if json_:
                print_json(final)
            raise typer.Exit(code)
    if json_:
        print_json(created)
    else:
        console = stdout()
        for task in created:
            console.print(f"queued     {task['id']}  {task['file_name']}", markup=False)
    raise typer.Exit(EXIT_ERROR if refused else EXIT_OK)


def _in_flight(api: Api) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = []
    for status in ("processing", "pending"):
        page = 1
        while True:
            listing = api.json(
                "GET", "/tasks/", params={"status": status, "page": page, "page_size": 100}
            )
            tasks.extend(listing["items"])
            if page * 100 >= listing["total"] or page >= 5:
                break
            page += 1
    return tasks


@app.command()
@handles_errors
def watch(
    tasks: Annotated[
        list[str] | None, typer.Argument(help="Task ids (default: every running or queued task)")
    ] = None,
    transport: TransportOption = "auto",
    json_: JsonOption = False,
) -> None:
    """Live progress bars (stage and ETA) until the tasks end; the exit code says how they did."""
    if transport not in {"auto", "websocket", "sse"}:
        raise fail("--transport must be auto, websocket or sse", EXIT_USAGE)
    with Api(creds.current()) as api:
        states = [api.task(task_id) for task_id in dict.fromkeys(tasks)] if tasks else []
        if not tasks:
            states = _in_flight(api)
            if not states:
                if json_:
                    print_json([])
                else:
                    stdout().print("Nothing to watch: no task is queued or running.")
                raise typer.Exit(EXIT_OK)
        final = watch_tasks(api, states, output="json" if json_ else "bars", transport=transport)
    raise typer.Exit(exit_code_for(final))


# --- listing and files ---------------------------------------------------------------------


@app.command("ls")
@handles_errors
def list_tasks(
    status: Annotated[
        str | None,
        typer.Option("--status", "-s", help="pending, processing, completed, failed, cancelled"),
    ] = None,
    project: Annotated[
        str | None, typer.Option("--project", "-p", help="A project's name or id")
    ] = None,
    batch: Annotated[str | None, typer.Option("--batch", help="A batch id")] = None,
    search: Annotated[str | None, typer.Option("--search", "-q", help="In file names")] = None,
    sort: Annotated[
        str | None, typer.Option("--sort", help="uploaded_at, priority, file_name; - descends")
    ] = None,
    page: Annotated[int, typer.Option("--page", min=1)] = 1,
    page_size: Annotated[int, typer.Option("--page-size", min=1, max=100)] = 20,
    json_: JsonOption = False,
) -> None:
    """List your tasks, newest first, with filters."""
    with Api(creds.current()) as api:
        params: dict[str, Any] = {"page": page, "page_size": page_size}
        if project:
            params["project_id"] = api.project_id(project)
        for key, value in (("status", status), ("batch_id", batch), ("q", search), ("sort", sort)):
            if value is not None:
                params[key] = value
        listing = api.json("GET", "/tasks/", params=params)
    if json_:
        print_json(listing)
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for name in ("ID", "FILE", "STATUS", "PROGRESS", "STAGE", "PRIORITY", "PROCESSOR", "UPLOADED"):
        table.add_column(name, no_wrap=name in {"ID", "STATUS", "UPLOADED"}, overflow="fold")
    for task in listing["items"]:
        table.add_row(
            task["id"],
            task["file_name"],
            task["status"],
            f"{task['progress']}%",
            task["stage"],
            str(task["priority"]),
            task["processor"],
            task["uploaded_at"][:19].replace("T", " "),
        )
    console = Console(highlight=False, width=max(stdout().width, 160))
    console.print(table)
    pages = max(1, -(-listing["total"] // listing["page_size"]))
    console.print(f"page {listing['page']} of {pages}, {listing['total']} tasks", markup=False)


@app.command()
@handles_errors
def get(
    task: Annotated[str, typer.Argument(help="A task id")],
    output_dir: Annotated[
        Path, typer.Option("--output-dir", "-o", help="Where to save (default: here)")
    ] = Path("."),
    json_: JsonOption = False,
) -> None:
    """Download a completed task's report files, named after the manuscript."""
    with Api(creds.current()) as api:
        result = api.json("GET", f"/tasks/{task}/result")
        output_dir.mkdir(parents=True, exist_ok=True)
        saved: list[dict[str, Any]] = []
        progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            DownloadColumn(),
            console=stderr(),
            disable=json_,
        )
        with progress:
            for entry in result["files"]:
                bar = progress.add_task(entry["name"], total=entry.get("size"))
                path = api.download(
                    entry["url"],
                    output_dir,
                    entry["name"],
                    functools.partial(progress.advance, bar),
                )
                saved.append(
                    {"name": entry["name"], "path": str(path), "size": path.stat().st_size}
                )
    if json_:
        print_json(saved)
        return
    console = stdout()
    if not saved:
        console.print("The task has no result files.")
    for entry in saved:
        console.print(f"saved {entry['path']} ({entry['size']} bytes)", markup=False)


# --- changing tasks ------------------------------------------------------------------------


def _patch_each(task_ids: list[str], body: dict[str, Any], verb: str, as_json: bool) -> None:
    with Api(creds.current()) as api:
        changed = [api.json("PATCH", f"/tasks/{task_id}", json=body) for task_id in task_ids]
    if as_json:
        print_json(changed)
        return
    for task in changed:
        stdout().print(f"{verb:<10} {task['id']}  {task['file_name']}", markup=False)


@app.command()
@handles_errors
def cancel(
    tasks: Annotated[list[str], typer.Argument(help="Task ids")], json_: JsonOption = False
) -> None:
    """Cancel queued or running tasks."""
    _patch_each(tasks, {"status": "cancelled"}, "cancelled", json_)


@app.command()
@handles_errors
def retry(
    tasks: Annotated[list[str], typer.Argument(help="Task ids")], json_: JsonOption = False
) -> None:
    """Queue failed or cancelled tasks again."""
    _patch_each(tasks, {"status": "pending"}, "queued", json_)


@app.command()
@handles_errors
def rm(
    tasks: Annotated[list[str], typer.Argument(help="Task ids")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask")] = False,
    json_: JsonOption = False,
) -> None:
    """Delete tasks with their files (running ones are stopped first)."""
    if not yes:
        typer.confirm(f"Delete {len(tasks)} task(s) and their files?", abort=True)
    with Api(creds.current()) as api:
        for task_id in tasks:
            api.request("DELETE", f"/tasks/{task_id}")
    if json_:
        print_json({"deleted": tasks})
        return
    for task_id in tasks:
        stdout().print(f"deleted    {task_id}", markup=False)


@app.command()
@handles_errors
def stats(json_: JsonOption = False) -> None:
    """Counts by status, success rate, processing times, queue depth, workers."""
    with Api(creds.current()) as api:
        numbers = api.json("GET", "/tasks/statistics")
    if json_:
        print_json(numbers)
        return
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("tasks", str(numbers["total"]))
    for status, count in sorted(numbers["by_status"].items()):
        table.add_row(f"  {status}", str(count))
    table.add_row("success rate", f"{numbers['success_rate']:.0%}")
    for key, label in (("avg_processing_seconds", "mean time"), ("p95_processing_seconds", "p95")):
        value = numbers[key]
        table.add_row(label, "-" if value is None else f"{value:.1f} s")
    table.add_row("queue depth", str(numbers["queue_depth"]))
    table.add_row("active workers", str(numbers["active_workers"]))
    table.add_row("live connections", str(numbers["websocket_connections"]))
    table.add_row("completed last hour", str(numbers["completed_last_hour"]))
    stdout().print(table)


def main() -> None:
    """The ``ntm`` console script."""
    app()
