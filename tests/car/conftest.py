"""Fixtures for the emulated-car tests (tests/car/rootfs.py builds and enters the car).

- `car_root`: the built rootfs; skips with one line where this machine cannot emulate, and FAILS
  instead when CI=true (CI must run them).
- `car_bundle`: a real int8 bundle of car-small (tests/car/bundle.py), made once and cached in
  pytest's cache; `resnet8_bundle`: the same for car-resnet8.
"""

from __future__ import annotations

import compileall
import os
from pathlib import Path

import pytest

from tests.car.bundle import DEFAULT_CACHE, make_car_bundle
from tests.car.rootfs import REPO, CarUnavailable, car_rootfs, emulation_problem


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


@pytest.fixture(scope="session")
def car_bundle(pytestconfig: pytest.Config) -> dict[str, Path]:
    """{"bundle": int8 bundle folder, "data": the synthetic dataset .npz} (cached; `make test` makes it
    in the background while the rest of the suite runs)."""
    return make_car_bundle(_bundle_cache(pytestconfig))


@pytest.fixture(scope="session")
def resnet8_bundle(pytestconfig: pytest.Config) -> dict[str, Path]:
    return make_car_bundle(_bundle_cache(pytestconfig), preset="car-resnet8")


def _bundle_cache(pytestconfig: pytest.Config) -> Path:
    cache = pytestconfig.cache.mkdir("car-bundle") if getattr(pytestconfig, "cache", None) else None
    return Path(cache) if cache else DEFAULT_CACHE
