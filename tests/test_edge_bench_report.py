"""`make bench-edge`'s report: goal verdicts, the CPU bound and the per-round ratios (no timing here)."""

from __future__ import annotations

import os

from bench.edge_loop import report


def _row(name: str, naive: float, run: float, decode: float, invoke: float, paired: list[tuple[float, float]]) -> dict:
    return {"bundle": name, "naive_fps": naive, "run_fps": run, "decode_fps": decode, "invoke_fps": invoke,
            "b_over_a": run / naive, "b_over_ceiling": run / min(decode, invoke), "first_result_s": 0.3,
            "best_threads": {"naive": 1, "run": 2, "decode": 1, "invoke": 2}, "peak_rss_mb": 140.0,
            "run_cpu_ms_per_frame": 1.25, "jpegs": (180, 170), "latency_p50_ms": 1.0, "latency_p99_ms": 4.0,
            "load": (0.5, 1.5), "paired": paired, "all_fps": {"run": ["900.0 (2)"]}}


def test_report_marks_each_goal_and_gives_the_median_of_the_rounds():
    rows = [_row("fast", naive=600, run=960, decode=1000, invoke=9000, paired=[(1.7, 0.9), (1.2, 0.5), (1.6, 0.95)]),
            _row("slow", naive=800, run=1000, decode=2000, invoke=9000, paired=[(1.1, 0.4), (1.3, 0.6)])]
    text = report(rows, frames=1800, threads=[1, 2], rounds=3, logging="samplelog", command="python -m bench.edge_loop")
    fast, slow = [line for line in text.splitlines() if "(yes)" in line or "(**no**)" in line]  # the goal table
    assert "| 1.60 (yes) | 0.96 (yes) |" in fast  # 960/600 and 960/min(1000, 9000)
    assert "| 1.25 (**no**) | 0.50 (**no**) |" in slow
    assert "| fast | 1.70, 1.20, 1.60 | 1.60 | 0.90, 0.50, 0.95 | 0.90 |" in text  # medians of the rounds
    assert "| slow | 1.10, 1.30 | 1.20 | 0.40, 0.60 | 0.50 |" in text
    bound = (os.cpu_count() or 1) * 1000 / 1.25  # all cores busy at 1.25 ms of CPU per frame
    assert f"| fast | 1.250 | {bound:.0f} | {960 / bound:.2f} |" in text
