"""The scripts in examples/ run as a newcomer would run them, and do what they say."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edge.samplelog import SampleStore
from tests.conftest import ROOT
from tests.tiny_bundles import LABELS, int8_tflite, write_bundle

EXAMPLES = ROOT / "examples"


def run_example(name: str, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *map(str, args)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr[-2000:]
    return result


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, pytestconfig) -> Path:
    return write_bundle(tmp_path_factory.mktemp("examples") / "v0001", int8_tflite(pytestconfig.cache.mkdir("edge-runtime")))


def test_every_example_fits_one_screen():
    scripts = sorted(EXAMPLES.glob("*.py"))
    assert len(scripts) >= 5
    for script in scripts:
        lines = len(script.read_text().splitlines())
        assert 10 <= lines <= 50, f"{script.name} has {lines} lines"


def test_drive_loop_steers_on_every_result(bundle):
    lines = run_example("drive_loop.py", bundle).stdout.splitlines()
    steps = [re.fullmatch(r"frame (\d+): (\w+) ([\d.]+) -> throttle ([\d.]+)", line) for line in lines]
    assert len(steps) == 30 and all(steps), lines[:3]
    assert {m[2] for m in steps} <= set(LABELS) and {m[4] for m in steps} <= {"0.0", "0.3", "1.0"}


def test_log_samples_then_read_the_store(bundle, tmp_path):
    store = tmp_path / "store"
    logged = int(re.search(r"(\d+) samples in", run_example("log_samples.py", bundle, store).stdout)[1])
    with SampleStore(store, readonly=True) as samples:
        assert logged == samples.count() > 0
        first = next(samples.rows())
    report = run_example("read_store.py", store).stdout
    assert f"{logged} samples, files intact: True" in report
    (store / first["file"]).write_bytes(b"changed on the card")
    assert "files intact: False" in run_example("read_store.py", store).stdout


def test_verify_bundle_accepts_a_good_bundle_and_refuses_a_changed_model(bundle, tmp_path):
    assert "verified, golden self-test" in run_example("verify_bundle.py", bundle).stdout
    changed = tmp_path / "changed"
    changed.mkdir()
    for file in bundle.iterdir():
        (changed / file.name).write_bytes(file.read_bytes())
    model = bytearray((changed / "model.tflite").read_bytes())
    model[len(model) // 2] ^= 0xFF
    (changed / "model.tflite").write_bytes(bytes(model))
    result = run_example("verify_bundle.py", changed, check=False)
    assert result.returncode != 0 and "BundleError" in result.stderr


@pytest.mark.slow
def test_convert_own_model_writes_a_bundle_that_verifies(tmp_path):
    out = run_example("convert_own_model.py", tmp_path).stdout
    assert re.search(r"int8: .*bundle, accuracy [\d.]+% \(Keras\) [\d.]+% \(int8\)", out), out
    assert "verified" in run_example("verify_bundle.py", tmp_path / "bundle").stdout
