"""Running the ``analyze`` processor in-process, and where the vendored corpus lives."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.processors.analyze import processor
from app.processors.base import ProcessorOutput

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"
"""The corpus with its ground truth: read in place, never copied into the repository."""


def ground_truth() -> list[dict[str, Any]]:
    files: list[dict[str, Any]] = json.loads((CORPUS / "ground_truth.json").read_text())["files"]
    return files


@dataclass(frozen=True, slots=True)
class Run:
    """One run of the processor: what it returned, wrote and reported."""

    output: ProcessorOutput
    report: dict[str, Any]
    report_bytes: bytes
    markdown: str
    progress: list[tuple[int, str]]


def analyze_file(path: Path, output_dir: Path) -> Run:
    output_dir.mkdir(parents=True, exist_ok=True)
    progress: list[tuple[int, str]] = []
    output = processor.run(
        path, output_dir, lambda percent, stage: progress.append((percent, stage))
    )
    raw = (output_dir / "report.json").read_bytes()
    markdown = (output_dir / "summary.md").read_text(encoding="utf-8")
    return Run(output, json.loads(raw), raw, markdown, progress)


def analyze_bytes(data: bytes, tmp_path: Path, name: str = "book.txt") -> Run:
    """Analyse ``data`` as a file called ``name`` under ``tmp_path``."""
    source = tmp_path / "in" / name
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(data)
    out = tmp_path / "out"
    if out.exists():
        for stale in out.iterdir():
            stale.unlink()
    return analyze_file(source, out)


def analyze_text(text: str, tmp_path: Path, encoding: str = "utf-8") -> Run:
    return analyze_bytes(text.encode(encoding), tmp_path)
