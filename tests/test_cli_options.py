"""Shared options of `models`, `label`, `samples` and `bundle` work before and after the action (issue 13.3).

`models` is covered in tests/test_loop_registry.py; here the other three, each run both ways.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_edgekit
from tests.loop_store import make_store
from tests.tiny_bundles import float_tflite, write_bundle


@pytest.mark.slow
@pytest.mark.parametrize("where", ["before", "after"])
def test_samples_bundle_and_label_take_shared_options_on_either_side(tmp_path, where):
    store = str(make_store(tmp_path / "store", n=6, sessions=2))
    bundle = str(write_bundle(tmp_path / "bundle", float_tflite(), name="signals"))

    def edgekit(command: str, action: list[str], options: list[str]):
        words = [command, *options, *action] if where == "before" else [command, *action, *options]
        return run_edgekit(*words, check=True).stdout

    assert isinstance(json.loads(edgekit("samples", ["stats", store], ["--json"])), dict)
    listed = [json.loads(line) for line in edgekit("samples", ["list", store], ["--json", "--session", "s1"])
              .splitlines()]
    assert len(listed) == 3 and {row["session_id"] for row in listed} == {"s1"}
    exported = tmp_path / "s0.tar"
    edgekit("samples", ["export", store, str(exported)], ["--session", "s0"])
    assert exported.is_file()
    assert json.loads(edgekit("bundle", ["verify", bundle], ["--json"]))["self_test"] == "ok"
    assert json.loads(edgekit("bundle", ["show", bundle], ["--json"]))["name"] == "signals"
    out = tmp_path / "sort"
    edgekit("label", ["export", store, "--out", str(out)], ["--classes", "go,stop"])
    assert {"go", "stop"} <= {p.name for p in out.iterdir() if p.is_dir()}
