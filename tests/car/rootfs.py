"""The emulated car: an arm64 Debian Bookworm userland (Raspberry Pi OS's base) under qemu-user.

Use from tests or other helpers (the SSH-car helper runs sshd inside it):

    from tests.car.rootfs import car_rootfs, run_in_car, car_argv, emulation_problem

    root = car_rootfs()                      # build once (minutes), then cached; returns the root path
    run_in_car(["edgekit", "bundle", "verify", "/data/b"], cpu="cortex-a72",
               interpreter="litert", binds={tmp_path: "/data"})   # -> CompletedProcess (text)
    argv = car_argv([...], cpu="cortex-a76")  # the host command line, to Popen a long-lived process
    emulation_problem()                      # None, or one line saying why this machine cannot emulate

What is inside (built by `make car-rootfs` / `python -m tests.car.rootfs`):
- Debian Bookworm arm64 with Debian's Essential set and BASE_PACKAGES (Python 3.11, numpy 1.24,
  OpenCV 4.6, plus openssh-server and rsync for the SSH car), unpacked by mmdebstrap's extract
  variant without running maintainer scripts (what the car needs of them, `_configure` does),
  cached in ~/.cache/edgekit/car-rootfs-<key> (key: package lists, suite, mirror), outside the repo.
- one venv per interpreter, made by running the README's "On the Pi" step-3 blocks as written
  (HOME=/home/<interpreter>, so `~/edgekit/venv` is /home/litert/edgekit/venv and
  /home/tflite/edgekit/venv), with pip pointed at a wheelhouse fetched on the host
  (`pip download --platform manylinux_2_*_aarch64 --only-binary=:all:`) through PIP_NO_INDEX /
  PIP_FIND_LINKS, so the commands themselves stay verbatim. The venvs are keyed separately
  (README blocks, pyproject.toml, wheel file names) and remade in a minute when those change.

Entering: `unshare --mount` + chroot (root only), with proc, sys and /dev bound, a Raspberry Pi
/proc/cpuinfo bound over the real one (LiteRT crashed on the x86 host's), the repo bound
read-only at /home/pi/src and first on PYTHONPATH (so the car runs the working tree's code, not the
edgekit wheel installed into the venvs), and QEMU_CPU always set (a Pi CPU model: QEMU's default
'max' model took LiteRT down a wrong kernel path). The mounts live in a private mount namespace
and vanish with the process.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("EDGEKIT_CAR_CACHE", Path.home() / ".cache" / "edgekit"))
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = ("python3", "python3-venv", "python3-numpy", "python3-opencv", "openssh-server", "rsync")
# The two interpreters the car may run, pinned: LiteRT as on the host, tflite-runtime as Bookworm's usual.
INTERPRETERS = {"litert": "ai-edge-litert==2.3.0", "tflite": "tflite-runtime==2.14.0"}
SYSTEM_NUMPY = "numpy==1.24.2"  # Bookworm's python3-numpy; only for resolving wheels on the host
CPUS = {"pi4": "cortex-a72", "pi5": "cortex-a76"}
CPUINFO = {"cortex-a72": HERE / "cpuinfo-pi4.txt", "cortex-a76": HERE / "cpuinfo-pi5.txt"}
SRC = "/home/pi/src"
MERGED_USR = Path("/usr/share/mmdebstrap/hooks/merged-usr/setup00.sh")
CAR_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class CarUnavailable(RuntimeError):
    """This machine cannot build or enter the emulated car (the message says why)."""


def _log(message: str) -> None:
    print(f"car-rootfs: {message}", file=sys.stderr, flush=True)


def _key(payload: object) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def base_key() -> str:
    return _key({"suite": SUITE, "mirror": MIRROR, "packages": BASE_PACKAGES, "essential": ESSENTIAL,
                 "alternatives": ALTERNATIVES, "variant": "extract", "v": 3})


def base_path() -> Path:
    return CACHE / f"car-rootfs-{base_key()}"


# ---------------------------------------------------------------- can this machine emulate?

def emulation_problem() -> str | None:
    """None if this machine can run arm64 programs in a chroot, else one line saying why not."""
    if os.geteuid() != 0:
        return "the emulated car needs root (mount namespaces and chroot); run as root or in CI"
    if not shutil.which("unshare") or not shutil.which("chroot"):
        return "unshare/chroot (util-linux, coreutils) not found"
    if not Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists():
        return "no qemu-aarch64 binfmt_misc handler (make car-rootfs installs qemu-user-static)"
    return None


def ensure_host_tools() -> None:
    """Install qemu-user-static, binfmt-support and mmdebstrap if missing and register arm64."""
    if os.geteuid() != 0:
        raise CarUnavailable(emulation_problem() or "not root")
    if not (shutil.which("qemu-aarch64-static") and shutil.which("mmdebstrap") and shutil.which("update-binfmts")):
        _log("installing qemu-user-static binfmt-support mmdebstrap (apt-get)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-q", "qemu-user-static", "binfmt-support", "mmdebstrap"],
                       check=True, env=env, stdout=subprocess.DEVNULL)
    binfmt = Path("/proc/sys/fs/binfmt_misc")
    if not (binfmt / "register").exists():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(binfmt)], check=True)
    if not (binfmt / "qemu-aarch64").exists():
        subprocess.run(["update-binfmts", "--enable", "qemu-aarch64"], check=False)
    if not (binfmt / "qemu-aarch64").exists():
        subprocess.run(["update-binfmts", "--import", "qemu-aarch64"], check=False)
    problem = emulation_problem()
    if problem:
        raise CarUnavailable(problem)


# ---------------------------------------------------------------- the base userland

# Debian's Essential:yes set (what minbase installs besides apt): extract takes only what it is given.
ESSENTIAL = ("base-files", "base-passwd", "bash", "bsdutils", "coreutils", "dash", "debianutils", "diffutils",
             "findutils", "grep", "gzip", "hostname", "libc-bin", "login", "mawk", "ncurses-base", "ncurses-bin",
             "passwd", "perl-base", "sed", "sysvinit-utils", "tar", "util-linux",
             "mount")  # not Essential, but the SSH car's sshd binds its accounts inside

# What the skipped maintainer scripts would have made that the car uses (update-alternatives links).
ALTERNATIVES = {"usr/lib/aarch64-linux-gnu/libblas.so.3": "blas/libblas.so.3",
                "usr/lib/aarch64-linux-gnu/liblapack.so.3": "lapack/liblapack.so.3",
                "usr/bin/awk": "mawk"}
SSHD_USER = "sshd:x:100:65534::/run/sshd:/usr/sbin/nologin\n"


def _configure(root: Path) -> None:
    """Do on the host what the car uses from the maintainer scripts that extract skips: accounts
    (base-passwd's tables and sshd's privilege-separation user), the alternatives links, the linker
    cache (the car's own ldconfig, emulated: under a second)."""
    etc = root / "etc"
    for name in ("passwd", "group"):
        shutil.copyfile(root / "usr/share/base-passwd" / f"{name}.master", etc / name)
    with open(etc / "passwd", "a") as passwd:
        passwd.write(SSHD_USER)
    (etc / "shadow").write_text("root:*:19700:0:99999:7:::\n")
    (etc / "shadow").chmod(0o640)
    for link, target in ALTERNATIVES.items():
        path = root / link
        if not (path.parent / target).exists():
            raise CarUnavailable(f"the car userland has no {path.parent / target} for {link}")
        path.unlink(missing_ok=True)
        path.symlink_to(target)
    policy = root / "usr/sbin/policy-rc.d"  # no daemon may start inside (sshd is started by whoever needs it)
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    for folder in (SRC, "/data", "/wheels", "/run/sshd"):
        (root / folder.lstrip("/")).mkdir(parents=True, exist_ok=True)
    subprocess.run(["chroot", str(root), "/sbin/ldconfig"], check=True, env={"QEMU_CPU": CPUS["pi4"], "PATH": CAR_PATH})


def precompile(root: Path, *folders: str) -> None:
    """Byte-compile the car's Python files on the host (.pyc is the same on every machine for one
    Python minor version): Debian's postinst would have, and an emulated import compiling numpy's
    sources each time took 15 s instead of 4."""
    if sys.version_info[:2] != (3, 11):  # Bookworm's Python; another minor's .pyc would be ignored
        _log(f"not precompiling: this is Python {sys.version_info[0]}.{sys.version_info[1]}, the car's is 3.11")
        return
    import compileall

    for folder in folders:
        compileall.compile_dir(root / folder, quiet=2, workers=2, stripdir=str(root), prependdir="/")


def build_base() -> Path:
    """The Bookworm arm64 userland, built once; later calls return the cached folder.

    mmdebstrap's `extract` variant: Debian's own packages (Essential, Python 3.11, numpy 1.24, OpenCV
    4.6, openssh-server, rsync), unpacked on the host, maintainer scripts not run (under emulation
    they took 10 to 70 minutes; this takes about 2). `_configure` does what the car needs of them.
    """
    root = base_path()
    if (root / ".complete").exists():
        return root
    ensure_host_tools()
    CACHE.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{root.name}.", suffix=".partial", dir=CACHE))
    staging.rmdir()  # mmdebstrap wants to create it
    started = time.monotonic()
    _log(f"mmdebstrap {SUITE} arm64 (extract) -> {root} (first run only, about 2 minutes)")
    try:
        subprocess.run(["mmdebstrap", "--arch=arm64", "--variant=extract", "--quiet",
                        "--setup-hook=" + str(MERGED_USR),  # Bookworm's /bin -> usr/bin layout
                        "--include=" + ",".join(ESSENTIAL + BASE_PACKAGES),
                        "--aptopt=APT::Install-Recommends \"false\"",
                        SUITE, str(staging), MIRROR], check=True, stdout=subprocess.DEVNULL)
        _configure(staging)
        precompile(staging, "usr/lib/python3.11", "usr/lib/python3/dist-packages")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    (staging / ".complete").write_text(json.dumps({"seconds": round(time.monotonic() - started)}))
    staging.rename(root)
    _log(f"base userland built in {time.monotonic() - started:.0f} s")
    return root


# ---------------------------------------------------------------- the venvs, by the README

def readme_blocks() -> dict[str, str]:
    """The README's "On the Pi" venv blocks by interpreter: the commands the car's venvs are made with."""
    text = (REPO / "README.md").read_text()
    section = text.split("## On the Pi", 1)[1].split("\n## ", 1)[0]
    blocks = [textwrap_dedent(b) for b in re.findall(r"```bash\n(.*?)```", section, flags=re.S)
              if "-m venv" in b]
    found = {name: b for name, b in zip(("litert", "tflite"), blocks, strict=False)}
    if len(blocks) != 2 or "[pi-tflite]" not in found["tflite"] or "[pi]" not in found["litert"]:
        raise CarUnavailable("README 'On the Pi' must have two venv blocks: LiteRT first, then tflite-runtime")
    return found


def textwrap_dedent(block: str) -> str:
    import textwrap

    return textwrap.dedent(block)


def _platforms() -> list[str]:
    # pip does not widen an explicit --platform to older manylinux tags: name each glibc Bookworm can run.
    return [arg for minor in range(17, 37) for arg in ("--platform", f"manylinux_2_{minor}_aarch64")]


def pi_requirements() -> list[str]:
    """What the README's blocks install: the `pi` extra's requirements and both interpreters."""
    import tomllib

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    return sorted({*extras["pi"], *extras["pi-tflite"], *INTERPRETERS.values()})


def fetch_wheels() -> Path:
    """aarch64 wheels for the README's installs (numpy pinned to Bookworm's), fetched once on the host."""
    pins = pi_requirements()
    folder = CACHE / f"car-wheels-{_key({'pins': pins, 'numpy': SYSTEM_NUMPY, 'v': 2})}"
    if (folder / ".complete").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    constraint = folder / "constraints.txt"
    constraint.write_text(SYSTEM_NUMPY + "\n")
    for requirement in pins:
        _log(f"pip download {requirement} (aarch64, cp311)")
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
                        "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp",
                        "--abi", "cp311", "--abi", "abi3", "--abi", "none", *_platforms(),
                        "-c", str(constraint), "-d", str(folder), requirement], check=True)
    (folder / ".complete").touch()
    return folder


def build_edgekit_wheel(wheels: Path) -> None:
    """This checkout as a wheel beside the others, so the README's `pip install 'edgekit[pi]'` resolves."""
    for old in wheels.glob("edgekit-*.whl"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(REPO / name, src / name)
        for package in ("edge", "convert", "train"):
            shutil.copytree(REPO / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check",
                        "--no-deps", "-w", str(wheels), str(src)], check=True)


def venv_key(wheels: Path) -> str:
    names = sorted(p.name for p in wheels.glob("*.whl") if not p.name.startswith("edgekit-"))
    return _key({"readme": readme_blocks(), "requirements": pi_requirements(), "wheels": names, "v": 1})


def build_venvs(root: Path) -> None:
    """Run each README block as written (HOME per interpreter), pip reading the wheelhouse."""
    wheels = fetch_wheels()
    key = venv_key(wheels)
    stamp = root / "home" / ".edgekit-venvs"
    if stamp.exists() and stamp.read_text() == key:
        return
    build_edgekit_wheel(wheels)
    started = time.monotonic()

    def make(name: str, block: str) -> None:
        home = root / "home" / name
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        _log(f"making /home/{name}/edgekit/venv by the README (under emulation)")
        result = run_in_car(["/bin/sh", "-exc", block], interpreter=name, cpu=CPUS["pi4"],
                            binds={wheels: "/wheels"}, env={"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "/wheels",
                                                             "PIP_DISABLE_PIP_VERSION_CHECK": "1",
                                                             # byte-compiling emulated took most of the minutes
                                                             "PIP_NO_COMPILE": "1"},
                            repo=False, timeout=1800, root=root)
        if result.returncode != 0:
            raise RuntimeError(f"README block for {name} failed in the car:\n{result.stdout}\n{result.stderr}")

    with ThreadPoolExecutor(max_workers=2) as pool:  # one emulated pip per core
        for future in [pool.submit(make, name, block) for name, block in readme_blocks().items()]:
            future.result()
    precompile(root, *(f"home/{name}/edgekit/venv/lib/python3.11/site-packages" for name in INTERPRETERS))
    stamp.write_text(key)
    _log(f"venvs made in {time.monotonic() - started:.0f} s")


def car_rootfs() -> Path:
    """The emulated car's root folder, built or brought up to date first (locked across processes)."""
    import fcntl

    problem = emulation_problem()
    if problem and os.geteuid() != 0:
        raise CarUnavailable(problem)
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "car-rootfs.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        root = build_base()
        ensure_host_tools()
        build_venvs(root)
    return root


# ---------------------------------------------------------------- entering it

_ENTER = r"""
set -e
root=$1; cpuinfo=$2; shift 2
mount -t proc proc "$root/proc"
mount --bind "$cpuinfo" "$root/proc/cpuinfo"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
mount -t tmpfs tmpfs "$root/tmp"
while [ "$1" != "--" ]; do
  mkdir -p "$root$2"; mount --bind "$1" "$root$2"
  if [ "$3" = ro ]; then mount -o remount,bind,ro "$root$2"; fi
  shift 3
done
shift
exec chroot "$root" "$@"
"""


def car_argv(argv: Sequence[str], *, cpu: str = CPUS["pi4"], interpreter: str = "litert",
             binds: Mapping[Path | str, str] | None = None, env: Mapping[str, str] | None = None,
             repo: bool = True, root: Path | None = None, cpuinfo: Path | None = None) -> list[str]:
    """The host command line that runs `argv` inside the car (for Popen; run_in_car wraps it).

    `cpu` is a QEMU CPU model: a Pi's (cortex-a72, cortex-a76) gets that Pi's /proc/cpuinfo; any
    other model (e.g. 'max', QEMU's default) needs `cpuinfo` given. `binds` maps host folders to
    paths inside the car (read-write); the repo is bound read-only at SRC unless repo=False. The
    car's PATH starts with the interpreter's venv, so "edgekit" and "python" are the car's own.
    """
    cpuinfo = cpuinfo or CPUINFO.get(cpu)
    if cpuinfo is None:
        raise ValueError(f"cpu {cpu!r} is not a Pi's ({sorted(CPUINFO)}): give the cpuinfo file to show")
    if interpreter not in INTERPRETERS:
        raise ValueError(f"interpreter must be one of {sorted(INTERPRETERS)}, got {interpreter!r}")
    root = root or base_path()
    mounts: list[str] = []
    if repo:
        mounts += [str(REPO), SRC, "ro"]
    for host, inside in (binds or {}).items():
        mounts += [str(Path(host).resolve()), inside, "rw"]
    home = f"/home/{interpreter}"
    car_env = {"HOME": home, "PATH": f"{home}/edgekit/venv/bin:{CAR_PATH}", "LANG": "C.UTF-8",
               "QEMU_CPU": cpu, "PYTHONDONTWRITEBYTECODE": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    if repo:
        car_env["PYTHONPATH"] = SRC
    car_env.update(env or {})
    return ["unshare", "--mount", "--fork", "--", "/bin/sh", "-c", _ENTER, "car", str(root), str(cpuinfo),
            *mounts, "--", "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in car_env.items()), *argv]


def run_in_car(argv: Sequence[str], *, cpu: str = CPUS["pi4"], interpreter: str = "litert",
               binds: Mapping[Path | str, str] | None = None, env: Mapping[str, str] | None = None,
               repo: bool = True, timeout: float = 600, root: Path | None = None,
               cwd: str | None = None, cpuinfo: Path | None = None) -> subprocess.CompletedProcess:
    """Run `argv` inside the emulated car and wait; stdout/stderr captured as text."""
    if cwd:
        argv = ["/bin/sh", "-c", 'cd "$0" && exec "$@"', cwd, *argv]
    host_env = {"PATH": os.environ.get("PATH", CAR_PATH), "QEMU_CPU": cpu}
    return subprocess.run(car_argv(argv, cpu=cpu, interpreter=interpreter, binds=binds, env=env, repo=repo,
                                   root=root, cpuinfo=cpuinfo),
                          capture_output=True, text=True, timeout=timeout, env=host_env)


def main(argv: Sequence[str] | None = None) -> None:
    """`make car-rootfs` (no arguments): build or bring up to date, print the root path and the time.

    `rootfs.py exec [--cpu M] [--interpreter I] [--bind HOST:CAR]... -- ARGV...` runs ARGV in the car
    with this process's stdin/stdout (e.g. a `python` wrapper for check-runtime, or sshd).
    """
    import argparse

    parser = argparse.ArgumentParser(prog="tests/car/rootfs.py")
    sub = parser.add_subparsers(dest="action")
    sub.add_parser("host-tools", help="install qemu-user-static, binfmt-support, mmdebstrap (apt) and register arm64")
    run = sub.add_parser("exec")
    run.add_argument("--cpu", default=CPUS["pi4"], choices=sorted(CPUINFO))
    run.add_argument("--interpreter", default="litert", choices=sorted(INTERPRETERS))
    run.add_argument("--bind", action="append", default=[], metavar="HOST:CAR")
    run.add_argument("argv", nargs="+")
    args = parser.parse_args(argv)
    if args.action == "host-tools":
        try:
            ensure_host_tools()
        except (CarUnavailable, subprocess.CalledProcessError) as error:
            raise SystemExit(f"car-rootfs: cannot emulate arm64 here: {error}") from None
        return
    if args.action == "exec":
        binds = dict(b.rsplit(":", 1) for b in args.bind)
        command = car_argv(args.argv, cpu=args.cpu, interpreter=args.interpreter, binds=binds)
        os.execvpe(command[0], command, {"PATH": os.environ.get("PATH", CAR_PATH), "QEMU_CPU": args.cpu})
    started = time.monotonic()
    try:
        root = car_rootfs()
    except CarUnavailable as error:
        raise SystemExit(f"car-rootfs: cannot build the emulated car: {error}") from None
    _log(f"ready in {time.monotonic() - started:.0f} s: {root}")
    print(root)


if __name__ == "__main__":
    main()
