"""The emulated-car tests skip where a machine cannot emulate, but never silently in CI."""

from __future__ import annotations

import pytest

from tests.car.conftest import skip_or_fail
from tests.car.rootfs import emulation_problem, readme_blocks


def test_skips_with_the_reason_outside_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no qemu"):
        skip_or_fail("no qemu")


def test_fails_instead_under_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true but the emulated car cannot run: no qemu"):
        skip_or_fail("no qemu")


def test_not_root_is_a_reason(monkeypatch):
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert "root" in emulation_problem()


def test_the_readme_pins_numpy_and_takes_no_opencv_from_pypi():
    """The venv blocks the car is built with keep Debian's numpy and OpenCV (issue 15)."""
    blocks = readme_blocks()
    for name, block in blocks.items():
        assert "--system-site-packages" in block, name
        assert "-c ~/edgekit/constraints.txt" in block and 'print("numpy==" + numpy.__version__)' in block, name
        assert "opencv" not in block and "[device]" not in block, name


def test_the_pi_extras_take_no_opencv_from_pypi():
    from tests.car.rootfs import pi_requirements

    requirements = pi_requirements()
    assert not [r for r in requirements if "opencv" in r], requirements
    assert "tflite-runtime==2.14.0" in requirements and any(r.startswith("ai-edge-litert") for r in requirements)
