"""The README's SSH steps, run as written against a real OpenSSH server (the `ssh_car` fixture).

The car is Debian's sshd with a `pi` user in its own network namespace (or on loopback), its
venv the device extra; the workstation reaches it the way a user would: a `Host car.local`
entry in an ssh config file named by EDGEKIT_SSH (tests/sshcar).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, run_edgekit
from tests.sshcar import SshCar, _children_of, unavailable
from tests.tiny_bundles import float_tflite, write_bundle

CAR = "pi@car.local"


def edgekit(car: SshCar, *args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    return run_edgekit(*args, cwd=cwd, env=car.env, check=check)


def on_car(car: SshCar, script: str) -> str:
    result = car.ssh(script)
    assert result.returncode == 0, f"on the car: {script}\n{result.stderr}"
    return result.stdout


def readme_block(step: str) -> str:
    """The ```bash block that follows the README line starting with `step`."""
    lines = (ROOT / "README.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(step))
    opening = next(i for i in range(start, len(lines)) if lines[i].strip() == "```bash")
    closing = next(i for i in range(opening + 1, len(lines)) if lines[i].strip() == "```")
    return "\n".join(line.strip() for line in lines[opening + 1:closing])


def as_user(car: SshCar, folder: Path) -> dict[str, str]:
    """PATH with `ssh` and `scp` reading the car's config, as ~/.ssh/config would be read."""
    folder.mkdir()
    for tool in ("ssh", "scp"):
        (folder / tool).write_text(f'#!/bin/sh\nexec /usr/bin/{tool} -F {car.ssh_config} "$@"\n')
        (folder / tool).chmod(0o755)
    return {**os.environ, "PATH": f"{folder}:{os.environ['PATH']}"}


@pytest.mark.slow
def test_readme_pi_step_4_by_hand_on_the_emulated_pi(emulated_ssh_car, tmp_path):
    """"On the Pi", step 4 (scp a bundle, point `current` at it, verify on the car), run as written."""
    car = emulated_ssh_car
    write_bundle(tmp_path / "bundles" / "car-small-int8", float_tflite(), name="lights", version="by-hand")
    block = readme_block("4. Copy a bundle")
    result = subprocess.run(["bash", "-ec", block], cwd=tmp_path, env=as_user(car, tmp_path / "bin"),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{block}\n{result.stderr}"
    assert "by-hand" in result.stdout and os.readlink(car.home / "edgekit" / "current") == "releases/v0001"


@pytest.mark.slow
def test_readme_deploy_status_rollback_over_ssh(ssh_car, tmp_path):
    car = ssh_car
    for version, seed in (("v0001", 0), ("v0002", 1)):
        bundle = write_bundle(tmp_path / "bundles" / version, float_tflite(seed), name="lights", version=version)
        edgekit(car, "models", "register", str(bundle), "--name", "lights", "--promote", cwd=tmp_path)
        # README: edgekit deploy production --name lights --to pi@car.local:edgekit
        out = edgekit(car, "deploy", "production", "--name", "lights", "--to", f"{CAR}:edgekit", cwd=tmp_path).stdout
        assert f"copy: copied {CAR}:edgekit/releases/{version}" in out
        assert "verify: ok on the target (ai_edge_litert" in out  # the car's venv verified it
        # README "On the Pi" step 4's check, as pi on the car
        verified = on_car(car, "cd edgekit && venv/bin/edgekit bundle verify --json current")
        assert json.loads(verified[verified.index("{"):])["version"] == version
    assert os.readlink(car.home / "edgekit" / "current") == "releases/v0002"

    state = json.loads(edgekit(car, "deploy", "--status", "--to", f"{CAR}:edgekit", cwd=tmp_path).stdout)
    assert (state["current"], state["previous"]) == ("v0002", "v0001")
    assert sorted(state["releases"]) == ["v0001", "v0002"]

    out = edgekit(car, "deploy", "--rollback", "--to", f"{CAR}:edgekit", cwd=tmp_path).stdout
    assert f"rollback: {CAR}:edgekit current -> v0001 (was v0002)" in out
    assert os.readlink(car.home / "edgekit" / "current") == "releases/v0001"
    # deploying again what the car holds copies nothing and verifies it again
    out = edgekit(car, "deploy", "v0002", "--name", "lights", "--to", f"{CAR}:~/edgekit", cwd=tmp_path).stdout
    assert "already on the target" in out and "switch: current -> v0002 (previous: v0001)" in out


@pytest.mark.slow
def test_readme_deploy_verifies_on_the_emulated_pi(emulated_ssh_car, tmp_path):
    """README: `edgekit deploy production --name lights --to pi@car.local:edgekit`, the car being
    the emulated arm64 Pi: its own LiteRT checks the bundle before `current` moves."""
    car = emulated_ssh_car
    bundle = write_bundle(tmp_path / "bundles" / "v0001", float_tflite(), name="lights", version="v0001")
    edgekit(car, "models", "register", str(bundle), "--name", "lights", "--promote", cwd=tmp_path)
    out = edgekit(car, "deploy", "production", "--name", "lights", "--to", f"{CAR}:edgekit", cwd=tmp_path).stdout
    assert "verify: ok on the target (ai_edge_litert 2.3.0 on aarch64" in out, out
    assert "switch: current -> v0001 (previous: none)" in out
    state = json.loads(edgekit(car, "deploy", "--status", "--to", f"{CAR}:edgekit", cwd=tmp_path).stdout)
    assert state["current"] == "v0001"


def _store_rows(store: Path) -> list[tuple]:
    import sqlite3

    with sqlite3.connect(f"file:{store / 'samples.db'}?mode=ro", uri=True) as db:
        return sorted(db.execute("SELECT sha256, session_id, frame_index, label FROM samples"))


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_readme_pull_over_ssh_is_idempotent_and_resumes_after_a_cut(fresh_ssh_car, tmp_path):
    car = fresh_ssh_car  # its connections get cut
    if car.netns is None:
        unavailable("cutting a pull mid-copy needs the car in a network namespace (to slow its link)")
    bundle = write_bundle(tmp_path / "bundle", float_tflite(), name="lights", version="v0001")
    edgekit(car, "deploy", str(bundle), "--to", f"{CAR}:edgekit", cwd=tmp_path)
    # README, on the car: edgekit run ... --log-dir car/samples (every frame logged, paced to fill a store)
    on_car(car, "edgekit/venv/bin/edgekit run --bundle edgekit/current --source synthetic:frames=80 "
                "--frames 80 --max-fps 25 --quiet --log-dir samples --log-random 1 --log-min-interval 0")
    on_car(car, "edgekit/venv/bin/edgekit samples stats samples")
    car_images = car.home / "samples" / "images"
    sent = _digests(car_images)
    assert len(sent) >= 20, f"the car logged only {len(sent)} samples"

    # README: edgekit pull car/samples field  (# or pi@car.local:samples), cut mid-copy
    incoming = tmp_path / "field" / ".incoming" / "pi_car.local_samples" / "images"
    with car.slow_link("4mbit"):
        pull = subprocess.Popen([sys.executable, "-m", "edge.cli", "pull", f"{CAR}:samples", "field"],
                                cwd=tmp_path, env={**os.environ, **car.env}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len([p for p in incoming.rglob("*") if p.is_file()]) < 5:
            time.sleep(0.01)
        for pid in _children_of(car.process.pid):  # the car's sshd session and rsync: connection cut
            os.kill(pid, signal.SIGKILL)
        _, stderr = pull.communicate(timeout=60)
    assert pull.returncode != 0
    assert len(stderr.strip().splitlines()) == 1 and "run the same pull again to resume" in stderr, stderr
    copied = {name: digest for name, digest in _digests(incoming).items() if sent.get(name) == digest}
    assert 0 < len(copied) < len(sent), "the cut should fall in the middle of the copy"
    inodes = {name: (incoming / name).stat().st_ino for name in copied}
    assert not (tmp_path / "field" / "samples.db").exists() or _store_rows(tmp_path / "field") == []

    resumed = json.loads(edgekit(car, "pull", f"{CAR}:samples", "field", "--json", cwd=tmp_path).stdout)
    assert {name: (incoming / name).stat().st_ino for name in copied} == inodes  # not sent again
    assert _digests(incoming) == sent and resumed["new"] == resumed["dest_rows"] == len(sent)
    again = json.loads(edgekit(car, "pull", f"{CAR}:samples", "field", "--json", cwd=tmp_path).stdout)
    assert (again["new"], again["duplicates"], again["dest_rows"]) == (0, len(sent), len(sent))

    # the same store as one uninterrupted pull straight from the car's folder
    edgekit(car, "pull", str(car.home / "samples"), "reference", cwd=tmp_path)
    assert _store_rows(tmp_path / "field") == _store_rows(tmp_path / "reference")


def test_edgekit_never_turns_host_key_checking_off():
    """ssh keeps the first value of an option: edgekit's come before the user's."""
    from train.deploy import open_target

    target = open_target(f"{CAR}:edgekit", ssh="ssh -o StrictHostKeyChecking=no -F car.conf")
    assert target.ssh[:5] == ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]


TINY_SPEC = {"name": "tiny", "input_shape": [16, 16, 3],
             "layers": [{"type": "conv", "filters": 4, "kernel": 3, "activation": "relu"},
                        {"type": "maxpool"}, {"type": "flatten"}]}
COLORS = {"green": (0, 190, 40), "none": (20, 40, 160), "red": (210, 20, 20), "yellow": (220, 200, 0)}


def color_images(n: int, size: tuple[int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n noisy single-colour frames (a task a 4-filter model learns in a few epochs) and their classes."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(COLORS)
    base = np.array(list(COLORS.values()), dtype=np.int16)[labels][:, None, None, :]
    noise = rng.integers(-30, 31, (n, *size, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8), labels


@pytest.mark.slow
def test_readme_loop_and_cycle_end_to_end_over_ssh(ssh_car, tmp_path):
    """deploy -> run on the car -> cycle: pull over rsync, auto-label, ingest, retrain, gate, deploy over ssh.

    The car's folder is `loop` (the session car's `edgekit` holds another test's releases), so
    its edgekit is named with --target-edgekit, as docs/loop.md shows."""
    import cv2

    from convert.pipeline import ConvertOptions, convert
    from train.data.dataset import Dataset
    from train.splits import make_split
    from train.training import TrainConfig, train

    car = ssh_car
    images, labels = color_images(320, (16, 16), seed=0)
    dataset = Dataset(images, labels, list(COLORS), groups=[f"scene{i % 40}" for i in range(320)],
                      sources=[f"colors:{i}" for i in range(320)], name="colors")
    dataset.save(tmp_path / "data.npz")
    make_split(dataset).save(tmp_path / "split.json")
    (tmp_path / "tiny.json").write_text(json.dumps(TINY_SPEC))
    run = tmp_path / "runs" / "first"
    train(TrainConfig(dataset=str(tmp_path / "data.npz"), split_file=str(tmp_path / "split.json"),
                      model=str(tmp_path / "tiny.json"), out=str(run), epochs=6, learning_rate=1e-2,
                      verbose=0))
    convert(ConvertOptions(source=run, modes=["int8"], out=run / "bundle", name="lights", version="v0001",
                           max_drop=100, max_class_drop=100, latency_runs=5, rep_size=50))
    edgekit(car, "models", "register", str(run / "bundle"), "--name", "lights", "--run", str(run), "--promote",
            cwd=tmp_path)
    car_edgekit = "edgekit/venv/bin/edgekit"
    edgekit(car, "deploy", "production", "--name", "lights", "--to", f"{CAR}:loop",
            "--target-edgekit", car_edgekit, cwd=tmp_path)

    frames = car.home / "frames"  # the car's camera, as an image folder
    frames.mkdir()
    for index, frame in enumerate(color_images(48, (48, 64), seed=1)[0]):
        cv2.imwrite(str(frames / f"{index:04d}.png"), frame[:, :, ::-1])
    on_car(car, f"{car_edgekit} run --bundle loop/current --source frames --quiet "
                "--log-dir loop-samples --log-random 1 --log-min-interval 0")

    out = edgekit(car, "cycle", "--pull", f"{CAR}:loop-samples", "--store", "field", "--data", "data.npz",
                  "--split", "split.json", "--auto-label", "0.5", "--epochs", "1", "--max-drop", "100",
                  "--max-class-drop", "100", "--deploy-to", f"{CAR}:loop", "--target-edgekit", car_edgekit,
                  "--log", "cycle.jsonl", cwd=tmp_path).stdout
    record = json.loads((tmp_path / "cycle.jsonl").read_text())
    assert record["pull"]["new"] == record["pull"]["dest_rows"] > 0
    assert record["ingested"] > 0 and record["promoted"] is True, out
    assert f"deploy: {CAR}:loop current -> v0002" in out
    assert os.readlink(car.home / "loop" / "current") == "releases/v0002"
    verified = on_car(car, f"{car_edgekit} bundle verify --json loop/current")
    assert json.loads(verified[verified.index("{"):])["self_test"] == "ok"
