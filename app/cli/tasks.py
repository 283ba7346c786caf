"""``ntm ls``, ``get``, ``cancel``, ``retry``, ``rm`` and ``stats``."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
)
from rich.table import Table

from app.cli import credentials as creds
from app.cli.app import (
    JsonOption,
    app,
    handles_errors,
    print_json,
    stderr,
    stdout,
)
from app.cli.client import Api


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
