"""Output a person can read (issue 13.8): no TensorFlow C++ log lines unless --verbose, a fast
`presets`, no progress-bar redraws in files and pipes, no Keras "ran out of data" warning."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

QUIET_ENV = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TQDM_DISABLE")}


def _edgekit(*args: str) -> subprocess.CompletedProcess:
    """As a user runs it: no TF_CPP_MIN_LOG_LEVEL of the test suite's, output to pipes (not a terminal)."""
    return subprocess.run([sys.executable, "-m", "edge.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          env=QUIET_ENV, timeout=600)


def test_param_counts_by_arithmetic_match_keras():
    from train.models import PRESETS, build_model, load_spec
    from train.models.params import param_count

    for name in PRESETS:
        spec = load_spec(name)
        assert param_count(spec, 10) == build_model(spec, 10).count_params(), name
    small = load_spec("car-small", input_shape=(24, 40, 3))
    assert param_count(small, 4) == build_model(small, 4).count_params()


def test_presets_prints_its_table_without_importing_tensorflow():
    code = ("import sys, io, contextlib; from edge.cli import main\n"
            "out = io.StringIO()\n"
            "with contextlib.redirect_stdout(out): assert main(['presets']) == 0\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'imported'\n"
            "print(out.getvalue())")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "baseline             463,850     463,850" in result.stdout


def test_tensorflow_cpp_log_lines_only_with_verbose():
    quiet = _edgekit("presets", "baseline", "--summary")
    assert quiet.returncode == 0, quiet.stderr
    assert "I0000" not in quiet.stderr and "cpu_feature_guard" not in quiet.stderr, quiet.stderr
    loud = _edgekit("presets", "baseline", "--summary", "--verbose")
    assert "I0000" in loud.stderr or "cpu_feature_guard" in loud.stderr, loud.stderr


def test_tqdm_bars_are_off_when_stderr_is_not_a_terminal():
    code = ("from edge.verbosity import configure; configure(False)\n"
            "from tqdm import tqdm\n"
            "for _ in tqdm(range(3), desc='int8 calibration'): pass\n")
    piped = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=QUIET_ENV,
                           timeout=60)
    assert piped.returncode == 0 and "\r" not in piped.stderr and "calibration" not in piped.stderr, piped.stderr


def test_keras_verbosity_is_one_line_per_epoch_off_a_terminal(monkeypatch):
    import io

    from edge.verbosity import keras_verbosity

    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert keras_verbosity(1) == 2 and keras_verbosity("auto") == 2 and keras_verbosity(0) == 0


@pytest.mark.slow
def test_train_output_in_a_file_has_no_redraws_and_no_ran_out_of_data(tmp_path):
    result = _edgekit("train", "synthetic:n=240,size=16x16", "--model", "car-small", "--epochs", "2",
                      "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stdout and "\x1b[" not in result.stdout
    assert "ran out of data" not in result.stderr and "I0000" not in result.stderr, result.stderr
    epochs = [line for line in result.stdout.splitlines() if line.startswith("Epoch ")]
    assert epochs == ["Epoch 1/2", "Epoch 2/2"]
    lines_after = [result.stdout.splitlines()[result.stdout.splitlines().index(e) + 1] for e in epochs]
    assert all(" - loss: " in line and "val_accuracy" in line for line in lines_after), lines_after
