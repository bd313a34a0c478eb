"""Does a model load and reproduce its golden outputs in another Python environment?

Runs convert/runtime_probe.py (standalone: numpy + an interpreter, no edgekit)
with the given Python as a subprocess, once per environment.

Example:
    >>> reports = check_runtime(Path("b/model.tflite"), Path("b/golden.npz"), [".venv-pi214/bin/python"])
    >>> print(format_reports(reports))
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from edge.bundle import DEFAULT_FLOAT_ATOL, agreement_rule
from edge.errors import UserError

PROBE = Path(__file__).with_name("runtime_probe.py")


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return {**env, "PYTHONNOUSERSITE": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}


def judge(row: dict[str, Any], made_by: dict[str, Any] | None, atol: float) -> None:
    """Fill `rule` and `outputs_match` of one probe row with the car's rule (edge.bundle.agreement_rule)."""
    if not row.get("loads") or row.get("max_abs_diff") is None:
        row.setdefault("outputs_match", None if not row.get("loads") else False)
        return
    rule = agreement_rule(made_by or {}, (row["interpreter"], row["version"], row.get("machine", "unknown")),
                          bool(row.get("integer")), atol)
    row["rule"] = rule.text
    row["outputs_match"] = bool(row["max_abs_diff"] <= rule.max_diff
                                and (row.get("top1_agreement") == 1.0 or not rule.top1_equal))


def probe_environment(python: str | Path, model: Path, golden: Path, atol: float = DEFAULT_FLOAT_ATOL,
                      timeout: float = 300, made_by: dict[str, Any] | None = None) -> dict[str, Any]:
    """One environment's report: {"python", "interpreters": [{interpreter, version, loads, error, outputs_match}]}.

    `made_by` is the manifest's tools.interpreter ({name, version, machine}) that made the golden outputs.
    """
    python = str(python)
    if not Path(python).exists():
        raise UserError(f"Python {python} does not exist: give the path of the environment's python "
                        "(e.g. .venv-pi214/bin/python; `make pi-env` builds one)")
    try:
        done = subprocess.run([python, str(PROBE), str(model), str(golden)],
                              capture_output=True, text=True, timeout=timeout, env=_clean_env())
    except (OSError, subprocess.TimeoutExpired) as error:
        return {"python": python, "error": f"could not run: {error}", "interpreters": []}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"python": python, "error": f"probe failed ({done.returncode}): {tail[:300]}", "interpreters": []}
    report = json.loads(lines[-1])
    report["python"] = python
    for row in report["interpreters"]:
        judge(row, made_by, atol)
    if not report["interpreters"]:
        report["error"] = "no TFLite interpreter installed (ai_edge_litert, tflite_runtime or tensorflow)"
    return report


def check_runtime(model: Path, golden: Path, pythons: list[str | Path],
                  atol: float = DEFAULT_FLOAT_ATOL, made_by: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Reports for every environment; `made_by` is the {name, version, machine} that made the golden outputs."""
    return [probe_environment(python, model, golden, atol, made_by=made_by) for python in pythons]


def environment_ok(report: dict[str, Any]) -> bool:
    """True when every interpreter found in the environment loads the model and matches."""
    interpreters = report.get("interpreters", [])
    return bool(interpreters) and not report.get("error") and all(
        r["loads"] and r["outputs_match"] for r in interpreters
    )


def summarize(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flat rows (python, interpreter, version, loads, outputs_match, error) for manifests and tables."""
    rows = []
    for report in reports:
        if not report.get("interpreters"):
            rows.append({"python": report["python"], "interpreter": None, "version": None, "loads": False,
                         "outputs_match": None, "error": report.get("error")})
        for r in report.get("interpreters", []):
            rows.append({"python": report["python"], "interpreter": r["interpreter"], "version": r["version"],
                         "loads": r["loads"], "outputs_match": r["outputs_match"], "error": r["error"],
                         "max_abs_diff": r.get("max_abs_diff"), "top1_agreement": r.get("top1_agreement"),
                         "bit_exact": r.get("bit_exact"), "rule": r.get("rule")})
    return rows


def format_reports(reports: list[dict[str, Any]]) -> str:
    """A readable table: one line per environment and interpreter."""
    lines = []
    for row in summarize(reports):
        verdict = "OK" if row["loads"] and row["outputs_match"] else "FAIL"
        name = f"{row['interpreter']} {row['version']}" if row["interpreter"] else "(none)"
        load = "loads" if row["loads"] else "does not load"
        match = {True: "outputs match", False: "outputs differ", None: "-"}[row["outputs_match"]]
        if row.get("max_abs_diff") is not None and row["outputs_match"] is False:
            match += f" (max diff {row['max_abs_diff']:g}"
            if row.get("top1_agreement") is not None:
                match += f", top-1 agreement {row['top1_agreement']:.0%} on golden inputs"
            match += ")"
        if row["outputs_match"] and row.get("bit_exact") is False:
            match += f" ({row['rule']}; max diff {row['max_abs_diff']:g}, not bit-exact)"
        error = f": {row['error']}" if row["error"] else ""
        lines.append(f"  {verdict:4} {row['python']} | {name} | {load} | {match}{error}")
    return "\n".join(lines)
