"""Deploy: copy -> verify on the target -> atomic switch; interrupted anywhere, `current` still works."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from pathlib import Path

import pytest

from edge.bundle import verify_bundle
from tests.conftest import DEVICE_PYTHON, run_edgekit
from tests.tiny_bundles import float_tflite, write_bundle
from train.deploy import DeployError, LocalTarget, SshTarget, deploy, rollback, status
from train.registry import Registry

# The "car" runs the device-only environment when it exists (no TensorFlow), as a real car would.
CAR_PYTHON = str(DEVICE_PYTHON if DEVICE_PYTHON.exists() else sys.executable)
CAR_EDGEKIT = [CAR_PYTHON, "-m", "edge.cli"]


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bundles")
    return {v: write_bundle(root / v, float_tflite(), name="signals", version=v) for v in ("v0001", "v0002", "v0003", "v0004")}


def car(tmp_path: Path, edgekit: list[str] | None = None) -> LocalTarget:
    return LocalTarget(tmp_path / "car", edgekit=edgekit or CAR_EDGEKIT)


def assert_current_works(root: Path, release: str) -> None:
    assert os.readlink(root / "current") == f"releases/{release}"
    assert verify_bundle(root / "current")["version"] == release  # checksums + golden self-test


def test_deploy_keeps_last_k_and_rolls_back(tmp_path, bundles):
    target = car(tmp_path)
    first = deploy(bundles["v0001"], "v0001", target, keep=3)
    assert first.previous is None and first.verify_report["self_test"] == "ok"
    assert first.verify_report["interpreter"]  # the target's interpreter answered
    for version in ("v0002", "v0003", "v0004"):
        deploy(bundles[version], version, target, keep=3)
    assert_current_works(target.root, "v0004")
    state = status(target)
    assert state["previous"] == "v0003" and sorted(state["releases"]) == ["v0002", "v0003", "v0004"]

    back = rollback(target)
    assert (back.release, back.previous) == ("v0003", "v0004")
    assert_current_works(target.root, "v0003")
    rollback(target)  # and forth again
    assert_current_works(target.root, "v0004")
    # deploying what is already there re-verifies it and copies nothing
    again = deploy(bundles["v0004"], "v0004", target, keep=3)
    assert not again.copied and os.readlink(target.root / "previous") == "releases/v0003"


def test_interrupted_copy_keeps_current(tmp_path, bundles, monkeypatch):
    target = car(tmp_path)
    deploy(bundles["v0001"], "v0001", target)
    real_copy = shutil.copy2
    calls = []

    def copy_then_die(src, dst, **kwargs):
        calls.append(src)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the user pressed Ctrl-C halfway through the copy
        return real_copy(src, dst, **kwargs)

    monkeypatch.setattr(shutil, "copy2", copy_then_die)
    with pytest.raises(KeyboardInterrupt):
        deploy(bundles["v0002"], "v0002", target)
    monkeypatch.undo()
    assert_current_works(target.root, "v0001")
    assert not (target.root / "releases" / "v0002").exists()  # a half copy never has a release name
    deploy(bundles["v0002"], "v0002", target)  # the next deploy cleans up and succeeds
    assert_current_works(target.root, "v0002")
    assert [p.name for p in (target.root / "releases").iterdir()] != [] and not list(
        (target.root / "releases").glob(".incoming-*"))


def test_killed_verifier_keeps_current(tmp_path, bundles):
    deploy(bundles["v0001"], "v0001", car(tmp_path))
    dying = car(tmp_path, edgekit=["sh", "-c", "kill -9 $$", "verifier"])
    with pytest.raises(DeployError, match="killed by signal 9"):
        deploy(bundles["v0002"], "v0002", dying)
    assert_current_works(tmp_path / "car", "v0001")
    assert not (tmp_path / "car" / "releases" / "v0002").exists()


def test_bundle_damaged_on_the_target_is_refused(tmp_path, bundles, monkeypatch):
    target = car(tmp_path)
    deploy(bundles["v0001"], "v0001", target)
    real_upload = LocalTarget.upload

    def upload_and_damage(self, bundle_dir, release):
        real_upload(self, bundle_dir, release)
        model = self.releases / release / "model.tflite"
        data = bytearray(model.read_bytes())
        data[len(data) // 2] ^= 0xFF  # a bad SD-card write
        model.write_bytes(bytes(data))

    monkeypatch.setattr(LocalTarget, "upload", upload_and_damage)
    with pytest.raises(DeployError, match="checksum"):
        deploy(bundles["v0002"], "v0002", target)
    assert_current_works(target.root, "v0001")


def test_interrupted_switch_keeps_current(tmp_path, bundles, monkeypatch):
    target = car(tmp_path)
    deploy(bundles["v0001"], "v0001", target)
    real_replace = os.replace

    def die_on_current(src, dst):
        if Path(dst).name == "current":
            raise KeyboardInterrupt  # killed after `previous` was written, before `current`
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", die_on_current)
    with pytest.raises(KeyboardInterrupt):
        deploy(bundles["v0002"], "v0002", target)
    monkeypatch.undo()
    assert_current_works(target.root, "v0001")
    result = deploy(bundles["v0002"], "v0002", target)  # resumes: already copied, verified again
    assert not result.copied
    assert_current_works(target.root, "v0002")
    assert not list(target.root.glob(".*tmp*"))


def test_deploy_process_killed_during_verify(tmp_path, bundles):
    """A real SIGKILL of `edgekit deploy` while the target verifies."""
    root = tmp_path / "car"
    run_edgekit("deploy", str(bundles["v0001"]), "--to", str(root),
                "--target-edgekit", shlex.join(CAR_EDGEKIT), check=True)
    killer = shlex.join(["sh", "-c", "kill -9 $PPID; sleep 2", "verifier"])
    result = run_edgekit("deploy", str(bundles["v0002"]), "--to", str(root), "--target-edgekit", killer)
    assert result.returncode == -9
    assert_current_works(root, "v0001")
    resumed = run_edgekit("deploy", str(bundles["v0002"]), "--to", str(root),
                          "--target-edgekit", shlex.join(CAR_EDGEKIT), check=True)
    assert "already on the target" in resumed.stdout and "current -> v0002" in resumed.stdout
    assert_current_works(root, "v0002")


def test_ssh_target_runs_the_same_steps(tmp_path, bundles):
    """SshTarget's shell commands, run through a stand-in for ssh (there is no second machine here)."""
    fake_ssh = tmp_path / "fake-ssh"
    fake_ssh.write_text('#!/bin/sh\n# fake-ssh [options] HOST COMMAND: run COMMAND here\n'
                        'for last; do :; done\nexec sh -c "$last"\n')
    fake_ssh.chmod(0o755)
    root = tmp_path / "car"
    target = SshTarget("pi@car", str(root), edgekit=shlex.join(CAR_EDGEKIT), ssh=[str(fake_ssh)])
    deploy(bundles["v0001"], "v0001", target, keep=2)
    deploy(bundles["v0002"], "v0002", target, keep=2)
    deploy(bundles["v0003"], "v0003", target, keep=2)
    assert_current_works(root, "v0003")
    assert sorted(status(target)["releases"]) == ["v0002", "v0003"]
    assert rollback(target).release == "v0002"
    assert_current_works(root, "v0002")
    dying = SshTarget("pi@car", str(root), edgekit="sh -c 'kill -9 $$' x", ssh=[str(fake_ssh)])
    with pytest.raises(DeployError, match="could not verify"):
        deploy(bundles["v0004"], "v0004", dying, keep=2)
    assert_current_works(root, "v0002")


def test_cli_deploys_from_the_registry(tmp_path, bundles):
    models = tmp_path / "models"
    registry = Registry(models)
    registry.register("signals", bundles["v0001"])
    registry.promote("signals", "v0001")
    root = tmp_path / "car"
    out = run_edgekit("deploy", "production", "--registry", str(models), "--to", str(root),
                      "--target-edgekit", shlex.join(CAR_EDGEKIT), check=True)
    assert "verify: ok" in out.stdout and "current -> v0001" in out.stdout
    assert "health: current verified after the switch" in out.stdout
    assert "release v0001 holds bundle signals:v0001" in out.stdout
    assert_current_works(root, "v0001")
    assert registry.history("signals")[-1]["action"] == "deploy"
    for args, message in [
        (("v0042", "--registry", str(models)), "no version v0042"),
        (("--rollback",), "no previous release"),
        ((str(tmp_path / "missing-bundle"), "--registry", str(models)), "missing-bundle does not exist"),
        (("production", "--registry", str(models), "--keep", "1"), "--keep must be at least 2"),
    ]:
        result = run_edgekit("deploy", *args, "--to", str(root))
        assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
        assert message in result.stderr, result.stderr
    assert_current_works(root, "v0001")


def test_registered_version_without_a_recorded_hash_is_refused(tmp_path, bundles):
    from train.deploy import registered_digest

    registry = Registry(tmp_path / "models")
    entry = registry.register("signals", bundles["v0001"])
    assert registered_digest(entry) == entry.lineage["bundle_manifest_sha256"]
    lineage = entry.path / "lineage.json"
    record = json.loads(lineage.read_text())
    del record["bundle_manifest_sha256"]
    lineage.write_text(json.dumps(record))
    with pytest.raises(DeployError, match="no recorded manifest hash"):
        registered_digest(registry.get("signals", "v0001"))
