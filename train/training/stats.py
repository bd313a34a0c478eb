"""Mean ± standard deviation over seeds, and the "within noise" test of a sweep."""

from __future__ import annotations

import statistics
from typing import Any

FIGURES = ["training_time_s", "min_loss", "min_val_loss", "max_accuracy", "max_val_accuracy", "total_params"]


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    values = [float(v) for v in values if v is not None]
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def aggregate(summaries: list[dict[str, Any]], figures: list[str] = FIGURES) -> dict[str, dict[str, float]]:
    """{figure: {"mean", "std", "n"}} over several runs' summaries."""
    out = {}
    for key in figures:
        values = [s[key] for s in summaries if s.get(key) is not None]
        mean, std = mean_std(values)
        out[key] = {"mean": mean, "std": std, "n": len(values)}
    return out


def within_noise(row: dict[str, float], reference: dict[str, float]) -> bool:
    """True if |mean difference| is smaller than the larger of the two seed-to-seed spreads."""
    spread = max(row["std"], reference["std"])
    return abs(row["mean"] - reference["mean"]) < spread


def fmt(stat: dict[str, float], digits: int = 4) -> str:
    if stat["mean"] != stat["mean"]:  # NaN
        return "-"
    if stat["n"] <= 1 or stat["std"] == 0:
        return f"{stat['mean']:.{digits}f}"
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"
