"""A car on the network for the tests: Debian's OpenSSH server with a `pi` user, keys made for the test.

    with SshCar(Path(tempfile.mkdtemp())) as car:   # or the fixtures below
        subprocess.run(["edgekit", "deploy", "production", "--to", "pi@car.local:edgekit"], env=car.env)

How a user would reach it: `car.ssh_config` holds a `Host car.local` entry (address, port, the
client key, a known_hosts file with the car's host key, keep-alives), and `car.env` sets
`EDGEKIT_SSH="ssh -F <that file>"`; the README's `pi@car.local:...` commands then run as written.

What the car runs:
- `rootfs` given (the `emulated_ssh_car` fixture, with the emulated car of tests/car/rootfs.py): Debian's arm64 sshd inside that Bookworm userland under qemu-user, so deploy's
  remote `edgekit bundle verify` runs on the emulated Pi (CPU model `cpu`, LiteRT venv as
  `~/edgekit/venv`, the working tree's code first on PYTHONPATH as in tests/car);
- otherwise this machine's sshd, `~/edgekit/venv` being the repo's `.venv-device`.

Where the car lives (the first that works):
- `netns`: its own network namespace, 169.254.N.2 port 22 over a veth pair, as a Pi on the LAN
  (and its link can be slowed to Wi-Fi speed with `car.slow_link()`);
- `loopback`: 127.0.0.1 on a free port, when this machine does not allow network namespaces.
sshd runs in a private mount namespace where /etc/passwd, /etc/shadow and /etc/group have a
`pi` user added (the machine's own files are not touched); pi's home is a folder of the
test's (`car.home` on this machine), with `~/edgekit/venv` where the README's step 3 puts it.

Fixtures: `ssh_car` (one per test process), `fresh_ssh_car` (one per test, for tests that
break the car), both on this machine's sshd; `emulated_ssh_car` (one per test, sshd in the
emulated arm64 Pi; skipped where it cannot run, failed instead in CI).

Everything stops with the `with` block (or the fixture): sshd and every process of the car are
killed, the namespace deleted; sshd also gets SIGKILL if the test process dies first.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEVICE_VENV = REPO / ".venv-device"
SSHD = "/usr/sbin/sshd"
HOST_NAME = "car.local"
USER = "pi"
PACKAGES = ("openssh-server", "rsync")
_PR_SET_PDEATHSIG = 1


def provision() -> str | None:
    """Install Debian's openssh-server and rsync when missing (as root); None, or why the car cannot run."""
    if os.geteuid() != 0:
        return "the SSH car needs root (an sshd that logs in a `pi` user, mount namespaces)"
    if not (Path(SSHD).exists() and shutil.which("rsync") and shutil.which("ssh-keygen")):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", "-o", "DPkg::Lock::Timeout=300", *PACKAGES]
        if subprocess.run(install, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
            result = subprocess.run(install, env=env, capture_output=True, text=True)
            if result.returncode != 0:
                return f"could not install {' '.join(PACKAGES)}: {result.stderr.strip()[-200:]}"
    if not shutil.which("unshare"):
        return "unshare (util-linux) not found"
    if not (DEVICE_VENV / "bin" / "edgekit").exists():
        return f"{DEVICE_VENV} is missing: `make device-env` makes the car's venv"
    return None


def unavailable(problem: str) -> None:
    """Skip with the reason; in CI (CI=true) fail instead, so the car is never silently left out."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"the SSH car must run in CI but cannot: {problem}", pytrace=False)
    pytest.skip(problem)


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _free_uid(rootfs: Path | None = None) -> int:
    used = set()
    for etc in (Path("/etc"), *([rootfs / "etc"] if rootfs else [])):
        for name in ("passwd", "group"):
            used |= {int(line.split(":")[2]) for line in (etc / name).read_text().splitlines() if line.count(":") >= 3}
    return next(uid for uid in range(4100, 60000) if uid not in used)


def _children_of(pid: int) -> list[int]:
    """Every descendant of `pid` (sshd's sessions and what they run), from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class SshCar:
    """One car: sshd with its own host key, a `pi` user, and the client files to reach it.

    Args:
        workdir: an empty folder for the car's home, keys and config (removed by stop()).
        network: "netns", "loopback", or None for the first that works here.
    """

    def __init__(self, workdir: Path, network: str | None = None, rootfs: Path | None = None,
                 cpu: str = "cortex-a72") -> None:
        self.workdir = Path(workdir)
        self.network = network
        self.rootfs = Path(rootfs) if rootfs else None
        self.cpu = cpu
        self.home = self.workdir / "home" / USER
        self.client = self.workdir / "client"
        self.server = self.workdir / "server"
        self.ssh_config = self.client / "ssh_config"
        self.key = self.client / "id_ed25519"
        self.known_hosts = self.client / "known_hosts"
        self.log = self.workdir / "sshd.log"
        self.uid = _free_uid(self.rootfs)
        self.netns: str | None = None
        self.car_link: str | None = None
        self.address = "127.0.0.1"
        self.port = 22
        self.process: subprocess.Popen | None = None

    # ------------------------------------------------------------ what tests use

    @property
    def env(self) -> dict[str, str]:
        """What a user would set for edgekit: EDGEKIT_SSH names the ssh config file."""
        return {"EDGEKIT_SSH": f"ssh -F {self.ssh_config}"}

    @property
    def target(self) -> str:
        return f"{USER}@{HOST_NAME}"

    def ssh(self, script: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run a shell script on the car as pi (what `ssh pi@car.local '...'` does)."""
        return subprocess.run(["ssh", "-F", str(self.ssh_config), "-o", "BatchMode=yes", self.target, script],
                              capture_output=True, text=True, timeout=timeout)

    @property
    def emulated(self) -> bool:
        return self.rootfs is not None

    def describe(self) -> str:
        where = f"netns {self.netns}" if self.netns else "loopback"
        what = f"emulated arm64 {self.cpu}" if self.rootfs else "this machine's"
        return f"{what} sshd for {self.target} at {self.address}:{self.port} ({where}); log {self.log}"

    # ------------------------------------------------------------ life cycle

    def __enter__(self) -> SshCar:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        os.chmod(self.workdir, 0o755)  # pi must reach its home below it
        self._make_user()
        self._make_host_key()
        self._make_client()
        self._place_network()
        self._write_sshd_config()
        self._write_client_config()
        self.start_sshd()

    def start_sshd(self) -> None:
        """Start (or, after disappear(), start again: a rebooted car) the car's sshd."""
        server = self._server_path()
        etc = f"{server}/etc"
        script = (f"mkdir -p /run/sshd && "  # sshd's privilege-separation folder
                  f"mount --bind {etc}/passwd /etc/passwd && mount --bind {etc}/shadow /etc/shadow && "
                  f"mount --bind {etc}/group /etc/group && {'' if self.rootfs else self._reveal_python()}"
                  f"exec {SSHD} -D -e -f {server}/sshd_config")
        env = None
        if self.rootfs:
            from tests.car.rootfs import REPO as CAR_REPO
            from tests.car.rootfs import SRC, car_argv

            # pi's home first, then the working tree inside it (where tests/car puts it)
            argv = car_argv(["/bin/sh", "-c", script], cpu=self.cpu, repo=False, root=self.rootfs,
                            binds={self.home: f"/home/{USER}", CAR_REPO: SRC, self.server: server})
            if "--fork" in argv:  # the forked sshd dies with unshare (and so with this process)
                argv.insert(argv.index("--fork") + 1, "--kill-child")
            env = {**os.environ, "QEMU_CPU": self.cpu}
        else:
            argv = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                            preexec_fn=_die_with_parent, env=env)
        deadline = time.monotonic() + (120 if self.rootfs else 15)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd exited with {self.process.returncode}: {self.log.read_text()[-500:]}")
            with contextlib.suppress(OSError), socket.create_connection((self.address, self.port), timeout=1):
                return
            time.sleep(0.05)
        raise RuntimeError(f"sshd did not listen on {self.address}:{self.port}: {self.log.read_text()[-500:]}")

    def _server_path(self) -> str:
        """Where sshd sees its keys and config: the folder itself, or its bind inside the rootfs."""
        return "/etc/edgekit-car" if self.rootfs else str(self.server)

    def _home_path(self) -> str:
        """pi's home as sshd sees it."""
        return f"/home/{USER}" if self.rootfs else str(self.home)

    def _reveal_python(self) -> str:
        """Shell steps letting pi reach the venv's Python when it lives under a closed folder.

        (.venv-device's Python may be root's pyenv under /root, mode 0700: in the car's mount
        namespace a tmpfs replaces that folder and only the Python's subtree is bound back in.)
        """
        python = (DEVICE_VENV / "bin" / "python").resolve()
        for folder in reversed(python.parents):
            if folder != Path("/") and not folder.stat().st_mode & 0o001:
                child = folder / python.relative_to(folder).parts[0]
                keep = self.server / "python"
                return (f"mkdir -p {keep} {folder} && mount --bind {child} {keep} && "
                        f"mount -t tmpfs -o mode=0755,size=1m tmpfs {folder} && mkdir {child} && "
                        f"mount --move {keep} {child} && ")
        return ""

    def disappear(self) -> None:
        """The car loses power: sshd and every process of the car die at once (SIGKILL)."""
        if self.process is None:
            return
        for pid in [self.process.pid, *_children_of(self.process.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def reflash_host_key(self) -> None:
        """A re-flashed car (or another machine at its address): a new host key, sshd restarted."""
        self.disappear()
        for key in self.server.glob("ssh_host_*"):
            key.unlink()
        self._make_host_key()  # known_hosts keeps the old key, as on the workstation
        self.start_sshd()

    def mount_tmpfs(self, folder: Path, size: str) -> None:
        """A small disk at `folder` (inside pi's home) as the car sees it: for a full-disk car."""
        folder.mkdir(parents=True, exist_ok=True)
        os.chown(folder, self.uid, self.uid)
        seen = folder if not self.rootfs else self.rootfs / "home" / USER / folder.relative_to(self.home)
        _check(_run("nsenter", f"--mount=/proc/{self.process.pid}/ns/mnt", "mount", "-t", "tmpfs",
                    "-o", f"size={size},uid={self.uid},gid={self.uid},mode=0755", "tmpfs", str(seen)))

    @contextlib.contextmanager
    def slow_link(self, rate: str = "16mbit") -> Iterator[None]:
        """The car's link at Wi-Fi speed (token bucket on the car's side of the veth), netns only."""
        if not self.netns:
            yield
            return
        tc = ["ip", "netns", "exec", self.netns, "tc", "qdisc"]
        _check(_run(*tc, "add", "dev", self.car_link, "root", "tbf", "rate", rate, "burst", "32kbit",
                    "latency", "400ms"))
        try:
            yield
        finally:
            _run(*tc, "del", "dev", self.car_link, "root")

    def set_link(self, up: bool) -> None:
        """The car's network link up or down (out of Wi-Fi range): its processes keep running."""
        _check(_run("ip", "netns", "exec", self.netns, "ip", "link", "set", self.car_link, "up" if up else "down"))

    def stop(self) -> None:
        self.disappear()
        if self.netns:
            _run("ip", "netns", "del", self.netns)
        shutil.rmtree(self.workdir, ignore_errors=True)

    # ------------------------------------------------------------ set-up

    def _make_user(self) -> None:
        etc = self.server / "etc"
        etc.mkdir(parents=True)
        self.server.chmod(0o755)
        system = (self.rootfs or Path("/")) / "etc"
        shell = "/bin/bash" if (system.parent / "bin" / "bash").exists() else "/bin/sh"
        for name, line in (("passwd", f"{USER}:x:{self.uid}:{self.uid}:car user:{self._home_path()}:{shell}"),
                           ("shadow", f"{USER}:*:19700:0:99999:7:::"),
                           ("group", f"{USER}:x:{self.uid}:")):
            text = (system / name).read_text()
            (etc / name).write_text(text + ("" if text.endswith("\n") else "\n") + line + "\n")
        (etc / "shadow").chmod(0o640)
        ssh_dir = self.home / ".ssh"
        ssh_dir.mkdir(parents=True)
        (self.home / "edgekit").mkdir()
        # README "On the Pi", step 3: the car's venv (the emulated car's LiteRT one, made by that step)
        (self.home / "edgekit" / "venv").symlink_to("/home/litert/edgekit/venv" if self.rootfs else DEVICE_VENV)
        for path in (self.home, ssh_dir, self.home / "edgekit"):
            os.chown(path, self.uid, self.uid)
        self.home.parent.chmod(0o755)
        self.home.chmod(0o755)
        ssh_dir.chmod(0o700)

    def _make_host_key(self) -> None:
        key = self.server / "ssh_host_ed25519_key"
        _check(_run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "car", "-f", str(key)))

    def _make_client(self) -> None:
        self.client.mkdir(mode=0o700)
        _check(_run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "workstation", "-f", str(self.key)))
        authorized = self.home / ".ssh" / "authorized_keys"
        authorized.write_text(Path(f"{self.key}.pub").read_text())
        os.chown(authorized, self.uid, self.uid)
        authorized.chmod(0o600)

    def _place_network(self) -> None:
        wanted = self.network or ("netns" if shutil.which("ip") else "loopback")
        if wanted == "netns":
            problem = self._make_netns()
            if problem is None:
                return
            if self.network == "netns":
                raise RuntimeError(problem)
        self.network, self.address, self.port = "loopback", "127.0.0.1", _free_port()

    def _make_netns(self) -> str | None:
        """A namespace and veth pair for the car; None, or why this machine does not allow one."""
        taken = _run("ip", "-o", "addr").stdout
        namespaces = _run("ip", "netns", "list").stdout
        for index in [100 + (os.getpid() + i) % 100 for i in range(100)]:
            name = f"edgekit-car-{index}"
            if f"169.254.{index}." in taken:
                continue
            if name in namespaces:
                if _run("ip", "netns", "pids", name).stdout.strip():
                    continue
                _run("ip", "netns", "del", name)  # left by a test run that was killed
            host_link, car_link = f"ekc{index}h", f"ekc{index}c"
            steps = [("ip", "netns", "add", name),
                     ("ip", "link", "add", host_link, "type", "veth", "peer", "name", car_link),
                     ("ip", "link", "set", car_link, "netns", name),
                     ("ip", "addr", "add", f"169.254.{index}.1/30", "dev", host_link),
                     ("ip", "link", "set", host_link, "up"),
                     ("ip", "netns", "exec", name, "ip", "addr", "add", f"169.254.{index}.2/30", "dev", car_link),
                     ("ip", "netns", "exec", name, "ip", "link", "set", car_link, "up"),
                     ("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")]
            for step in steps:
                result = _run(*step)
                if result.returncode != 0:
                    _run("ip", "netns", "del", name)
                    _run("ip", "link", "del", host_link)
                    return f"no network namespace for the car ({' '.join(step)}: {result.stderr.strip()})"
            self.netns, self.car_link = name, car_link
            self.address, self.port = f"169.254.{index}.2", 22
            return None
        return "no free 169.254.N.0/30 subnet for the car"

    def _write_sshd_config(self) -> None:
        emulated = (f"SetEnv QEMU_CPU={self.cpu} PYTHONPATH=/home/{USER}/src PYTHONDONTWRITEBYTECODE=1\n"
                    if self.rootfs else "")  # sessions start with a clean environment
        (self.server / "sshd_config").write_text(emulated + f"""\
Port {self.port}
ListenAddress {self.address}
HostKey {self._server_path()}/ssh_host_ed25519_key
PidFile none
UsePAM no
PermitRootLogin no
AllowUsers {USER}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile .ssh/authorized_keys
StrictModes yes
MaxStartups 50
LogLevel VERBOSE
Subsystem sftp internal-sftp
""")

    def _write_client_config(self) -> None:
        port_host = self.address if self.port == 22 else f"[{self.address}]:{self.port}"
        host_key = (self.server / "ssh_host_ed25519_key.pub").read_text().split()[:2]
        self.known_hosts.write_text(f"{port_host} {' '.join(host_key)}\n")
        self.ssh_config.write_text(f"""\
# What a user puts in ~/.ssh/config for the car (here passed with EDGEKIT_SSH="ssh -F {self.ssh_config}").
Host {HOST_NAME}
    HostName {self.address}
    Port {self.port}
    User {USER}
    IdentityFile {self.key}
    IdentitiesOnly yes
    UserKnownHostsFile {self.known_hosts}
    GlobalKnownHostsFile /dev/null
    ConnectTimeout 10
    ServerAliveInterval 2
    ServerAliveCountMax 3
""")


def _check(result: subprocess.CompletedProcess) -> None:
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, result.args))} failed: {result.stderr.strip()}")


@functools.cache
def emulated_rootfs() -> Path | None:
    """The emulated car's rootfs (tests/car/rootfs.py), built or waited for (`make test` starts its
    build in the background), or None where this machine cannot emulate arm64.
    EDGEKIT_SSH_CAR=host keeps the SSH car on this machine's sshd.
    """
    if os.environ.get("EDGEKIT_SSH_CAR") == "host":
        return None
    try:
        from tests.car.rootfs import CarUnavailable, car_rootfs, emulation_problem
    except ImportError:
        return None
    if emulation_problem() and os.geteuid() != 0:
        return None
    try:
        return car_rootfs()  # waits for a build in progress (locked across processes)
    except (CarUnavailable, RuntimeError, OSError, subprocess.CalledProcessError):
        return None


@contextlib.contextmanager
def running_car(network: str | None = None, rootfs: Path | None = None) -> Iterator[SshCar]:
    """A started car, or a skip (a failure in CI) saying why this machine cannot run one."""
    problem = provision()
    if problem:
        unavailable(problem)
    car = SshCar(Path(tempfile.mkdtemp(prefix="edgekit-car-")), network=network, rootfs=rootfs)
    try:
        car.start()
    except (RuntimeError, OSError) as error:
        car.stop()
        unavailable(f"could not start the SSH car: {error}")
    try:
        yield car
    finally:
        car.stop()


@pytest.fixture(scope="session")
def ssh_car() -> Iterator[SshCar]:
    """One car on this machine's sshd for the happy-path tests of this test process."""
    with running_car() as car:
        yield car


@pytest.fixture
def emulated_ssh_car() -> Iterator[SshCar]:
    """A car of its own whose sshd runs in the emulated arm64 Pi (tests/car): everything the car
    does over ssh runs under qemu-user, so each remote `bundle verify` takes tens of seconds."""
    rootfs = emulated_rootfs()
    if rootfs is None:
        unavailable("the emulated car is not built or this machine cannot emulate arm64 (make car-rootfs)")
    with running_car(rootfs=rootfs) as car:
        yield car


@pytest.fixture
def fresh_ssh_car() -> Iterator[SshCar]:
    """A car of its own on this machine's sshd, for a test that breaks it (changed key, power
    cut, full disk, a cut pull): fast to start, and the same ssh and rsync on the wire."""
    with running_car() as car:
        yield car
