"""Faults on the wire, against a real OpenSSH server (tests/sshcar): each car is the test's own.

A changed or unknown host key and a wrong client key are refused in one line, whatever the
user's ssh config says; a car that dies while it verifies keeps its model and the workstation
says which; a full disk on the car leaves `current` as it was.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import run_edgekit
from tests.sshcar import SshCar, _children_of
from tests.tiny_bundles import float_tflite, write_bundle

CAR = "pi@car.local"


@pytest.fixture(scope="module")
def two_bundles(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ssh-bundles")
    return {v: write_bundle(root / v, float_tflite(seed), name="lights", version=v)
            for v, seed in (("v0001", 0), ("v0002", 1))}


def deploy(car: SshCar, bundle: Path, *more: str) -> subprocess.CompletedProcess:
    return run_edgekit("deploy", str(bundle), "--to", f"{CAR}:edgekit", *more, env=car.env)


def error_line(result: subprocess.CompletedProcess) -> str:
    """The one line a failed command printed (asserting it is one line)."""
    assert result.returncode != 0, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    return errors[0]


def current_of(car: SshCar) -> str:
    return os.readlink(car.home / "edgekit" / "current")


def assert_car_runs(car: SshCar, release: str) -> None:
    """`current` is `release` and passes the car's own verify (as pi, over ssh)."""
    assert current_of(car) == f"releases/{release}"
    result = car.ssh("cd edgekit && venv/bin/edgekit bundle verify --json current")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout[result.stdout.index("{"):])["version"] == release


def with_config_line(car: SshCar, line: str) -> None:
    """What a user might have in the Host entry (e.g. StrictHostKeyChecking no)."""
    car.ssh_config.write_text(car.ssh_config.read_text() + f"    {line}\n")


@pytest.mark.slow
@pytest.mark.fault("car network: host key changed")
def test_a_changed_host_key_is_refused_even_if_the_config_says_no(fresh_ssh_car, two_bundles, tmp_path):
    car = fresh_ssh_car
    assert deploy(car, two_bundles["v0001"]).returncode == 0
    known = car.known_hosts.read_text()
    car.reflash_host_key()  # another machine answers at the car's address
    with_config_line(car, "StrictHostKeyChecking no")
    plain = subprocess.run(["ssh", "-F", str(car.ssh_config), CAR, "true"], capture_output=True, text=True)
    assert plain.returncode == 0  # plain ssh with that config would go on (pubkey login is still allowed)

    for result in (deploy(car, two_bundles["v0002"]),
                   run_edgekit("deploy", "--status", "--to", f"{CAR}:edgekit", env=car.env),
                   run_edgekit("pull", f"{CAR}:samples", str(tmp_path / "field"), env=car.env)):
        line = error_line(result)
        assert "host key other than the one in known_hosts" in line and "ssh-keygen -R car.local" in line
    assert car.known_hosts.read_text() == known  # never replaced
    assert_car_runs(car, "v0001")
    assert not (car.home / "edgekit" / "releases" / "v0002").exists()


@pytest.mark.slow
@pytest.mark.fault("car network: unknown host key")
def test_an_unknown_host_key_is_never_accepted_by_itself(fresh_ssh_car, two_bundles):
    car = fresh_ssh_car
    car.known_hosts.write_text("")
    with_config_line(car, "StrictHostKeyChecking accept-new")
    line = error_line(deploy(car, two_bundles["v0001"]))
    assert "host key is not in known_hosts" in line and "ssh pi@car.local" in line
    assert car.known_hosts.read_text() == ""
    assert not (car.home / "edgekit" / "current").exists()


@pytest.mark.slow
@pytest.mark.fault("car network: wrong client key")
def test_a_key_the_car_does_not_know_is_refused(fresh_ssh_car, two_bundles):
    car = fresh_ssh_car
    other = car.client / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    car.ssh_config.write_text(car.ssh_config.read_text().replace(str(car.key), str(other)))
    line = error_line(deploy(car, two_bundles["v0001"]))
    assert "refused this machine's key" in line and "ssh-copy-id pi@car.local" in line
    assert not (car.home / "edgekit" / "current").exists()


@pytest.mark.slow
@pytest.mark.fault("car network: car lost during verify")
def test_a_car_that_dies_while_it_verifies_keeps_its_model(fresh_ssh_car, two_bundles):
    car = fresh_ssh_car
    running = _deploy_v0002_until_it_verifies(car, two_bundles)
    assert _verifying(car), "the car never started verifying"
    car.disappear()  # power cut: sshd, the session and the verifier die at once
    stdout, stderr = running.communicate(timeout=120)
    line = error_line(subprocess.CompletedProcess(running.args, running.returncode, stdout, stderr))
    assert "lost the connection to pi@car.local" in line and "while it verified v0002" in line
    assert "`current` still points to v0001 (never switched)" in line
    assert "the next deploy verifies it again" in line

    gone = error_line(run_edgekit("deploy", "--status", "--to", f"{CAR}:edgekit", env=car.env))
    assert "could not reach pi@car.local" in gone and "is the car on" in gone

    car.start_sshd()  # the car boots again
    assert_car_runs(car, "v0001")
    status = json.loads(run_edgekit("deploy", "--status", "--to", f"{CAR}:edgekit", env=car.env,
                                    check=True).stdout)
    assert status["current"] == "v0001"
    again = deploy(car, two_bundles["v0002"])
    assert again.returncode == 0, again.stderr
    assert_car_runs(car, "v0002")


@pytest.mark.slow
@pytest.mark.fault("car network: link lost during verify")
def test_a_car_out_of_range_while_it_verifies_keeps_its_model(fresh_ssh_car, two_bundles):
    """The car keeps running but its link goes down mid-verify: ssh's keep-alives notice it."""
    car = fresh_ssh_car
    if car.netns is None:
        pytest.skip("taking the car's link down needs the car in a network namespace")
    running = _deploy_v0002_until_it_verifies(car, two_bundles)
    car.set_link(False)
    try:
        stdout, stderr = running.communicate(timeout=120)
    finally:
        car.set_link(True)
    line = error_line(subprocess.CompletedProcess(running.args, running.returncode, stdout, stderr))
    assert "lost the connection to pi@car.local" in line and "while it verified v0002" in line
    assert "`current` still points to v0001 (never switched)" in line
    assert_car_runs(car, "v0001")
    again = deploy(car, two_bundles["v0002"])
    assert again.returncode == 0, again.stderr
    assert_car_runs(car, "v0002")


def _verifying(car: SshCar) -> bool:
    """Is the car running `edgekit bundle verify` now?"""
    for pid in _children_of(car.process.pid):
        try:
            words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"bundle" in words and b"verify" in words:
            return True
    return False


@pytest.mark.slow
@pytest.mark.fault("car network: full disk on the car")
def test_a_full_disk_on_the_car_keeps_current(fresh_ssh_car, two_bundles):
    car = fresh_ssh_car
    car.mount_tmpfs(car.home / "edgekit" / "releases", "1m")  # the car's small SD card
    assert deploy(car, two_bundles["v0001"]).returncode == 0
    fill = car.ssh("dd if=/dev/zero of=edgekit/releases/.filler bs=64k 2>/dev/null; df -k edgekit/releases")
    assert " 100% " in fill.stdout, fill.stdout
    line = error_line(deploy(car, two_bundles["v0002"]))
    assert "no space left under edgekit" in line and "`current` still points to v0001" in line
    assert_car_runs(car, "v0001")
    leftovers = car.ssh("ls -A edgekit/releases").stdout.split()
    assert sorted(leftovers) == [".filler", "v0001"]  # no half-copied release left behind

    car.ssh("rm edgekit/releases/.filler")
    assert deploy(car, two_bundles["v0002"]).returncode == 0
    assert_car_runs(car, "v0002")


def _deploy_v0002_until_it_verifies(car, two_bundles) -> subprocess.Popen:
    """v0001 deployed, then a deploy of v0002 left running until the car is verifying it."""
    assert deploy(car, two_bundles["v0001"]).returncode == 0
    running = subprocess.Popen([sys.executable, "-m", "edge.cli", "deploy", str(two_bundles["v0002"]),
                                "--to", f"{CAR}:edgekit"], env={**os.environ, **car.env},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _verifying(car):
        time.sleep(0.01)
    return running
