"""The emulated car's test bundles: one per car preset (car-small, car-resnet8), 32x32, trained
briefly on the synthetic drive and converted to int8 by `edgekit convert`, cached under a lock
(keyed on the code that makes them). car-small is the bundle most car tests use; car-resnet8's
shows its ops (conv, add, mean) load and answer on the car's tflite-runtime 2.14 and LiteRT.

`make test` runs `python -m tests.car.bundle` in the background while the rest of the suite runs,
so the car's tests find it made; the `car_bundle` fixture makes it itself otherwise.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from tests.car.rootfs import REPO
from train.models.presets import CAR_PRESETS

SOURCES = ("tests/car/bundle.py", "convert/pipeline.py", "convert/bundle_writer.py", "edge/bundle.py",
           "train/models/presets.py")
SYNTHETIC = "synthetic:n=1600,size=32x32,seed=0"
DEFAULT_CACHE = REPO / ".pytest_cache" / "d" / "car-bundle"  # where pytest's cache puts it


def _edgekit(*args: str, timeout: float = 900) -> None:
    done = subprocess.run([sys.executable, "-m", "edge.cli", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"edgekit {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


def _key() -> str:
    digest = hashlib.sha256()
    for name in SOURCES:
        digest.update((REPO / name).read_bytes())
    return digest.hexdigest()[:12]


def make_car_bundle(cache: Path = DEFAULT_CACHE, preset: str = "car-small") -> dict[str, Path]:
    """{"bundle": int8 bundle folder, "data": the synthetic dataset .npz}, made once per key and preset."""
    cache.mkdir(parents=True, exist_ok=True)
    folder = cache / f"{preset}-{_key()}"
    with open(cache / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "done").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            _edgekit("dataset", "build", "--source", SYNTHETIC, "--out", str(folder / "data.npz"))
            _edgekit("train", str(folder / "data.npz"), "--model", preset, "--epochs", "3", "--quiet",
                     "--out", str(folder / "run"))
            _edgekit("convert", str(folder / "run"), "--mode", "int8", "--out", str(folder / "bundle"),
                     "--data", str(folder / "data.npz"), "--latency-runs", "5", "--no-gate")
            (folder / "done").touch()
    return {"bundle": folder / "bundle", "data": folder / "data.npz"}


if __name__ == "__main__":
    for name in CAR_PRESETS:
        print(make_car_bundle(preset=name)["bundle"])
