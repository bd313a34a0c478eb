"""The ssh command edgekit reaches a car with, and ssh's own failures said in one line.

`deploy`, `pull` and `cycle` all log in the same way: `EDGEKIT_SSH` (or `--ssh`) names the
ssh command, e.g. `ssh -F ~/car/ssh_config` for a config file holding the car's address, port,
key and known_hosts; without it, plain `ssh` reads `~/.ssh/config`. When the command is
OpenSSH's `ssh`, edgekit puts `-o BatchMode=yes -o StrictHostKeyChecking=yes` first (ssh keeps
the first value it reads for an option), so an unattended run never waits at a prompt and a
host key that is unknown or changed is refused even if a config file says otherwise.

Example:
    >>> ssh_command("ssh -F car.conf")
    ['ssh', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-F', 'car.conf']
"""

from __future__ import annotations

import atexit
import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

SSH_ENV = "EDGEKIT_SSH"
SAFE_OPTIONS = ("-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes")
SSH_FAILED = 255  # ssh's exit status for its own failures (not the remote command's)


def ssh_command(override: str | None = None) -> list[str]:
    """The ssh command as a word list: `override`, else $EDGEKIT_SSH, else `ssh`."""
    words = shlex.split(override or os.environ.get(SSH_ENV) or "ssh")
    if not words:
        raise ValueError(f"{SSH_ENV} or --ssh is empty: give an ssh command such as 'ssh -F car.conf'")
    if Path(words[0]).name == "ssh":
        words = [words[0], *SAFE_OPTIONS, *words[1:]]
    return words


def shared_connection(command: list[str]) -> list[str]:
    """`command` with OpenSSH's connection sharing: one login for all the commands of a deploy.

    A deploy runs a dozen short commands on the car; each new login costs a handshake (about a
    second to a Pi over Wi-Fi). The first command opens a master connection, the others ride on
    it; it closes when this process exits (or 30 s after its last use, if this process is killed).
    """
    if Path(command[0]).name != "ssh":
        return command
    folder = tempfile.mkdtemp(prefix="edgekit-ssh-")  # mode 0700: only this user reaches the socket
    atexit.register(_close_shared, command[0], folder)
    return [*command, "-o", "ControlMaster=auto", "-o", f"ControlPath={folder}/%C", "-o", "ControlPersist=30"]


def _close_shared(ssh: str, folder: str) -> None:
    for socket in Path(folder).iterdir():
        subprocess.run([ssh, "-o", f"ControlPath={socket}", "-O", "exit", "car"], capture_output=True,
                       timeout=10, check=False)
    shutil.rmtree(folder, ignore_errors=True)


def explain_ssh_failure(host: str, stderr: str) -> str | None:
    """One line for a failure of ssh itself (exit 255), or None when stderr is not one of ssh's.

    Args:
        host: what the user called the car ("pi@car.local").
        stderr: ssh's standard error.
    """
    lines = [line.strip() for line in stderr.splitlines() if line.strip() and not line.startswith("@")]
    if not lines:  # a shared connection's master died: its clients exit 255 without a word
        return f"lost the connection to {host} (ssh said nothing more)"
    last = lines[-1]
    name = host.split("@")[-1]
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in stderr:
        return (f"refused: {host} answered with a host key other than the one in known_hosts (a re-flashed "
                f"car, or another machine at its address); if you re-flashed it, remove the old key with "
                f"`ssh-keygen -R {name}`, then check the new one with `ssh {host}`")
    if "Host key verification failed" in stderr or "host key is known" in stderr:
        return (f"refused: {host}'s host key is not in known_hosts; connect once with `ssh {host}` and "
                "check its fingerprint (edgekit never accepts a host key by itself)")
    if "Permission denied" in stderr:
        return (f"{host} refused this machine's key ({last}): add it to the car with `ssh-copy-id {host}` "
                f"or point IdentityFile (or {SSH_ENV}/--ssh) at the key the car knows")
    if any(text in stderr for text in ("closed by remote host", "Connection reset", "Broken pipe",
                                       "Timeout, server", "not responding", "closed by")):
        return f"lost the connection to {host} ({last})"
    if any(text in stderr for text in ("Connection refused", "No route to host", "timed out",
                                       "Could not resolve", "Network is unreachable",
                                       "Name or service not known")):
        return f"could not reach {host} ({last}): is the car on, on the network, and running sshd?"
    return None
