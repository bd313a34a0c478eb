"""`edgekit run` as the car runs it: subprocesses, signals, exit codes, no TensorFlow."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DEVICE_PYTHON, ROOT, run_edgekit
from tests.edge_runtime_bundles import corrupt_model, tiny_int8_tflite, write_bundle

HEAVY = {"tensorflow", "keras", "train", "convert"}


@pytest.fixture(scope="module")
def bundle(pytestconfig, tmp_path_factory) -> Path:
    flatbuffer = tiny_int8_tflite(pytestconfig.cache.mkdir("edge-runtime"))
    return write_bundle(tmp_path_factory.mktemp("bundles") / "v0001", flatbuffer)


def _run_in_process(python: str | Path, bundle: Path) -> tuple[set[str], list[str]]:
    code = (
        "import sys, io, contextlib\n"
        "from edge.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    code = main(['run', '--bundle', {str(bundle)!r}, '--source', 'synthetic:seed=2', '--size', '96x72',"
        " '--frames', '3'])\n"
        "assert code == 0, code\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
        "print(out.getvalue(), end='')\n"
    )
    result = subprocess.run([str(python), "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    modules, *lines = result.stdout.splitlines()
    return set(modules.split()), lines


@pytest.mark.parametrize("venv", ["host", "device"])
def test_run_loads_no_tensorflow_keras_train_or_convert(bundle, venv):
    python = sys.executable if venv == "host" else DEVICE_PYTHON
    if venv == "device" and not DEVICE_PYTHON.exists():
        pytest.skip("the device-only venv (.venv-device) was not built; run `make device-env`")
    modules, lines = _run_in_process(python, bundle)
    assert not modules & HEAVY, modules & HEAVY
    assert [json.loads(line)["frame"] for line in lines] == [0, 1, 2]


def test_sigterm_finishes_the_frame_flushes_and_exits_zero(bundle, tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "run", "--bundle", str(bundle), "--source", "synthetic:seed=1",
         "--size", "96x72", "--max-fps", "50", "--part", f"jpeg:folder={tmp_path / 'frames'},every=2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=os.environ.copy(),
    )
    first = process.stdout.readline()  # running: results flow
    assert json.loads(first)["frame"] == 0
    process.send_signal(signal.SIGTERM)
    rest, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    lines = [first] + rest.splitlines()
    frames = [json.loads(line)["frame"] for line in lines]  # every line complete JSON: flushed, not cut
    assert frames == list(range(len(frames)))
    final = [line for line in stderr.splitlines() if line.startswith("stats ")][-1]
    assert f"frames={len(frames)}" in final
    written = int(final.split("jpeg.written=")[1].split()[0])
    assert written == len(list((tmp_path / "frames").iterdir())) == (len(frames) + 1) // 2


def test_failing_source_exits_nonzero_with_one_line(bundle, tmp_path):
    config = tmp_path / "car.toml"
    config.write_text("max_failures = 3\nbackoff = 0.01\n")
    result = run_edgekit("run", "--bundle", str(bundle), "--source", "/dev/video97", "--config", str(config),
                         timeout=60)
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("edgekit run: error: source /dev/video97 failed 3 times in a row")


def test_corrupt_bundle_refuses_to_start_with_one_line(bundle, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("model.tflite", "golden.npz", "manifest.json"):
        (broken / name).write_bytes((bundle / name).read_bytes())
    corrupt_model(broken)
    result = run_edgekit("run", "--bundle", str(broken), "--source", "synthetic", "--frames", "1")
    assert result.returncode != 0 and result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("edgekit run: error: model.tflite in")
    assert "checksum" in result.stderr
