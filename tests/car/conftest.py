"""Fixtures for the emulated-car tests (tests/car/rootfs.py builds and enters the car).

- `car_root`: the built rootfs; skips with one line where this machine cannot emulate, and FAILS
  instead when CI=true (CI must run them).
- `car_bundle`: a real int8 bundle (car-small, 32x32, trained briefly on the synthetic drive and
  converted by `edgekit convert`), made once and cached in pytest's cache under a lock.
"""

from __future__ import annotations

import compileall
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.car.rootfs import REPO, CarUnavailable, car_rootfs, emulation_problem

BUNDLE_SOURCES = ("tests/car/conftest.py", "convert/pipeline.py", "convert/bundle_writer.py", "edge/bundle.py",
                  "train/models/presets.py")
SYNTHETIC = "synthetic:n=1600,size=32x32,seed=0"


def skip_or_fail(reason: str) -> None:
    """Skip with `reason`, except under CI=true, where a car test that cannot run is a failure."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but the emulated car cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def car_root() -> Path:
    problem = emulation_problem()
    if problem and os.geteuid() != 0:
        skip_or_fail(problem)
    try:
        root = car_rootfs()
    except CarUnavailable as error:
        skip_or_fail(str(error))
    # The working tree is bound read-only into the car: its .pyc files are made here, once.
    compileall.compile_dir(REPO / "edge", quiet=2)
    compileall.compile_dir(REPO / "tests" / "car", quiet=2)
    return root


def _edgekit(*args: str, timeout: float = 900) -> None:
    done = subprocess.run([sys.executable, "-m", "edge.cli", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=timeout)
    assert done.returncode == 0, f"edgekit {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"


def _bundle_key() -> str:
    digest = hashlib.sha256()
    for name in BUNDLE_SOURCES:
        digest.update((REPO / name).read_bytes())
    return digest.hexdigest()[:12]


@pytest.fixture(scope="session")
def car_bundle(pytestconfig: pytest.Config) -> dict[str, Path]:
    """{"bundle": int8 bundle folder, "data": the synthetic dataset .npz} (cached; the first run trains)."""
    cache = pytestconfig.cache.mkdir("car-bundle") if getattr(pytestconfig, "cache", None) else Path("/tmp/edgekit-car-bundle")
    folder = Path(cache) / _bundle_key()
    Path(cache).mkdir(parents=True, exist_ok=True)
    with open(Path(cache) / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "done").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            _edgekit("dataset", "build", "--source", SYNTHETIC, "--out", str(folder / "data.npz"))
            _edgekit("train", str(folder / "data.npz"), "--model", "car-small", "--epochs", "3", "--quiet",
                     "--out", str(folder / "run"))
            _edgekit("convert", str(folder / "run"), "--mode", "int8", "--out", str(folder / "bundle"),
                     "--data", str(folder / "data.npz"), "--latency-runs", "5", "--no-gate")
            (folder / "done").touch()
    return {"bundle": folder / "bundle", "data": folder / "data.npz"}
