#!/usr/bin/env python3
"""The whole test suite: ``python run_tests.py`` (extra arguments go to pytest).

Installs the project with its ``dev`` extra into ``.venv`` on first run, then
runs pytest over every test on SQLite and PostgreSQL (PostgreSQL at
``TEST_POSTGRES_URL``, default ``postgresql://postgres@127.0.0.1:5432/postgres``;
its tests skip with the reason shown when it is not reachable, and fail
instead under ``CI=true``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tools.bootstrap import ensure_venv

ROOT = Path(__file__).resolve().parent


def main() -> int:
    ensure_venv("dev")
    os.chdir(ROOT)
    command = [sys.executable, "-m", "pytest", *sys.argv[1:]]
    return subprocess.call(command, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
