"""The car's commands on an emulated Raspberry Pi 4 (Cortex-A72) and Pi 5 (Cortex-A76), arm64 Bookworm.

Everything runs inside the rootfs through its own Python 3.11, Debian's numpy 1.24 and OpenCV 4.6,
in the venvs the README's "On the Pi" steps made. What emulation cannot show (speed, the camera,
the ISP) is in docs/edge.md, "The emulated car".
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.car.rootfs import CPUS, INTERPRETERS, REPO, run_in_car

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]  # emulated, and the first one trains car_bundle
CPU_IDS = sorted(CPUS)
MODULES = {"litert": "ai_edge_litert", "tflite": "tflite_runtime"}


def _ok(result, what: str) -> str:
    assert result.returncode == 0, f"{what} failed in the car ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def data(car_root: Path, car_bundle: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder bound at /data in the car: the bundle, and a short MJPG clip made on the host."""
    import cv2

    folder = tmp_path_factory.mktemp("car-data")
    shutil.copytree(car_bundle["bundle"], folder / "bundle")
    writer = cv2.VideoWriter(str(folder / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
    rng = np.random.default_rng(0)
    for index in range(24):
        frame = np.full((120, 160, 3), 40 + 8 * index, np.uint8)
        frame[30:90, 60:100] = rng.integers(0, 256, 3)
        writer.write(frame)
    writer.release()
    return folder


def _run(argv: list[str], data: Path, cpu: str, interpreter: str = "litert", timeout: float = 600):
    return run_in_car(argv, cpu=CPUS[cpu], interpreter=interpreter, binds={data: "/data"}, timeout=timeout)


@pytest.mark.parametrize("interpreter", sorted(INTERPRETERS))
def test_readme_venv_keeps_debian_numpy_and_opencv(car_root, interpreter):
    code = ("import json, platform, cv2, numpy, " + MODULES[interpreter] + " as i\n"
            "print(json.dumps({'cv2': cv2.__version__, 'cv2_file': cv2.__file__, 'numpy': numpy.__version__,"
            " 'numpy_file': numpy.__file__, 'machine': platform.machine(), 'python': platform.python_version()}))")
    found = json.loads(_ok(run_in_car(["python", "-c", code], interpreter=interpreter), "import").splitlines()[-1])
    assert found["machine"] == "aarch64" and found["python"].startswith("3.11.")
    assert found["numpy"].startswith("1.24.") and found["numpy_file"].startswith("/usr/lib/python3/dist-packages/")
    assert found["cv2"].startswith("4.6.") and found["cv2_file"].startswith("/usr/lib/python3/dist-packages/")


@pytest.mark.parametrize("cpu", CPU_IDS)
@pytest.mark.parametrize("interpreter", sorted(INTERPRETERS))
def test_bundle_verify(data, cpu, interpreter):
    report = json.loads(_ok(_run(["edgekit", "bundle", "verify", "--json", "/data/bundle"], data, cpu, interpreter),
                            "bundle verify"))
    assert report["self_test"] == "ok"
    assert report["interpreter"].startswith(MODULES[interpreter]) and report["interpreter"].endswith("on aarch64")
    assert report["golden_inputs"] >= 4


@pytest.mark.parametrize("interpreter", sorted(INTERPRETERS))
def test_car_resnet8_int8_loads_and_answers_on_the_car(car_root, resnet8_bundle, tmp_path, interpreter):
    """Issue 17's model on the car's runtimes: tflite-runtime 2.14 (last release) must accept its int8 ops
    (CONV_2D, ADD, MEAN, FULLY_CONNECTED, SOFTMAX) and give the golden answers, as LiteRT does."""
    shutil.copytree(resnet8_bundle["bundle"], tmp_path / "bundle")
    report = json.loads(_ok(_run(["edgekit", "bundle", "verify", "--json", "/data/bundle"], tmp_path, "pi4", interpreter),
                            "bundle verify (car-resnet8)"))
    assert report["self_test"] == "ok" and report["golden_inputs"] >= 4
    assert report["interpreter"].startswith(MODULES[interpreter]) and report["interpreter"].endswith("on aarch64")


def _store_rows(log: Path) -> int:
    from edge.samplelog.store import SampleStore

    with SampleStore(log, readonly=True) as store:
        check = store.check()
    assert check["ok"], check
    return check["rows"]


@pytest.mark.parametrize("cpu", CPU_IDS)
def test_run_synthetic_with_sample_log(data, cpu):
    log = data / f"log-{cpu}"
    out = _ok(_run(["edgekit", "run", "--bundle", "/data/bundle", "--source", "synthetic:seed=3",
                    "--size", "160x120", "--frames", "40", "--log-dir", f"/data/{log.name}", "--log-random", "0.5",
                    "--log-seed", "1"], data, cpu), "edgekit run (synthetic)")
    results = [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"label"' in line]
    assert len(results) == 40
    assert 5 <= _store_rows(log) <= 35  # about half of 40 frames, every file hashed and indexed


@pytest.mark.parametrize("cpu", CPU_IDS)
def test_run_video_file_with_debian_opencv(data, cpu):
    log = data / f"video-log-{cpu}"
    out = _ok(_run(["edgekit", "run", "--bundle", "/data/bundle", "--source", "/data/clip.avi",
                    "--log-dir", f"/data/{log.name}", "--log-random", "1"], data, cpu), "edgekit run (video)")
    results = [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"label"' in line]
    assert len(results) == 24  # every frame of the clip, decoded by Debian's OpenCV 4.6
    assert _store_rows(log) == 24


def test_bench_device(data, cpu="pi4"):
    """It runs (three emulated processes, minutes): its figures say nothing about a Pi's speed, and
    the kernels are checked on both CPU models by verify and the agreement test, so Pi 4 only."""
    report = json.loads(_ok(_run(["edgekit", "bench-device", "--bundle", "/data/bundle", "--frames", "10",
                                  "--max-threads", "1", "--size", "160x120", "--json"], data, cpu),
                            "bench-device"))
    assert report["interpreter"].startswith("ai_edge_litert")
    assert [row["threads"] for row in report["invoke"]] == [1] and all(row["p50_ms"] > 0 for row in report["invoke"])
    assert report["end_to_end"]["frames"] == 10 and report["end_to_end"]["fps"] > 0
    assert report["peak_rss_mb"] > 0 and report["start_to_first_result_s"] > 0


def _car_python(folder: Path, cpu: str, interpreter: str, binds: dict[Path, str]) -> Path:
    """A host executable that is the car's python (what `check-runtime --python` calls)."""
    script = folder / f"car-python-{cpu}-{interpreter}"
    bind_args = " ".join(f"--bind {host}:{inside}" for host, inside in binds.items())
    script.write_text(f"#!/bin/sh\nexec {sys.executable} {REPO / 'tests/car/rootfs.py'} exec --cpu {CPUS[cpu]} "
                      f"--interpreter {interpreter} {bind_args} -- python \"$@\"\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


@pytest.mark.parametrize("cpu", CPU_IDS)
def test_check_runtime_through_the_emulated_python(data, cpu, tmp_path):
    from tests.conftest import run_edgekit

    # The probe reads the repo's runtime_probe.py and the bundle by their host paths: bind both there.
    binds = {REPO: str(REPO), data: str(data)}
    pythons = [_car_python(tmp_path, cpu, name, binds) for name in sorted(INTERPRETERS)]
    result = run_edgekit("check-runtime", str(data / "bundle"), "--json",
                         *[arg for p in pythons for arg in ("--python", str(p))], timeout=600,
                         env={"PATH": os.environ["PATH"]})
    assert result.returncode == 0, result.stdout + result.stderr
    reports = json.loads(result.stdout)
    seen = {i["interpreter"] for r in reports for i in r["interpreters"]}
    assert {"ai_edge_litert", "tflite_runtime"} <= seen, reports
