"""``ntm upload`` and ``ntm watch``: byte progress while uploading, live bars while processing."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from app.cli import credentials as creds
from app.cli.app import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    JsonOption,
    TransportOption,
    app,
    exit_code_for,
    fail,
    handles_errors,
    print_json,
    stderr,
    stdout,
)
from app.cli.client import TERMINAL, Api, ApiError
from app.cli.live import follow


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
