"""Shared test fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CIFAR_ZIP = SHARED / "datasets" / "cifar10-jpg.zip"
DEVICE_PYTHON = ROOT / ".venv-device" / "bin" / "python"
PI_PYTHON = ROOT / ".venv-pi214" / "bin" / "python"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Session fixtures `tiny` and `bundles` (a small converted model in every mode), shared by the convert tests.
from tests.convert_helpers import bundles_fixture, tiny_fixture  # noqa: E402, F401

# `ssh_car`, `fresh_ssh_car`, `emulated_ssh_car`: a car behind a real sshd (tests/sshcar).
from tests.sshcar import emulated_ssh_car, fresh_ssh_car, ssh_car  # noqa: E402, F401


def run_edgekit(*args: str, python: str | Path = sys.executable, check: bool = False,
                timeout: float = 300, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the CLI as a user would, in a subprocess."""
    result = subprocess.run(
        [str(python), "-m", "edge.cli", *args], capture_output=True, text=True,
        timeout=timeout, cwd=cwd or ROOT, env={**os.environ, **(env or {})},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"edgekit {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


@pytest.fixture
def cli():
    return run_edgekit


def needs_cifar() -> pytest.MarkDecorator:
    return pytest.mark.skipif(not CIFAR_ZIP.exists(), reason=f"CIFAR-10 archive not found at {CIFAR_ZIP}")


CAR_FIXTURES = {"car_root", "emulated_ssh_car"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that need the emulated car are marked `car`: `make test-car` runs them, `make test`
    the rest (the rootfs build does not fit its 15 minutes)."""
    for item in items:
        if CAR_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.car)
