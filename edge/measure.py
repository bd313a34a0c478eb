"""Measurements shared by `edgekit bench-device` and `make bench-edge` (no TensorFlow)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from edge.interpreter import TFLiteModel
from edge.preprocess import PreprocessSpec, preprocess


def percentiles_ms(seconds: list[float]) -> dict[str, float]:
    values = np.asarray(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(values, 50)), 3), "p90_ms": round(float(np.percentile(values, 90)), 3),
            "mean_ms": round(float(values.mean()), 3)}


def invoke_latency(model_path: Path, threads: int, repeats: int = 200, warmup: int = 10) -> dict[str, float]:
    """Interpreter latency on random inputs with `threads` threads (the interpreter is built once)."""
    model = TFLiteModel(model_path, num_threads=threads)
    x = np.random.default_rng(0).integers(0, 256, model.input_shape, dtype=np.uint8)
    for _ in range(warmup):
        model.raw_invoke(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.raw_invoke(x)
        times.append(time.perf_counter() - t0)
    return {"threads": threads, **percentiles_ms(times), "fps": round(1 / float(np.median(times)), 1)}


def preprocess_cost(frames: list[np.ndarray], spec: PreprocessSpec, repeats: int = 3) -> dict[str, float]:
    """Time of edge.preprocess.preprocess per frame, for these frames."""
    times = []
    for _ in range(repeats):
        for frame in frames:
            t0 = time.perf_counter()
            preprocess(frame, spec)
            times.append(time.perf_counter() - t0)
    return percentiles_ms(times)


def parse_stats_line(stderr: str) -> dict[str, Any]:
    """The last `stats k=v ...` line of `edgekit run` as a dict (numbers converted)."""
    lines = [line for line in stderr.splitlines() if line.startswith("stats ")]
    if not lines:
        return {}
    figures: dict[str, Any] = {}
    for item in lines[-1].split()[1:]:
        key, _, value = item.partition("=")
        for kind in (int, float, str):
            try:
                figures[key] = kind(value)
                break
            except ValueError:
                continue
    return figures


def run_command(args: list[str], python: str = sys.executable) -> list[str]:
    return [python, "-m", "edge.cli", "run", *args]


def run_and_measure(args: list[str], python: str = sys.executable, timeout: float = 600,
                    command: list[str] | None = None) -> dict[str, Any]:
    """Run `edgekit run ARGS` (or `command`) in a fresh process: final stats, wall time, peak RSS (MB).

    Its stdout (the per-frame lines) goes to a file, as a consumer would take it.
    """
    command = command or run_command(args, python)
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode != 0:
        last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}): {last}")
    stats = parse_stats_line(stderr)
    # the process's own figure: wait4's ru_maxrss includes this (parent) process's size
    peak = stats.get("peak_rss_mb", round(usage.ru_maxrss / 1024, 1))
    return {"stats": stats, "wall_s": round(wall, 3), "stdout": stdout,
            "lines": len(stdout.splitlines()), "peak_rss_mb": peak,
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 3)}


def time_to_first_result(args: list[str], python: str = sys.executable, timeout: float = 120) -> float:
    """Seconds from starting `edgekit run ARGS` (a new process) to its first JSON line on stdout."""
    started = time.perf_counter()
    process = subprocess.Popen(run_command(args, python), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = process.stdout.readline()
        elapsed = time.perf_counter() - started
    finally:
        process.terminate()
        process.wait(timeout=timeout)
    if not line:
        raise RuntimeError(f"edgekit run {' '.join(args)} gave no result")
    return elapsed
