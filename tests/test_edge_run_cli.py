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
from tests.tiny_bundles import corrupt_model, int8_tflite, write_bundle

HEAVY = {"tensorflow", "keras", "train", "convert"}


@pytest.fixture(scope="module")
def bundle(pytestconfig, tmp_path_factory) -> Path:
    flatbuffer = int8_tflite(pytestconfig.cache.mkdir("edge-runtime"))
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


def test_run_starts_numpy_without_openblas_threads(bundle):
    """The car does no linear algebra: OpenBLAS's spinning threads would only take its cores."""
    if (os.cpu_count() or 1) < 2:
        pytest.skip("OpenBLAS runs one thread on one core anyway")
    code = (
        "import ctypes, sys\n"
        "from edge.cli import main\n"
        f"assert main(['run', '--bundle', {str(bundle)!r}, '--source', 'synthetic:seed=2', '--size', '96x72',"
        " '--frames', '2', '--quiet']) == 0\n"
        "maps = open('/proc/self/maps').read().split()\n"
        "path = next(w for w in maps if 'openblas' in w and w.endswith(tuple('0123456789so')))\n"
        "library = ctypes.CDLL(path)\n"
        "name = next(n for n in ('scipy_openblas_get_num_threads64_', 'openblas_get_num_threads64_',"
        " 'openblas_get_num_threads') if hasattr(library, n))\n"
        "print(getattr(library, name)())\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "OPENBLAS_NUM_THREADS"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "1"


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
    for name in ("model.tflite", "golden.npz", "manifest.json", "manifest.sha256"):
        (broken / name).write_bytes((bundle / name).read_bytes())
    corrupt_model(broken)
    result = run_edgekit("run", "--bundle", str(broken), "--source", "synthetic", "--frames", "1")
    assert result.returncode != 0 and result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("edgekit run: error: model.tflite in")
    assert "checksum" in result.stderr


def test_service_install_writes_a_unit_that_restarts_on_failure(bundle, tmp_path):
    config = tmp_path / "car.toml"
    config.write_text(f'bundle = "{bundle}"\nsource = "picamera2"\nquiet = true\n')
    unit = tmp_path / "units" / "edgekit.service"
    result = run_edgekit("service", "install", "--config", str(config), "--output", str(unit), "--user", "pi",
                         check=True)
    text = unit.read_text()
    assert "Restart=on-failure" in text and "User=pi" in text
    assert f"WorkingDirectory={tmp_path}" in text
    assert f"run --config {config}" in text
    assert "systemctl enable --now edgekit.service" in result.stdout
    config.write_text('bundle = "b"\nsourse = "picamera2"\n')
    bad = run_edgekit("service", "install", "--config", str(config), "--output", str(unit))
    assert bad.returncode != 0 and "unknown setting 'sourse'" in bad.stderr and "Traceback" not in bad.stderr


def test_bench_device_reports_every_figure(bundle):
    result = run_edgekit("bench-device", "--bundle", str(bundle), "--size", "96x72", "--max-threads", "2",
                         "--frames", "30", "--json", check=True, timeout=120)
    report = json.loads(result.stdout)
    assert [row["threads"] for row in report["invoke"]] == [1, 2]
    assert all(row["p50_ms"] > 0 for row in report["invoke"])
    assert report["preprocess"]["p50_ms"] > 0 and report["frame"] == [72, 96, 3]
    assert report["end_to_end"]["frames"] == 30 and report["end_to_end"]["fps"] > 0
    assert 10 < report["peak_rss_mb"] < 2000 and 0 < report["start_to_first_result_s"] < 60


def test_peak_memory_is_the_runs_own_not_its_parents(bundle):
    """wait4's ru_maxrss carries the parent's size across fork + exec; the run reports VmHWM itself."""
    from edge.measure import run_and_measure

    padding = bytearray(400 * 1024 * 1024)  # make this (the parent) process 400 MB bigger
    padding[::4096] = b"\x01" * len(padding[::4096])
    measured = run_and_measure(["--bundle", str(bundle), "--source", "synthetic:seed=3", "--size", "96x72",
                                "--frames", "5", "--stats-interval", "0"])
    assert measured["stats"]["peak_rss_mb"] == measured["peak_rss_mb"]
    assert 10 < measured["peak_rss_mb"] < 400  # edgekit run itself is far below the padded parent
    del padding
