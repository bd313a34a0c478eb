"""The `edgekit` command: one console script, one subcommand per module.

Each package named in the `edgekit.commands` entry-point group (edge, convert,
train) contributes every module of its `commands` folder (modules whose name starts
with "_" are helpers, not commands). A command module defines:

    NAME = "split"                 # the subcommand, unique across all packages
    HELP = "one line for --help"
    def add_arguments(parser: argparse.ArgumentParser) -> None: ...
    def run(args: argparse.Namespace) -> int: ...   # the exit code; raise UserError for bad input

and may define these optional hooks:

    NEEDS = ("tensorflow",)        # modules that must be importable; missing -> MissingExtraError
    EXTRA = "host"                 # the extra that brings NEEDS (default "host")
    NO_BLAS_THREADS = True         # one OpenBLAS thread, set before NumPy is imported (car commands)

`discover_commands` enforces the required part at start: a module without one of them, or
two modules with one NAME, raise CommandContractError before any command runs.

Command modules import heavy libraries inside `run`, never at module level, so
that `edgekit --help` and every car command work with the device extra alone.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import pkgutil
import signal
import sys
import traceback
from importlib.metadata import entry_points
from types import ModuleType

from edge import __version__, interrupted_while_starting
from edge.errors import MissingExtraError, UserError

ENTRY_POINT_GROUP = "edgekit.commands"
_FALLBACK_PACKAGES = ("edge.commands", "convert.commands", "train.commands")


REQUIRED = ("NAME", "HELP", "add_arguments", "run")


class CommandContractError(RuntimeError):
    """A command module breaks the contract above: a bug in edgekit or a plug-in, not the user's."""


def _check_contract(module: ModuleType, commands: dict[str, ModuleType]) -> str:
    missing = [attribute for attribute in REQUIRED if not getattr(module, attribute, None)]
    if missing:
        raise CommandContractError(f"command module {module.__name__} lacks {', '.join(missing)}: "
                                   "define them (see edge/cli.py) or name the module _helper")
    name = module.NAME
    if not isinstance(name, str):
        raise CommandContractError(f"command module {module.__name__}: NAME must be a string, got {name!r}")
    if name in commands:
        raise CommandContractError(f"two commands named {name!r}: {commands[name].__name__} and "
                                   f"{module.__name__}; rename one")
    return name


def _command_packages() -> list[str]:
    names = [ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)]
    return names or list(_FALLBACK_PACKAGES)


def discover_commands(packages: list[str] | None = None) -> dict[str, ModuleType]:
    """Import every command module (cheap: they import heavy libraries lazily), checking the contract."""
    commands: dict[str, ModuleType] = {}
    for package_name in packages or _command_packages():
        try:
            package = importlib.import_module(package_name)
        except ImportError:
            continue
        for info in pkgutil.iter_modules(package.__path__):
            if info.name.startswith("_"):
                continue
            module = importlib.import_module(f"{package_name}.{info.name}")
            commands[_check_contract(module, commands)] = module
    return dict(sorted(commands.items()))


def build_parser(commands: dict[str, ModuleType]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgekit",
        description="Train a camera CNN, run it quantized on the car, learn from the field.",
    )
    parser.add_argument("--version", action="version", version=f"edgekit {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show details and tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in commands.items():
        command_parser = sub.add_parser(name, help=module.HELP, description=module.HELP)
        command_parser.add_argument(
            "-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
            help="show details and tracebacks",
        )
        module.add_arguments(command_parser)
    return parser


def _check_needs(name: str, module: ModuleType) -> None:
    for needed in getattr(module, "NEEDS", ()):
        if importlib.util.find_spec(needed) is None:
            raise MissingExtraError(name, needed, getattr(module, "EXTRA", "host"))


def _requested_command(argv: list[str] | None) -> str | None:
    words = [word for word in (sys.argv[1:] if argv is None else argv) if not word.startswith("-")]
    return words[0] if words else None


def main(argv: list[str] | None = None) -> int:
    # A car command loads only edge's commands: nothing of train/ or convert/ gets imported.
    commands = discover_commands(["edge.commands"])
    requested = _requested_command(argv)
    if requested not in commands:
        commands = discover_commands()
    if getattr(commands.get(requested), "NO_BLAS_THREADS", False):
        # Before NumPy is imported (the parser's options import it): OpenBLAS's threads spin for
        # ~0.1 s of CPU at start, on cores the camera and interpreter need, for linear algebra
        # the car never does.
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    parser = build_parser(commands)
    args = parser.parse_args(argv)
    verbose = bool(getattr(args, "verbose", False))
    from edge.verbosity import configure as configure_verbosity

    configure_verbosity(verbose)  # before any command imports TensorFlow, Keras or tqdm
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s" if not verbose else "%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    if not args.command:
        parser.print_help()
        return 2
    module = commands[args.command]
    if signal.getsignal(signal.SIGINT) is interrupted_while_starting:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # from here KeyboardInterrupt, handled below
    try:
        _check_needs(args.command, module)
        return int(module.run(args) or 0)
    except UserError as error:
        if verbose:
            traceback.print_exc()
        print(f"edgekit {args.command}: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"edgekit {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
