"""The CLI contract: help everywhere, one-line errors, car commands without TensorFlow."""

from __future__ import annotations

import subprocess

import pytest

from edge.cli import discover_commands
from tests.conftest import DEVICE_PYTHON, ROOT, run_edgekit

HEAVY = ("tensorflow", "keras", "train", "convert")


def test_top_level_help_lists_commands():
    result = run_edgekit("--help", check=True)
    assert "COMMAND" in result.stdout


@pytest.mark.parametrize("name", sorted(discover_commands()))
def test_every_subcommand_has_help(name):
    result = run_edgekit(name, "--help")
    assert result.returncode == 0, result.stderr
    assert name in result.stdout


def test_unknown_command_is_an_error_not_a_traceback():
    result = run_edgekit("no-such-command")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr


def _modules_loaded_by(snippet: str, python: str) -> set[str]:
    code = (
        "import sys\n" + snippet + "\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


def test_cli_discovery_imports_no_heavy_library():
    import sys

    loaded = _modules_loaded_by("from edge.cli import discover_commands; discover_commands()", sys.executable)
    assert not loaded & {"tensorflow", "keras"}, loaded & {"tensorflow", "keras"}


def test_device_only_environment_has_no_tensorflow_and_runs_help():
    if not DEVICE_PYTHON.exists():
        pytest.skip("the device-only venv (.venv-device) was not built; run `make device-env`")
    check = subprocess.run([str(DEVICE_PYTHON), "-c", "import tensorflow"], capture_output=True)
    assert check.returncode != 0, "the device venv must not have TensorFlow"
    result = run_edgekit("--help", python=DEVICE_PYTHON)
    assert result.returncode == 0, result.stderr


def _command_package(root, package: str, modules: dict[str, str]) -> str:
    """A package of command modules under `root` (on sys.path via monkeypatch), as a plug-in would ship."""
    folder = root / package
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    for name, body in modules.items():
        (folder / f"{name}.py").write_text(body)
    return package


GOOD = 'HELP = "h"\ndef add_arguments(parser): pass\ndef run(args): return 0\n'


def test_a_command_module_without_name_fails_at_start(tmp_path, monkeypatch):
    from edge.cli import CommandContractError

    monkeypatch.syspath_prepend(str(tmp_path))
    package = _command_package(tmp_path, "plugin_noname", {"good": 'NAME = "good"\n' + GOOD, "bad": GOOD,
                                                           "_helper": "X = 1\n"})
    with pytest.raises(CommandContractError, match=r"plugin_noname\.bad lacks NAME"):
        discover_commands([package])


def test_two_commands_with_one_name_fail_at_start(tmp_path, monkeypatch):
    from edge.cli import CommandContractError

    monkeypatch.syspath_prepend(str(tmp_path))
    first = _command_package(tmp_path, "plugin_one", {"split2": 'NAME = "split"\n' + GOOD})
    with pytest.raises(CommandContractError, match="two commands named 'split'"):
        discover_commands(["edge.commands", "train.commands", first])


def test_a_complete_plugin_command_is_discovered(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    package = _command_package(tmp_path, "plugin_ok", {"hello": 'NAME = "hello"\n' + GOOD, "_helper": "X = 1\n"})
    assert list(discover_commands([package])) == ["hello"]
