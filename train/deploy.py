"""Flash a bundle onto a car (or a local folder standing for one) and swap to it atomically.

Target layout::

    PATH/releases/<version>/   one bundle per deployed version (the last K kept)
    PATH/current  -> releases/<version>   what the runtime runs (hot-swapped when it changes)
    PATH/previous -> releases/<version>   what `--rollback` switches back to

    PATH/.deploy.lock     held (flock) by the one deploy or rollback working on the target
    PATH/releases/<version>/.accepted-digest   the bundle digest the workstation sent, written
                          once the release passed verify; every later load checks it

The steps, all under the target's lock, and why an interruption at any of them leaves a
working `current`:

0. digest: the bundle digest (SHA-256 of manifest.json, which lists every other file's
   hash) is computed here; for a registered version it must equal the digest the
   registry recorded, or nothing is copied;
1. copy: the bundle goes to `releases/.incoming-<version>-<pid>/`, then one rename
   makes it `releases/<version>/` (a half copy never has a release name);
2. verify: the target's own edgekit runs `edgekit bundle verify --expect-digest D` on
   it (edge.bundle.check_bundle: digests, signature when the car trusts a key, sizes,
   labels, preprocessing vs input shape, golden self-test with the target's
   interpreter); a failure removes the release and leaves `current` alone; success
   records D in the release (`.accepted-digest`);
3. switch: `current` first, then `previous`, each a new symlink renamed over the old
   (rename(2) is atomic: readers see the old link or the new one, never none). Killed
   between the two, `previous` may equal `current`; the next deploy or rollback points
   `previous` at the newest other accepted release;
4. health check: the target verifies `current` again through the link, as the runtime
   will load it; a failure switches back to the old `current` and removes the release;
5. prune: all but the `keep` newest releases go, never `current`, `previous` or the
   newest accepted release.

Leftovers of an interrupted deploy are cleaned by the next one, which verifies an
already-copied release again before switching to it.

Example:
    >>> target = open_target("pi@car.local:/home/pi/edgekit")
    >>> deploy(Path("models/signals/v0003/bundle"), "v0003", target, keep=3)
"""

from __future__ import annotations

import fcntl
import io
import json
import logging
import os
import re
import select
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from edge.bundle import ACCEPTED_FILE, manifest_digest
from edge.digest import file_sha256, is_sha256_hex
from edge.durable import atomic_write, copy_tree_synced, fsync_dir
from edge.errors import UserError
from edge.remote import SSH_FAILED, explain_ssh_failure, shared_connection, ssh_command

log = logging.getLogger(__name__)

RELEASES = "releases"
CURRENT = "current"
PREVIOUS = "previous"
INCOMING_PREFIX = ".incoming-"
RELEASE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
REMOTE_PATTERN = re.compile(r"^(?P<host>[^/:\s]+@?[^/:\s]*):(?P<path>.+)$")
DEFAULT_VERIFY_TIMEOUT = 300.0
LOCK_FILE = ".deploy.lock"
DEFAULT_LOCK_WAIT = 10.0
LOCKED = "edgekit-deploy-locked"


class DeployError(UserError):
    """A deploy that could not finish; the target still runs its previous `current`."""


@dataclass(frozen=True)
class DeployResult:
    release: str
    previous: str | None
    verify_report: dict[str, Any]
    removed: list[str]
    copied: bool


class Target(Protocol):
    """Where releases live: a local folder or a folder on a host reached by ssh."""

    def describe(self) -> str: ...
    def lock(self) -> AbstractContextManager[None]: ...
    def prepare(self) -> None: ...
    def release_manifest_sha256(self, release: str) -> str | None: ...
    def upload(self, bundle_dir: Path, release: str) -> None: ...
    def verify(self, release: str, digest: str | None = None) -> dict[str, Any]: ...
    def verify_current(self, digest: str | None = None) -> dict[str, Any]: ...
    def record_accepted(self, release: str, digest: str) -> None: ...
    def accepted_newest_first(self) -> list[str]: ...
    def remove_release(self, release: str) -> None: ...
    def read_link(self, link: str) -> str | None: ...
    def set_link(self, link: str, release: str) -> None: ...
    def releases_newest_first(self) -> list[str]: ...


def _busy(target: str, waited: float) -> DeployError:
    return DeployError(f"another deploy or rollback to {target} is running (waited {waited:g} s): "
                       "let it finish, then try again")


def _verify_args(path: str, digest: str | None) -> list[str]:
    """The target's `edgekit bundle verify` arguments (the digest is hex, checked by the caller)."""
    return ["bundle", "verify", "--json", *(["--expect-digest", digest] if digest else []), path]


def _check_release_name(release: str) -> str:
    if not RELEASE_NAME.match(release):
        raise DeployError(f"{release!r} is not a usable release name: use letters, digits, '.', '_' or '-'")
    return release


def _release_of(link_value: str | None) -> str | None:
    """'releases/v0003' -> 'v0003' (None for a missing or foreign link)."""
    if not link_value:
        return None
    parts = Path(link_value).parts
    return parts[-1] if len(parts) >= 2 and parts[-2] == RELEASES else None


def _parse_verify_output(stdout: str) -> dict[str, Any]:
    start = stdout.find("{")
    if start < 0:
        return {"output": stdout.strip()}
    try:
        return json.loads(stdout[start:])
    except json.JSONDecodeError:
        return {"output": stdout.strip()}


def _verify_failure(where: str, returncode: int, stderr: str) -> DeployError:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    detail = lines[-1] if lines else f"exit status {returncode}"
    if returncode < 0:
        detail = f"the verifier was killed by signal {-returncode}"
    return DeployError(f"the target could not verify {where}: {detail}")


class LocalTarget:
    """A folder on this machine (a mounted SD card, or a folder standing for the car).

    Args:
        root: the target folder (created if missing).
        edgekit: the target's edgekit command as a list, e.g. [".venv-device/bin/edgekit"];
            default: this Python's `-m edge.cli`.
        verify_timeout: seconds before the verifier counts as hung.
    """

    def __init__(self, root: Path, edgekit: list[str] | None = None,
                 verify_timeout: float = DEFAULT_VERIFY_TIMEOUT, lock_wait: float = DEFAULT_LOCK_WAIT) -> None:
        self.root = Path(root)
        self.edgekit = edgekit or [sys.executable, "-m", "edge.cli"]
        self.verify_timeout = verify_timeout
        self.lock_wait = lock_wait

    @property
    def releases(self) -> Path:
        return self.root / RELEASES

    def describe(self) -> str:
        return str(self.root)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold an exclusive flock on ROOT/.deploy.lock, waiting up to `lock_wait` seconds."""
        if self.root.exists() and not self.root.is_dir():
            raise DeployError(f"target {self.root} is a file, not a folder: give a folder")
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + self.lock_wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise _busy(str(self.root), self.lock_wait) from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)  # releases the lock (a killed deploy's lock goes with its process)

    def prepare(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise DeployError(f"target {self.root} is a file, not a folder: give a folder")
        self.releases.mkdir(parents=True, exist_ok=True)
        for leftover in self.releases.glob(INCOMING_PREFIX + "*"):
            shutil.rmtree(leftover, ignore_errors=True)
        for leftover in self.root.glob(".*.tmp-*"):
            leftover.unlink(missing_ok=True)

    def release_manifest_sha256(self, release: str) -> str | None:
        manifest = self.releases / release / "manifest.json"
        return file_sha256(manifest) if manifest.is_file() else None

    def upload(self, bundle_dir: Path, release: str) -> None:
        incoming = self.releases / f"{INCOMING_PREFIX}{release}-{os.getpid()}"
        copy_tree_synced(bundle_dir, incoming, ignore=shutil.ignore_patterns(ACCEPTED_FILE))  # the car writes its own
        os.rename(incoming, self.releases / release)
        os.utime(self.releases / release)  # deploy time orders the releases for --keep
        fsync_dir(self.releases)

    def verify(self, release: str, digest: str | None = None) -> dict[str, Any]:
        return self._verify(str(self.releases / release), release, digest)

    def verify_current(self, digest: str | None = None) -> dict[str, Any]:
        return self._verify(str(self.root / CURRENT), CURRENT, digest)

    def _verify(self, path: str, release: str, digest: str | None) -> dict[str, Any]:
        command = [*self.edgekit, *_verify_args(path, digest)]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=self.verify_timeout)
        except FileNotFoundError as error:
            raise DeployError(f"the target's edgekit {self.edgekit[0]!r} was not found: "
                              "point --target-edgekit at it") from error
        except subprocess.TimeoutExpired as error:
            raise DeployError(f"verifying {release} on the target took over {self.verify_timeout:g} s") from error
        if result.returncode != 0:
            raise _verify_failure(release, result.returncode, result.stderr)
        return _parse_verify_output(result.stdout)

    def record_accepted(self, release: str, digest: str) -> None:
        path = self.releases / _check_release_name(release) / ACCEPTED_FILE
        if path.is_file() and path.read_text(encoding="ascii", errors="replace").strip() == digest:
            return  # unchanged: do not touch the folder the runtime may be watching
        atomic_write(path, digest + "\n")  # its temporary name starts with '.': bundle checks skip it

    def accepted_newest_first(self) -> list[str]:
        return [r for r in self.releases_newest_first() if (self.releases / r / ACCEPTED_FILE).is_file()]

    def remove_release(self, release: str) -> None:
        shutil.rmtree(self.releases / _check_release_name(release), ignore_errors=True)

    def read_link(self, link: str) -> str | None:
        try:
            return os.readlink(self.root / link)
        except (FileNotFoundError, OSError):
            return None

    def set_link(self, link: str, release: str) -> None:
        temporary = self.root / f".{link}.tmp-{os.getpid()}"
        temporary.unlink(missing_ok=True)
        os.symlink(f"{RELEASES}/{release}", temporary)
        try:
            os.replace(temporary, self.root / link)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        fsync_dir(self.root)

    def releases_newest_first(self) -> list[str]:
        if not self.releases.is_dir():
            return []
        found = [p for p in self.releases.iterdir() if p.is_dir() and not p.name.startswith(".")]
        return [p.name for p in sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)]


class SshTarget:
    """A folder on another machine, reached with ssh (key-based login, no password prompts).

    Args:
        host: "user@host" as ssh takes it (or a Host name of the ssh config).
        root: the folder on that host (relative paths start at the login's home).
        edgekit: the edgekit command on the host (shell words); default: ROOT/venv/bin/edgekit
            (where the README's Pi set-up puts it) if present, else `edgekit` on the PATH.
        ssh: the ssh command as a list, default edge.remote.ssh_command() ($EDGEKIT_SSH or ssh,
            with BatchMode and StrictHostKeyChecking on).
    """

    def __init__(self, host: str, root: str, edgekit: str | None = None, ssh: list[str] | None = None,
                 verify_timeout: float = DEFAULT_VERIFY_TIMEOUT, lock_wait: float = DEFAULT_LOCK_WAIT) -> None:
        self.host = host
        self.lock_wait = lock_wait
        self.root = root[2:] if root.startswith("~/") else root  # the login starts in the home folder
        self.edgekit = edgekit
        self.ssh = shared_connection(ssh or ssh_command())
        self.verify_timeout = verify_timeout
        self.q_root = shlex.quote(self.root)

    def describe(self) -> str:
        return f"{self.host}:{self.root}"

    def _run(self, script: str, stdin: bytes | None = None, timeout: float = 120.0,
             check: bool = True) -> subprocess.CompletedProcess:
        command = [*self.ssh, self.host, script]
        try:
            result = subprocess.run(command, input=stdin, capture_output=True, timeout=timeout)
        except FileNotFoundError as error:
            raise DeployError(f"ssh command {self.ssh[0]!r} not found: install OpenSSH or pass --ssh") from error
        except subprocess.TimeoutExpired as error:
            raise DeployError(f"{self.host} did not answer within {timeout:g} s") from error
        if check and result.returncode != 0:
            stderr = result.stderr.decode(errors="replace")
            raise DeployError(self._explain(result.returncode, stderr))
        return result

    def _explain(self, returncode: int, stderr: str) -> str:
        """One line for a failed ssh command: ssh's own failure, a full disk, or the car's last line."""
        explained = explain_ssh_failure(self.host, stderr) if returncode == SSH_FAILED else None
        if explained:
            return explained
        if "No space left on device" in stderr:
            return f"{self.host} has no space left under {self.root}: free some (or deploy with a lower --keep)"
        message = stderr.strip().splitlines()
        return f"on {self.host}: {message[-1] if message else 'exit ' + str(returncode)}"

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the car's ROOT/.deploy.lock for the whole deploy: one ssh session runs `flock`, which
        prints LOCKED once it holds the lock and keeps it until we close the session's stdin (or
        the session dies with a killed deploy)."""
        hold = shlex.quote(f"echo {LOCKED}; exec cat >/dev/null")
        script = (f"mkdir -p {self.q_root} && exec flock -w {self.lock_wait:g} {self.q_root}/{LOCK_FILE} "
                  f"sh -c {hold}")
        try:
            process = subprocess.Popen([*self.ssh, self.host, script], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except FileNotFoundError as error:
            raise DeployError(f"ssh command {self.ssh[0]!r} not found: install OpenSSH or pass --ssh") from error
        try:
            ready, _, _ = select.select([process.stdout], [], [], self.lock_wait + 60.0)
            line = process.stdout.readline().decode(errors="replace").strip() if ready else ""
            if line != LOCKED:
                process.kill()
                _, stderr = process.communicate(timeout=10)
                if process.returncode == 1 and not stderr.strip():
                    raise _busy(self.describe(), self.lock_wait)
                if not ready:
                    raise DeployError(f"{self.host} did not answer within {self.lock_wait + 60.0:g} s")
                raise DeployError(self._explain(process.returncode, stderr.decode(errors="replace")))
            yield
        finally:
            if process.stdin and not process.stdin.closed:
                process.stdin.close()  # ends `cat`, so flock releases the lock
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def prepare(self) -> None:
        self._run(f"set -e; mkdir -p {self.q_root}/{RELEASES}; cd {self.q_root}; "
                  f"rm -rf {RELEASES}/{INCOMING_PREFIX}*; rm -f .*.tmp-*")

    def release_manifest_sha256(self, release: str) -> str | None:
        path = shlex.quote(f"{self.root}/{RELEASES}/{release}/manifest.json")
        out = self._run(f"if [ -f {path} ]; then sha256sum {path}; fi").stdout.decode().split()
        return out[0] if out else None

    def upload(self, bundle_dir: Path, release: str) -> None:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for file in sorted(bundle_dir.rglob("*")):
                if file.is_file() and file.name != ACCEPTED_FILE:  # the car writes its own
                    tar.add(file, arcname=file.relative_to(bundle_dir).as_posix())
        incoming = f"{RELEASES}/{INCOMING_PREFIX}{release}-$$"
        self._run(
            f"set -e; cd {self.q_root}; tmp={incoming}; trap 'rm -rf \"$tmp\"' EXIT; mkdir \"$tmp\"; "
            f"tar -C \"$tmp\" -xf -; "
            f"sync; mv -T \"$tmp\" {RELEASES}/{release}; touch {RELEASES}/{release}",
            stdin=buffer.getvalue(), timeout=600.0,
        )

    def verify(self, release: str, digest: str | None = None) -> dict[str, Any]:
        return self._verify(f"{self.root}/{RELEASES}/{release}", release, digest)

    def verify_current(self, digest: str | None = None) -> dict[str, Any]:
        return self._verify(f"{self.root}/{CURRENT}", CURRENT, digest)

    def _verify(self, path: str, release: str, digest: str | None) -> dict[str, Any]:
        edgekit = self.edgekit or '"$e"'
        find = "" if self.edgekit else f"e={self.q_root}/venv/bin/edgekit; [ -x \"$e\" ] || e=edgekit; "
        arguments = shlex.join(_verify_args(path, digest))
        result = self._run(f"{find}{edgekit} {arguments}", timeout=self.verify_timeout, check=False)
        if result.returncode != 0:
            stderr = result.stderr.decode(errors="replace")
            if result.returncode == SSH_FAILED and explain_ssh_failure(self.host, stderr):
                raise DeployError(f"{self._explain(result.returncode, stderr)} while it verified {release}")
            if result.returncode == 127:
                where = self.edgekit or f"{self.root}/venv/bin/edgekit, or edgekit on the PATH"
                raise DeployError(f"{self.host} has no edgekit ({where}): set it up as the README's "
                                  "'On the Pi' says, or give --target-edgekit")
            raise _verify_failure(f"{release} on {self.host}", result.returncode, stderr)
        return _parse_verify_output(result.stdout.decode(errors="replace"))

    def record_accepted(self, release: str, digest: str) -> None:
        folder = f"{self.q_root}/{RELEASES}/{_check_release_name(release)}"
        self._run(f"set -e; cd {folder}; [ \"$(cat {ACCEPTED_FILE} 2>/dev/null)\" = {shlex.quote(digest)} ] || "
                  f"{{ printf '%s\\n' {shlex.quote(digest)} > {ACCEPTED_FILE}.tmp-$$; sync; "
                  f"mv -f {ACCEPTED_FILE}.tmp-$$ {ACCEPTED_FILE}; }}")

    def accepted_newest_first(self) -> list[str]:
        out = self._run(f"cd {self.q_root}/{RELEASES} 2>/dev/null && for d in $(ls -1t); do "
                        f"[ -f \"$d/{ACCEPTED_FILE}\" ] && echo \"$d\"; done; true").stdout.decode()
        return [name for name in out.split() if not name.startswith(".")]

    def remove_release(self, release: str) -> None:
        self._run(f"rm -rf {self.q_root}/{RELEASES}/{_check_release_name(release)}")

    def read_link(self, link: str) -> str | None:
        out = self._run(f"readlink {self.q_root}/{link} || true").stdout.decode().strip()
        return out or None

    def set_link(self, link: str, release: str) -> None:
        self._run(f"set -e; cd {self.q_root}; ln -s {RELEASES}/{release} .{link}.tmp-$$; "
                  f"mv -T .{link}.tmp-$$ {link}")

    def releases_newest_first(self) -> list[str]:
        out = self._run(f"cd {self.q_root}/{RELEASES} 2>/dev/null && ls -1t || true").stdout.decode()
        return [name for name in out.split() if not name.startswith(".")]


def open_target(spec: str, edgekit: str | None = None, ssh: str | None = None,
                verify_timeout: float = DEFAULT_VERIFY_TIMEOUT, lock_wait: float = DEFAULT_LOCK_WAIT) -> Target:
    """'PATH' -> LocalTarget, 'user@host:PATH' -> SshTarget.

    Args:
        spec: the --to value.
        edgekit: the target's edgekit command (shell words).
        ssh: the ssh command (shell words), for remote targets.
        lock_wait: seconds to wait for another deploy to the same target to finish.
    """
    match = REMOTE_PATTERN.match(spec)
    if match and not Path(spec).exists():
        return SshTarget(match["host"], match["path"], edgekit=edgekit,
                         ssh=ssh_command(ssh), verify_timeout=verify_timeout, lock_wait=lock_wait)
    return LocalTarget(Path(spec), edgekit=shlex.split(edgekit) if edgekit else None,
                       verify_timeout=verify_timeout, lock_wait=lock_wait)


def bundle_digest(bundle_dir: Path, expected: str | None = None) -> str:
    """The digest deploy sends (SHA-256 of manifest.json); must equal `expected` (the registry's record)."""
    digest = manifest_digest(Path(bundle_dir))
    if expected is not None and expected.lower() != digest:
        raise DeployError(
            f"{bundle_dir} is not the bundle that was registered: its manifest digest {digest[:12]}... != "
            f"{expected[:12]}... recorded at registration; it was changed since, do not deploy it "
            "(restore the version, or register the bundle again)")
    return digest


def registered_digest(entry: Any) -> str:
    """The bundle digest the registry recorded for a version (train.registry.ModelVersion)."""
    recorded = entry.lineage.get("bundle_manifest_sha256")
    if not is_sha256_hex(recorded):
        raise DeployError(f"{entry.name} {entry.version} has no recorded manifest hash in its lineage.json, so "
                          "its bundle cannot be checked: register the bundle again")
    return recorded


def repair_links(target: Target) -> None:
    """Point `previous` at the newest other accepted release when it equals `current` or is gone
    (a deploy killed between the two link renames)."""
    current, previous = _release_of(target.read_link(CURRENT)), _release_of(target.read_link(PREVIOUS))
    if previous is None or (previous != current and previous in target.releases_newest_first()):
        return
    others = [r for r in target.accepted_newest_first() if r != current]
    if others:
        log.info("repair: previous -> %s (was %s)", others[0], previous)
        target.set_link(PREVIOUS, others[0])


def _switch(target: Target, new_current: str, new_previous: str | None) -> None:
    """`current` first, then `previous`: killed in between, `current` is right and repair_links fixes
    `previous`."""
    target.set_link(CURRENT, new_current)
    if new_previous and new_previous != new_current:
        target.set_link(PREVIOUS, new_previous)


def _health_check(target: Target, release: str, digest: str | None, before: str | None,
                  before_previous: str | None) -> dict[str, Any]:
    """Verify `current` through the link, as the runtime loads it; on failure switch back and say so."""
    try:
        return target.verify_current(digest)
    except DeployError as error:
        fallback = before if before and before != release else before_previous
        if not fallback or fallback == release:
            raise DeployError(f"{error}; after the switch, with no earlier release to go back to: "
                              f"`current` points to {release}, which the target cannot load") from error
        target.set_link(CURRENT, fallback)
        target.remove_release(release)  # it failed on the car: never a place to roll back to
        if before_previous and before_previous not in (fallback, release):
            target.set_link(PREVIOUS, before_previous)
        repair_links(target)
        raise DeployError(f"{error}; this was the check after the switch, so it rolled back: "
                          f"`current` points to {fallback} again") from error


def deploy(bundle_dir: Path, release: str, target: Target, keep: int = 3,
           expected_digest: str | None = None) -> DeployResult:
    """Copy, verify on the target, switch `current`, check it, prune to the last `keep` releases.

    Args:
        bundle_dir: a bundle folder (already checked on this machine).
        release: the release name on the target, e.g. "v0003".
        target: from open_target().
        keep: releases to keep (at least 2; `current`, `previous` and the newest accepted
            release are never removed).
        expected_digest: the bundle digest the registry recorded for this version; the bundle
            must still have it, and the target verifies against it.

    Raises DeployError (target on its old `current`, or switched back to it) when any step fails.
    """
    _check_release_name(release)
    if keep < 2:
        raise DeployError(f"--keep must be at least 2 (current and previous), got {keep}")
    digest = bundle_digest(Path(bundle_dir), expected_digest)
    with target.lock():
        target.prepare()
        repair_links(target)
        before = _release_of(target.read_link(CURRENT))
        before_previous = _release_of(target.read_link(PREVIOUS))
        existing_sha = target.release_manifest_sha256(release)
        copied = existing_sha is None
        if existing_sha is not None and existing_sha != digest:
            raise DeployError(
                f"{target.describe()} already has a different release named {release}: "
                "deploy under another name or remove that release folder")
        if copied:
            log.info("copy: %s -> %s/%s/%s", bundle_dir, target.describe(), RELEASES, release)
            try:
                target.upload(Path(bundle_dir), release)
            except DeployError as error:
                raise DeployError(f"{error}; `current` still points to {before or 'nothing'}") from error
        log.info("verify: %s on the target (digest %s)", release, digest)
        try:
            report = target.verify(release, digest)
        except DeployError as error:
            state = f"`current` still points to {before or 'nothing'} (never switched)"
            try:
                if release not in (before, before_previous):
                    target.remove_release(release)  # never switch to it: it failed on the target
            except DeployError as unreachable:
                raise DeployError(f"{error}; {state}; {release} may be left on the target, and the next deploy "
                                  f"verifies it again before switching ({unreachable})") from error
            raise DeployError(f"{error}; {state}") from error
        target.record_accepted(release, digest)
        if before != release:
            _switch(target, release, before)
        log.info("switch: current -> %s (was %s)", release, before or "none")
        health = _health_check(target, release, digest, before, before_previous)
        report["health_check"] = f"current verified after the switch (self-test {health.get('self_test', '?')})"
        removed = prune(target, keep)
    return DeployResult(release=release, previous=before if before != release else None,
                        verify_report=report, removed=removed, copied=copied)


def rollback(target: Target) -> DeployResult:
    """Switch `current` back to `previous` (verified again first, and through `current` after)."""
    with target.lock():
        target.prepare()
        repair_links(target)
        current = _release_of(target.read_link(CURRENT))
        previous = _release_of(target.read_link(PREVIOUS))
        if not previous or previous == current:
            raise DeployError(f"{target.describe()} has no previous release to roll back to")
        report = target.verify(previous)  # the release's .accepted-digest pins what it must be
        _switch(target, previous, current)
        try:
            target.verify_current()
        except DeployError as error:
            if current:
                _switch(target, current, previous)
            raise DeployError(f"{error}; after the switch, so `current` points to {current} again") from error
    return DeployResult(release=previous, previous=current, verify_report=report, removed=[], copied=False)


def prune(target: Target, keep: int) -> list[str]:
    """Remove all but the `keep` newest releases; never `current`, `previous`, or the newest release
    that passed the check (overall, and other than `current`: where a rollback can go)."""
    current = _release_of(target.read_link(CURRENT))
    accepted = target.accepted_newest_first()
    protected = {current, _release_of(target.read_link(PREVIOUS)), *accepted[:1],
                 *[r for r in accepted if r != current][:1]}
    removed = []
    for index, release in enumerate(target.releases_newest_first()):
        if index >= keep and release not in protected:
            target.remove_release(release)
            removed.append(release)
    return removed


def status(target: Target) -> dict[str, Any]:
    """What the target holds: current, previous, releases newest first."""
    return {
        "target": target.describe(),
        "current": _release_of(target.read_link(CURRENT)),
        "previous": _release_of(target.read_link(PREVIOUS)),
        "releases": target.releases_newest_first(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
