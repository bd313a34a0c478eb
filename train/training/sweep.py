"""Sweeps: several models x N seeds on one dataset -> Markdown + JSON table of mean ± std.

Each (model, seed) run folder is kept; a finished one (summary.json with status
"completed" or "early-stopped") is reused, so an interrupted sweep resumes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from train.training.stats import FIGURES, aggregate, fmt, within_noise

FIGURE_TITLES = {"training_time_s": "time (s)", "min_loss": "min loss", "min_val_loss": "min val loss",
                 "max_accuracy": "max acc", "max_val_accuracy": "max val acc", "total_params": "params"}
NOISY = ["min_loss", "min_val_loss", "max_accuracy", "max_val_accuracy"]


def model_key(model: str) -> str:
    """A folder-safe name for a preset or spec path."""
    return Path(model).stem if model.endswith((".json", ".toml")) else model


def sweep_table(rows: list[tuple[str, list[dict[str, Any]]]]) -> tuple[str, dict[str, Any]]:
    """Markdown and JSON tables: one row per model, mean ± std per figure.

    A figure whose difference from the first row is smaller than the seed-to-seed spread is
    marked "≈" (within noise).

    Example:
        >>> md, table = sweep_table([("a", [{"max_val_accuracy": .6}, {"max_val_accuracy": .62}]),
        ...                          ("b", [{"max_val_accuracy": .605}, {"max_val_accuracy": .615}])])
        >>> table["rows"][1]["within_noise"]["max_val_accuracy"]
        True
    """
    stats = [(name, aggregate(summaries), len(summaries)) for name, summaries in rows]
    reference = stats[0][1] if stats else {}
    table: dict[str, Any] = {"figures": FIGURES, "rows": []}
    header = ["model", "seeds", *(FIGURE_TITLES[f] for f in FIGURES)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for index, (name, agg, n) in enumerate(stats):
        noise = {f: within_noise(agg[f], reference[f]) for f in NOISY if index and agg[f]["n"] and reference[f]["n"]}
        table["rows"].append({"model": name, "seeds": n, **{f: agg[f] for f in FIGURES}, "within_noise": noise})
        cells = []
        for figure in FIGURES:
            digits = 0 if figure == "total_params" else (1 if figure == "training_time_s" else 4)
            cell = fmt(agg[figure], digits)
            if figure == "total_params" and agg[figure]["n"]:
                cell = f"{int(agg[figure]['mean']):,}"
            if noise.get(figure):
                cell += " ≈"
            cells.append(cell)
        lines.append("| " + " | ".join([name, str(n), *cells]) + " |")
    lines.append("")
    lines.append("≈: difference from the first row is within noise (smaller than the seed-to-seed standard deviation).")
    return "\n".join(lines) + "\n", table


def finished_summary(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "summary.json"
    if not path.exists():
        return None
    try:
        summary = json.loads(path.read_text())
    except ValueError:
        return None
    return summary if summary.get("status") in ("completed", "early-stopped") else None


def run_sweep(models: list[str], seeds: list[int], base: dict[str, Any], out: Path,
              train_fn: Callable[..., Any] | None = None, dataset: Any = None,
              on_result: Callable[[str, int, dict[str, Any]], None] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Train every (model, seed) not finished yet under out/<model>/seed-<seed>/; returns summaries."""
    from train.training import TrainConfig, train

    train_fn = train_fn or train
    results: dict[str, list[dict[str, Any]]] = {}
    for model in models:
        for seed in seeds:
            run_dir = out / model_key(model) / f"seed-{seed}"
            summary = finished_summary(run_dir)
            if summary is None:
                if dataset is None:
                    from train.data import load_dataset
                    from train.models import load_spec

                    spec = load_spec(model)
                    dataset = load_dataset(base["dataset"], image_size=base.get("image_size") or spec.image_size)
                result = train_fn(TrainConfig(**{**base, "model": model, "seed": seed, "out": str(run_dir)}),
                                  dataset=dataset)
                if result.status == "interrupted":
                    raise KeyboardInterrupt
                summary = result.summary
            results.setdefault(model_key(model), []).append(summary)
            if on_result:
                on_result(model, seed, summary)
    return results


def write_sweep(results: dict[str, list[dict[str, Any]]], out: Path) -> tuple[Path, Path]:
    markdown, table = sweep_table(list(results.items()))
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.md").write_text(markdown)
    (out / "sweep.json").write_text(json.dumps(table, indent=2) + "\n")
    return out / "sweep.md", out / "sweep.json"
