"""Make sure the project's virtual environment exists and is current, then re-run inside it.

Used by ``start_local.py`` and ``run_tests.py`` so that each works on a fresh
clone with only Python 3.11+: the first run creates ``.venv`` and installs the
project (and, for tests, its ``dev`` extra); later runs reuse it unless
``pyproject.toml`` changed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"


def _venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _project_hash() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]


def _installed(extras: str) -> bool:
    """True when this pyproject was installed with ``extras`` (any extras cover the base)."""
    current = _project_hash()
    if extras:
        return (VENV / f".installed-{current}-{extras}").exists()
    return any(VENV.glob(f".installed-{current}-*"))


def ensure_venv(extras: str = "") -> None:
    """Install the project into .venv if needed, then re-exec this script with its Python."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this runs before the venv exists
        raise SystemExit("Python 3.11 or newer is required")
    python = _venv_python()
    inside = Path(sys.prefix).resolve() == VENV.resolve()
    if not _installed(extras):
        if not python.exists():
            print("Creating the virtual environment in .venv …", flush=True)
            venv.EnvBuilder(with_pip=True).create(VENV)
        target = f".[{extras}]" if extras else "."
        print(f"Installing {target} into .venv (first run only) …", flush=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
            check=True,
            cwd=ROOT,
        )
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "-e", target], check=True, cwd=ROOT
        )
        current = _project_hash()
        for old in VENV.glob(".installed-*"):
            if not old.name.startswith(f".installed-{current}-"):
                old.unlink()
        (VENV / f".installed-{current}-{extras or 'base'}").touch()
    if not inside:
        os.execv(str(python), [str(python), *sys.argv])  # noqa: S606
