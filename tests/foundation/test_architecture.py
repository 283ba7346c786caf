"""Layering: routers never touch SQL, services never import the web framework."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

RULES = {
    "app/api": {"sqlalchemy"},
    "app/services": {"fastapi", "starlette"},
    "app/processors": {"sqlalchemy", "fastapi", "starlette", "app.models", "app.services"},
    "app/models": {"fastapi", "starlette", "app.services", "app.api"},
}

# deps.py binds the session type to its dependency; it runs no SQL.
ALLOWED = {("app/api/deps.py", "sqlalchemy.ext.asyncio")}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_layers_import_only_what_they_may() -> None:
    violations = []
    for folder, forbidden in RULES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            for module in imported_modules(path):
                if (str(path.relative_to(ROOT)), module) in ALLOWED:
                    continue
                if any(module == f or module.startswith(f + ".") for f in forbidden):
                    violations.append(f"{path.relative_to(ROOT)} imports {module}")
    assert violations == []
