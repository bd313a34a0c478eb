"""Paths as committed results show them: relative to the repository, never one machine's."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


def shown(path: str | os.PathLike) -> str:
    """`path` relative to the repository ("../shared/..." beside it); elsewhere (a /tmp folder) only its name."""
    full = Path(path).resolve()
    for base in (REPO, REPO.parent):
        if full.is_relative_to(base):
            return os.path.relpath(full, REPO)
    return full.name


def shown_command(module: str, argv: list[str]) -> str:
    """`python -m MODULE ARGS` with every argument that is an existing path shown by `shown`."""
    words = [shown(word) if "/" in word and Path(word).exists() else word for word in argv]
    return " ".join(["python -m", module, *words])


def write_result(path: Path, text: str) -> None:
    """Write a benchmark's report (creating bench/results/ if needed) and show it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(text)
    print(f"wrote {shown(path)}")
