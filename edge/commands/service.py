"""`edgekit service install`: a systemd unit that keeps `edgekit run --config FILE` running on the car."""

from __future__ import annotations

import argparse
import getpass
import os
import shlex
import sys
from pathlib import Path

NAME = "service"
HELP = "install edgekit run as a systemd service (restarted on failure)"
NEEDS = ()

DEFAULT_UNIT = Path("/etc/systemd/system/edgekit.service")

UNIT_TEMPLATE = """\
[Unit]
Description=edgekit runtime: camera frames in, results out ({config})
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
User={user}
WorkingDirectory={workdir}
ExecStart={command}
Environment=PYTHONUNBUFFERED=1
Restart=on-failure
RestartSec=5
KillSignal=SIGTERM
TimeoutStopSec=30

[Install]
WantedBy=multi-user.target
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="service_command", metavar="ACTION", required=True)
    install = sub.add_parser("install", help="write the unit file and print how to enable it")
    install.add_argument("--config", type=Path, required=True, help="the TOML config `edgekit run` reads")
    install.add_argument("--output", type=Path, default=DEFAULT_UNIT, help=f"unit file (default {DEFAULT_UNIT})")
    install.add_argument("--user", default=None, help="user the service runs as (default: you, also under sudo)")
    install.add_argument("--working-directory", type=Path, default=None,
                         help="where relative paths in the config point (default: the config's folder)")


def render_unit(config: Path, user: str, workdir: Path, python: str = sys.executable) -> str:
    """The unit file text (paths absolute, the interpreter of this venv)."""
    command = shlex.join([python, "-m", "edge.cli", "run", "--config", str(config)])
    return UNIT_TEMPLATE.format(config=config, user=user, workdir=workdir, command=command)


def run(args: argparse.Namespace) -> int:
    from edge.errors import UserError
    from edge.runtime import load_config

    config = args.config.expanduser().resolve()
    load_config(config)  # a config that cannot run would only crash-loop under systemd
    user = args.user or os.environ.get("SUDO_USER") or getpass.getuser()
    workdir = (args.working_directory or config.parent).expanduser().resolve()
    unit = render_unit(config, user, workdir)
    output: Path = args.output.expanduser()
    partial = output.with_name(f".{output.name}.partial")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(unit, encoding="utf-8")
        os.replace(partial, output)
    except PermissionError as error:
        partial.unlink(missing_ok=True)
        raise UserError(f"cannot write {output} ({error.strerror}): run with sudo, "
                        "or pass --output FILE and copy it there") from error
    service = output.name
    print(f"wrote {output}")
    if output.parent != DEFAULT_UNIT.parent:
        print(f"  sudo cp {output} {DEFAULT_UNIT.parent / service}")
    print("  sudo systemctl daemon-reload")
    print(f"  sudo systemctl enable --now {service}")
    print(f"  journalctl -u {service} -f     # results, stats lines, errors")
    return 0
