"""Fault replays for bundles and deploy (issue 14 items 2, 3, 4, 7, 12): tampered manifests,
models that are not the converted one, bundles that cannot work, concurrent and killed deploys,
hostile JSON. Each attack must be refused with one line, and the car must keep a working `current`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from convert.bundle_writer import seal
from edge.bundle import (
    ACCEPTED_FILE,
    BundleError,
    digest_line,
    file_sha256,
    load_verified,
    manifest_digest,
    open_bundle,
    verify_bundle,
)
from edge.interpreter import TFLiteModel
from edge.runtime.model import load_model
from edge.signing import TRUSTED_KEYS, init_keys, load_signing_key
from tests.conftest import DEVICE_PYTHON, run_edgekit
from tests.tiny_bundles import float_tflite, write_bundle
from train.deploy import DeployError, LocalTarget, deploy, registered_digest, rollback, status
from train.registry import Registry

CAR_PYTHON = str(DEVICE_PYTHON if DEVICE_PYTHON.exists() else sys.executable)
CAR_EDGEKIT = [CAR_PYTHON, "-m", "edge.cli"]


# --- what an attacker (or a bad SD card) does to a bundle -----------------------------------

def swap_labels(folder: Path, reseal: bool) -> None:
    """Reverse the label order (red lights become "green"); with `reseal`, redo manifest.sha256 too."""
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["labels"] = manifest["labels"][::-1]
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    if reseal:
        seal(folder)


def rehash(folder: Path, **manifest_changes) -> None:
    """Change manifest fields and redo every hash the bundle carries (all an attacker can do
    without the signing key)."""
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["files"] = {name: file_sha256(folder / name) for name in manifest["files"]}
    manifest.update(manifest_changes)
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    seal(folder)


def flip_weights(flatbuffer: bytes) -> bytes:
    """XOR 0xFF into 16 bytes of the model's largest weight tensor (a flatbuffer that still loads)."""
    model = TFLiteModel(flatbuffer, num_threads=1)
    best = b""
    for detail in model.tensor_details():
        try:
            data = model._interpreter.get_tensor(detail["index"]).tobytes()
        except ValueError:
            continue
        if len(data) > len(best) and flatbuffer.count(data) == 1:
            best = data
    assert len(best) >= 64, "no weight tensor found in the model"
    start = flatbuffer.find(best) + len(best) // 2
    flipped = bytearray(flatbuffer)
    for i in range(start, start + 16):
        flipped[i] ^= 0xFF
    return bytes(flipped)


def one_line_error(result) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def releases(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-bundles")
    return {v: write_bundle(root / v, float_tflite(), name="signals", version=v) for v in ("v0001", "v0002", "v0003")}


def copy(bundle: Path, tmp_path: Path, name: str = "b") -> Path:
    return Path(shutil.copytree(bundle, tmp_path / name))


@pytest.fixture
def car_keys(tmp_path, monkeypatch) -> dict[str, Path]:
    """A workstation key pair, and a car (this process and its children) that trusts it."""
    workstation, car = tmp_path / "workstation-keys", tmp_path / "car-keys"
    _, public = init_keys(workstation)
    car.mkdir()
    (car / TRUSTED_KEYS).write_text(public.read_text())
    monkeypatch.setenv("EDGEKIT_CONFIG_DIR", str(car))
    return {"workstation": workstation, "car": car, "key": load_signing_key(workstation / "signing.key")}


# --- item 2: every byte the car acts on is covered by a digest -------------------------------

@pytest.mark.fault("tampered manifest")
def test_swapped_labels_with_the_old_digest_fail_verify_load_and_the_cli(releases, tmp_path):
    folder = copy(releases["v0001"], tmp_path)
    verify_bundle(folder)  # sound before
    swap_labels(folder, reseal=False)
    for check in (verify_bundle, load_verified, load_model):
        with pytest.raises(BundleError, match="manifest.json .* does not match manifest.sha256"):
            check(folder)
    line = one_line_error(run_edgekit("bundle", "verify", str(folder), python=CAR_PYTHON))
    assert "does not match manifest.sha256" in line


@pytest.mark.fault("tampered manifest")
def test_bundle_without_a_digest_is_refused(releases, tmp_path):
    folder = copy(releases["v0001"], tmp_path)
    (folder / "manifest.sha256").unlink()
    with pytest.raises(BundleError, match="covered by no hash"):
        verify_bundle(folder)


@pytest.mark.slow
@pytest.mark.fault("tampered manifest")
def test_swapped_labels_with_a_recomputed_digest_fail_deploy_of_the_registered_version(releases, tmp_path):
    registry = Registry(tmp_path / "models")
    entry = registry.register("signals", releases["v0001"])
    registry.promote("signals", "v0001")
    car = tmp_path / "car"
    run_edgekit("deploy", "production", "--registry", str(registry.root), "--to", str(car),
                "--target-edgekit", shlex.join(CAR_EDGEKIT), check=True)
    swap_labels(entry.bundle_path, reseal=True)
    assert open_bundle(entry.bundle_path).labels[0] == "yellow"  # the digest alone no longer catches it
    line = one_line_error(run_edgekit("deploy", "v0001", "--registry", str(registry.root), "--to",
                                      str(tmp_path / "car2"), "--target-edgekit", shlex.join(CAR_EDGEKIT)))
    assert "is not the bundle that was registered" in line
    assert not (tmp_path / "car2" / "releases" / "v0001").exists()  # nothing was copied
    with pytest.raises(DeployError, match="not the bundle that was registered"):
        deploy(entry.bundle_path, "v0001", LocalTarget(car, edgekit=CAR_EDGEKIT),
               expected_digest=registered_digest(entry))
    assert verify_bundle(car / "current")["labels"][0] == "green"


@pytest.mark.fault("tampered manifest")
def test_car_refuses_a_bundle_other_than_the_one_sent(releases, tmp_path):
    """The digest deploy sends is checked on the car: a bundle changed after the copy is refused."""
    folder = copy(releases["v0001"], tmp_path)
    good = manifest_digest(folder)
    swap_labels(folder, reseal=True)
    line = one_line_error(run_edgekit("bundle", "verify", "--expect-digest", good, str(folder), python=CAR_PYTHON))
    assert "is not the bundle that was sent" in line
    target = LocalTarget(tmp_path / "car", edgekit=CAR_EDGEKIT)
    deploy(releases["v0001"], "v0001", target)
    real_upload = LocalTarget.upload

    def upload_then_tamper(self, bundle_dir, release):
        real_upload(self, bundle_dir, release)
        swap_labels(self.releases / release, reseal=True)  # changed on the car before verify

    target.upload = upload_then_tamper.__get__(target)
    with pytest.raises(DeployError, match="is not the bundle that was sent"):
        deploy(releases["v0002"], "v0002", target)
    assert status(target)["current"] == "v0001" and not (target.releases / "v0002").exists()


@pytest.mark.fault("tampered manifest")
def test_release_changed_on_the_car_after_deploy_is_refused_at_load_and_hot_swap(releases, tmp_path):
    target = LocalTarget(tmp_path / "car", edgekit=CAR_EDGEKIT)
    deploy(releases["v0001"], "v0001", target)
    release = target.releases / "v0001"
    assert (release / ACCEPTED_FILE).read_text().strip() == manifest_digest(releases["v0001"])
    load_model(tmp_path / "car" / "current")  # loads before
    swap_labels(release, reseal=True)
    with pytest.raises(BundleError, match="changed after it was deployed"):
        load_model(tmp_path / "car" / "current")  # runtime start and hot swap both load this way
    line = one_line_error(run_edgekit("bundle", "verify", str(tmp_path / "car" / "current"), python=CAR_PYTHON))
    assert "changed after it was deployed" in line


@pytest.mark.slow
@pytest.mark.fault("unsigned or badly signed bundle")
def test_car_with_a_trusted_key_refuses_unsigned_foreign_and_tampered_bundles(releases, tmp_path, car_keys):
    unsigned = copy(releases["v0001"], tmp_path, "unsigned")
    with pytest.raises(BundleError, match="is not signed"):
        verify_bundle(unsigned)
    signed = copy(releases["v0001"], tmp_path, "signed")
    seal(signed, car_keys["key"])
    report = verify_bundle(signed)
    assert report["signature"].startswith("ok (key ")

    stranger = tmp_path / "stranger"
    init_keys(stranger)
    foreign = copy(releases["v0001"], tmp_path, "foreign")
    seal(foreign, load_signing_key(stranger / "signing.key"))
    with pytest.raises(BundleError, match="which this machine does not trust"):
        verify_bundle(foreign)

    tampered = copy(signed, tmp_path, "tampered")
    signature = (tampered / "manifest.sig").read_bytes()
    swap_labels(tampered, reseal=True)  # the attacker redoes the digest, but cannot re-sign
    (tampered / "manifest.sig").write_bytes(signature)
    for check in (verify_bundle, load_model):
        with pytest.raises(BundleError, match="signature .* does not match its manifest"):
            check(tampered)
    line = one_line_error(run_edgekit("bundle", "verify", str(tampered), python=CAR_PYTHON))
    assert "does not match its manifest" in line
    target = LocalTarget(tmp_path / "car", edgekit=CAR_EDGEKIT)
    deploy(signed, "v0001", target)
    with pytest.raises(DeployError, match="does not match its manifest"):
        deploy(tampered, "v0002", target)
    assert status(target)["current"] == "v0001"


# --- item 3: golden inputs that tell models apart --------------------------------------------

@pytest.mark.fault("wrong model under a re-hashed manifest")
def test_flipped_weight_bytes_fail_the_self_test(bundles, tmp_path):
    folder = copy(bundles["int8"], tmp_path)
    (folder / "model.tflite").write_bytes(flip_weights((folder / "model.tflite").read_bytes()))
    rehash(folder)
    open_bundle(folder)  # every hash matches: only the golden self-test can tell
    with pytest.raises(BundleError, match="self-test failed"):
        verify_bundle(folder)


@pytest.mark.slow
@pytest.mark.fault("wrong model under a re-hashed manifest")
def test_a_different_model_of_the_same_shape_fails_the_self_test(bundles, tiny_other_int8, tmp_path):
    folder = copy(bundles["int8"], tmp_path)
    other = TFLiteModel(tiny_other_int8, num_threads=1)
    mine = TFLiteModel(folder / "model.tflite", num_threads=1)
    assert other.describe()["input"] == mine.describe()["input"]  # same shape, dtype, quantization
    (folder / "model.tflite").write_bytes(tiny_other_int8)
    rehash(folder)
    with pytest.raises(BundleError, match="self-test failed"):
        verify_bundle(folder)


@pytest.fixture(scope="module")
def tiny_other_int8(tiny_fixture_data) -> bytes:
    """The convert tests' model architecture trained one more epoch, converted to int8."""
    import keras

    from convert.tflite import convert_keras
    from tests.convert_helpers import make_model

    path = make_model(tiny_fixture_data["dir"] / "other.keras", tiny_fixture_data["data"], epochs=3)
    with np.load(tiny_fixture_data["data"], allow_pickle=False) as data:
        representative = data["images"][:100]
    return convert_keras(keras.saving.load_model(path, safe_mode=True), "int8", representative)


@pytest.fixture(scope="module")
def tiny_fixture_data(tmp_path_factory) -> dict[str, Path]:
    from tests.convert_helpers import make_dataset

    folder = tmp_path_factory.mktemp("other-model")
    return {"dir": folder, "data": make_dataset(folder / "data.npz")}


# --- item 4: one check for verify, deploy and load; never prune the last good release --------

@pytest.mark.fault("bundle that cannot work")
@pytest.mark.parametrize("change, message", [
    ({"preprocess": {"input_size": [9, 9], "roi": [0, 0, 1, 1], "resize": "stretch", "interpolation": "area",
                     "color": "rgb"}}, "its preprocessing makes"),
    ({"preprocess": {"input_size": [100000, 100000], "roi": [0, 0, 1, 1], "resize": "stretch",
                     "interpolation": "area", "color": "rgb"}}, "pixels a side"),
    ({"preprocess": {"input_size": "8x8"}}, "preprocessing spec is unusable"),
    ({"labels": ["a"] * 4}, "repeat a name"),
    ({"labels": "green,none,red,yellow"}, "list of strings"),
    ({"files": ["model.tflite"]}, "map file names"),
    ({"model": {"file": ".hidden.tflite", "input": {}, "output": {}}}, "tensor shape|not one of the files"),
    ({"golden": {"file": "golden.npz", "atol": 1.0}}, "not a tolerance"),
    ({"golden": {"file": "golden.npz", "atol": "loose"}}, "not a tolerance"),
    ({"tools": {"interpreter": ["ai_edge_litert"]}}, "tools.interpreter"),
])
def test_bundle_that_cannot_work_fails_verify_load_and_deploy_alike(releases, tmp_path, change, message):
    folder = copy(releases["v0001"], tmp_path)
    rehash(folder, **change)
    for check in (verify_bundle, load_model):
        with pytest.raises(BundleError, match=message):
            check(folder)
    target = LocalTarget(tmp_path / "car", edgekit=CAR_EDGEKIT)
    with pytest.raises(DeployError, match=message):
        deploy(folder, "v0002", target)
    assert status(target)["current"] is None and not (target.releases / "v0002").exists()


@pytest.mark.fault("bundle that cannot work")
def test_prune_keeps_the_newest_release_that_passed(releases, tmp_path):
    target = LocalTarget(tmp_path / "car", edgekit=CAR_EDGEKIT)
    deploy(releases["v0001"], "v0001", target)
    # Releases that never passed the check on this car (copied by hand, or by an old edgekit):
    for name in ("x1", "x2", "x3"):
        shutil.copytree(releases["v0002"], target.releases / name)
        time.sleep(0.01)
        os.utime(target.releases / name)
    target.set_link("current", "x3")
    target.set_link("previous", "x2")
    from train.deploy import prune

    assert prune(target, keep=2) == ["x1"]
    assert (target.releases / "v0001").is_dir()  # the last good release stays for a rollback


@pytest.mark.fault("bad release after the switch")
def test_failed_health_check_after_the_switch_rolls_back(releases, tmp_path):
    """A car that verifies the release folder but cannot load it through `current`."""
    root = tmp_path / "car"
    deploy(releases["v0001"], "v0001", LocalTarget(root, edgekit=CAR_EDGEKIT))
    wrapper = tmp_path / "car-edgekit"
    wrapper.write_text("#!/bin/sh\n"
                       'for last; do :; done\n'
                       'case "$last" in */current) echo "edgekit: current does not load" >&2; exit 1;; esac\n'
                       f'exec {shlex.join(CAR_EDGEKIT)} "$@"\n')
    wrapper.chmod(0o755)
    with pytest.raises(DeployError, match="current does not load.*rolled back: `current` points to v0001"):
        deploy(releases["v0002"], "v0002", LocalTarget(root, edgekit=[str(wrapper)]))
    assert os.readlink(root / "current") == "releases/v0001"
    assert not (root / "releases" / "v0002").exists()
    assert verify_bundle(root / "current")["version"] == "v0001"


# --- item 7: concurrent and killed deploys -------------------------------------------------

@pytest.mark.slow
@pytest.mark.fault("concurrent deploys")
def test_second_deploy_to_a_busy_target_refuses_in_one_line_or_waits(releases, tmp_path):
    root = tmp_path / "car"
    holder = LocalTarget(root, edgekit=CAR_EDGEKIT)
    outcome: dict = {}
    waiting = threading.Thread(target=lambda: outcome.update(
        result=deploy(releases["v0002"], "v0002", LocalTarget(root, edgekit=CAR_EDGEKIT, lock_wait=120))))
    with holder.lock():  # a deploy in progress
        line = one_line_error(run_edgekit("deploy", str(releases["v0001"]), "--to", str(root), "--lock-wait", "0.2",
                                          "--target-edgekit", shlex.join(CAR_EDGEKIT)))
        assert "another deploy or rollback to" in line and "is running" in line
        waiting.start()
        time.sleep(0.5)
        assert waiting.is_alive() and not (root / "releases" / "v0002").exists()  # it waits, copies nothing
    waiting.join()
    assert outcome["result"].release == "v0002"


@pytest.mark.slow
@pytest.mark.fault("concurrent deploys")
def test_two_deploys_at_once_end_in_a_consistent_target(releases, tmp_path):
    root = tmp_path / "car"
    results: dict = {}

    def run(version: str) -> None:
        results[version] = deploy(releases[version], version, LocalTarget(root, edgekit=CAR_EDGEKIT, lock_wait=120))

    threads = [threading.Thread(target=run, args=(v,)) for v in ("v0001", "v0002")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(results) == {"v0001", "v0002"}  # both finished, one after the other
    state = status(LocalTarget(root))
    last = state["current"]
    assert {state["current"], state["previous"]} == {"v0001", "v0002"} and results[last].previous == state["previous"]
    assert verify_bundle(root / "current")["version"] == last
    assert verify_bundle(root / "previous")["version"] == state["previous"]
    assert not list((root / "releases").glob(".incoming-*"))


@pytest.mark.fault("concurrent deploys")
def test_ssh_target_takes_the_lock_on_the_car(releases, tmp_path):
    """SshTarget's lock is `flock` in the remote command (run here through a stand-in for ssh)."""
    from train.deploy import SshTarget

    if not shutil.which("flock"):
        pytest.skip("flock (util-linux) is not installed")
    fake_ssh = tmp_path / "fake-ssh"
    fake_ssh.write_text('#!/bin/sh\nfor last; do :; done\nexec sh -c "$last"\n')
    fake_ssh.chmod(0o755)
    root = tmp_path / "car"
    holder = SshTarget("pi@car", str(root), edgekit=shlex.join(CAR_EDGEKIT), ssh=[str(fake_ssh)], lock_wait=0.3)
    other = LocalTarget(root, edgekit=CAR_EDGEKIT, lock_wait=0.3)
    with holder.lock():
        with pytest.raises(DeployError, match="another deploy or rollback"):
            deploy(releases["v0001"], "v0001", other)
        second = SshTarget("pi@car", str(root), edgekit=shlex.join(CAR_EDGEKIT), ssh=[str(fake_ssh)],
                           lock_wait=0.3)
        with pytest.raises(DeployError, match="another deploy or rollback"):
            deploy(releases["v0001"], "v0001", second)
    assert deploy(releases["v0001"], "v0001", holder).release == "v0001"  # released on exit


@pytest.mark.slow
@pytest.mark.fault("deploy killed mid-switch")
def test_killed_between_the_link_renames_leaves_somewhere_to_roll_back_to(releases, tmp_path, monkeypatch):
    target = LocalTarget(tmp_path / "car", edgekit=CAR_EDGEKIT)
    for version in ("v0001", "v0002", "v0003"):
        deploy(releases[version], version, target)
    real_replace = os.replace

    def die_on_previous(src, dst):
        if Path(dst).name == "previous":
            raise KeyboardInterrupt  # killed after `current` was switched, before `previous`
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", die_on_previous)
    with pytest.raises(KeyboardInterrupt):
        deploy(releases["v0002"], "v0002", target)  # back to the release `previous` names
    monkeypatch.undo()
    state = status(target)
    assert state["current"] == "v0002" and verify_bundle(target.root / "current")["version"] == "v0002"
    back = rollback(target)  # repairs `previous` first: the newest other release that passed
    assert (back.release, back.previous) == ("v0003", "v0002")
    assert (status(target)["current"], status(target)["previous"]) == ("v0003", "v0002")


# --- item 12: hostile JSON --------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.fault("hostile manifest JSON")
@pytest.mark.parametrize("depth", [100, 100_000])
def test_deeply_nested_manifest_is_one_line_in_verify_and_deploy(releases, tmp_path, depth):
    folder = copy(releases["v0001"], tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    text = json.dumps(manifest)[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}"
    (folder / "manifest.json").write_text(text)
    seal(folder)
    with pytest.raises(BundleError, match="nested"):
        verify_bundle(folder)
    line = one_line_error(run_edgekit("bundle", "verify", str(folder), python=CAR_PYTHON))
    assert "nested" in line
    line = one_line_error(run_edgekit("deploy", str(folder), "--to", str(tmp_path / "car"),
                                      "--target-edgekit", shlex.join(CAR_EDGEKIT)))
    assert "nested" in line
    assert one_line_error(run_edgekit("bundle", "show", str(folder), python=CAR_PYTHON))


@pytest.mark.fault("hostile manifest JSON")
def test_huge_manifest_is_refused_before_parsing(releases, tmp_path):
    folder = copy(releases["v0001"], tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["padding"] = "x" * (2 << 20)
    data = json.dumps(manifest).encode()
    (folder / "manifest.json").write_bytes(data)
    (folder / "manifest.sha256").write_text(digest_line(hashlib.sha256(data).hexdigest()))
    for check in (verify_bundle, lambda path: open_bundle(path, verify=False)):
        with pytest.raises(BundleError, match="is over 1048576 bytes"):
            check(folder)
