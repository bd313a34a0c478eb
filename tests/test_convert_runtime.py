"""Runtime compatibility: a model checked in another Python environment (tflite-runtime 2.14)."""

from __future__ import annotations

import pytest

from convert.pipeline import ConvertOptions, convert
from tests.conftest import DEVICE_PYTHON, PI_PYTHON, run_edgekit

needs_pi_env = pytest.mark.skipif(
    not PI_PYTHON.exists(),
    reason=f"{PI_PYTHON} missing: `make pi-env` builds it (tflite-runtime 2.14, numpy<2; needs PyPI)",
)


@needs_pi_env
def test_check_runtime_catches_fully_connected_v12(bundles):
    result = run_edgekit("check-runtime", str(bundles["dynamic"]), "--python", str(PI_PYTHON), timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "tflite_runtime 2.14.0 | does not load" in result.stdout
    assert "FULLY_CONNECTED" in result.stdout and "version '12'" in result.stdout


@needs_pi_env
@pytest.mark.skipif(not DEVICE_PYTHON.exists(), reason=".venv-device missing: run `make device-env`")
def test_check_runtime_passes_int8(bundles):
    result = run_edgekit("check-runtime", str(bundles["int8_archive"]), "--python", str(PI_PYTHON),
                         "--python", str(DEVICE_PYTHON), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("outputs match") == 2
    assert "tflite_runtime 2.14.0" in result.stdout and "ai_edge_litert" in result.stdout


@needs_pi_env
def test_convert_with_runtime_check_refuses_incompatible_mode(tiny, tmp_path):
    results = convert(ConvertOptions(source=tiny["model"], data=str(tiny["data"]), modes=["dynamic", "int8"],
                                     rep_size=50, check_runtime=[str(PI_PYTHON)], out=tmp_path, latency_runs=5))
    dynamic, int8 = results
    assert dynamic.bundle is None and "runtime check failed" in dynamic.gate_failures[0]
    assert not (tmp_path / "dynamic").exists()
    assert int8.ok and int8.bundle == tmp_path / "int8"
    assert [r["loads"] for r in int8.runtime] == [True]
    assert (tmp_path / "int8" / "manifest.json").read_text().count("tflite_runtime") == 1


def test_check_runtime_bad_python(bundles):
    result = run_edgekit("check-runtime", str(bundles["int8"]), "--python", "/nonexistent/python", timeout=60)
    assert result.returncode == 1 and "does not exist" in result.stderr and "Traceback" not in result.stderr
