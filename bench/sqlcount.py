"""Run a module with every SQLAlchemy statement, BEGIN, COMMIT and ROLLBACK counted.

    SQLCOUNT_OUT=/tmp/w.json .venv/bin/python -m bench.sqlcount app.worker
    SQLCOUNT_OUT=/tmp/a.json .venv/bin/python -m bench.sqlcount uvicorn app.main:app --port 8000

Listeners on the ``Engine`` class see every engine the process builds (the
async engines' sync halves included), so the real worker or API runs
unchanged. At exit (SIGTERM ends both gracefully) the counts are written to
``SQLCOUNT_OUT`` as JSON: statements by kind (verb and first table), and the
transaction events. ``bench/hotpath.py`` divides them by the tasks done.
``SQLCOUNT_UVLOOP=1`` runs the module on uvloop (``uvloop.install()`` first).
"""

from __future__ import annotations

import atexit
import json
import os
import re
import runpy
import signal
import sys
from collections import Counter
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

COUNTS: Counter[str] = Counter()
_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE|JOIN)\s+\"?(\w+)", re.IGNORECASE)


def kind(statement: str) -> str:
    """``UPDATE tasks``, ``SELECT pg_notify``, ``WITH task_queue`` ...: verb and first table."""
    text = statement.lstrip().lstrip("(")
    verb = text.split(None, 1)[0].upper() if text else "?"
    if "pg_notify" in text:
        return f"{verb} pg_notify"
    table = _TABLE.search(text)
    return f"{verb} {table.group(1) if table else ''}".strip()


def install() -> None:
    @event.listens_for(Engine, "before_cursor_execute")
    def _statement(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        COUNTS["statements"] += 1
        COUNTS["statement: " + kind(statement)] += 1

    @event.listens_for(Engine, "begin")
    def _begin(conn: Any) -> None:
        COUNTS["begin"] += 1

    @event.listens_for(Engine, "commit")
    def _commit(conn: Any) -> None:
        COUNTS["commit"] += 1

    @event.listens_for(Engine, "rollback")
    def _rollback(conn: Any) -> None:
        COUNTS["rollback"] += 1

    out = os.environ.get("SQLCOUNT_OUT")
    if out:

        def write() -> None:
            with open(out, "w") as handle:
                handle.write(json.dumps(dict(COUNTS)))

        def on_sigterm(signum: int, frame: object) -> None:
            write()
            raise SystemExit(0)

        atexit.register(write)
        # uvicorn restores this handler after its graceful shutdown and raises SIGTERM
        # again, so the process would end without running atexit
        signal.signal(signal.SIGTERM, on_sigterm)


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit("usage: python -m bench.sqlcount MODULE [ARGS...]")
    install()
    if os.environ.get("SQLCOUNT_UVLOOP"):  # an experiment: the module's asyncio.run on uvloop
        import uvloop

        uvloop.install()
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
