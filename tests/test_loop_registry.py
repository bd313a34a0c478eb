"""The model registry: versions kept, atomic production pointer, rollback, CLI without TensorFlow."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edge.errors import UserError
from tests.conftest import ROOT, run_edgekit
from tests.tiny_bundles import LABELS, float_tflite, write_bundle
from train.registry import Registry, RegistryError


def make_bundle(folder: Path, version: str = "x") -> Path:
    """A real tiny bundle (checksums, golden outputs): promote verifies what it promotes."""
    return write_bundle(folder, float_tflite(), name="signals", version=version)


def test_register_promote_rollback(tmp_path):
    reg = Registry(tmp_path / "models")
    keras = tmp_path / "model.keras"
    keras.write_bytes(b"k")
    v1 = reg.register("signals", make_bundle(tmp_path / "b1", "a"), keras_model=keras,
                      metrics={"val_accuracy": 0.8}, lineage={"dataset_sha256": "abc"})
    assert v1.version == "v0001" and v1.parent is None
    assert (v1.bundle_path / "model.tflite").read_bytes() == (tmp_path / "b1" / "model.tflite").read_bytes()
    assert v1.keras_path.read_bytes() == b"k"
    assert v1.lineage["dataset_sha256"] == "abc" and v1.metrics == {"val_accuracy": 0.8}
    assert reg.production("signals") is None

    reg.promote("signals", "v0001")
    v2 = reg.register("signals", make_bundle(tmp_path / "b2", "b"))
    assert v2.version == "v0002" and v2.parent == "v0001"  # parent defaults to production
    reg.promote("signals", "v0002")
    v3 = reg.register("signals", make_bundle(tmp_path / "b3", "c"))
    reg.promote("signals", v3.version)
    assert reg.production("signals").version == "v0003"

    assert reg.rollback("signals").version == "v0002"
    assert reg.rollback("signals").version == "v0001"
    with pytest.raises(RegistryError, match="no version was in production before v0001"):
        reg.rollback("signals")
    assert reg.rollback("signals", to="v0003").version == "v0003"
    assert [v.version for v in reg.versions("signals")] == ["v0001", "v0002", "v0003"]  # all kept
    assert [r["action"] for r in reg.history("signals")] == ["promote"] * 3 + ["rollback"] * 3


def test_bad_requests_are_user_errors(tmp_path):
    reg = Registry(tmp_path / "models")
    with pytest.raises(UserError, match="not a bundle directory"):
        reg.register("signals", tmp_path)
    reg.register("signals", make_bundle(tmp_path / "b1"))
    with pytest.raises(UserError, match="no version v0009"):
        reg.get("signals", "v0009")
    with pytest.raises(UserError, match="not a version"):
        reg.promote("signals", "banana")
    with pytest.raises(UserError, match="not a usable model name"):
        reg.register("../evil", make_bundle(tmp_path / "b2"))
    reg.register("other", make_bundle(tmp_path / "b3"))
    with pytest.raises(UserError, match="several models"):
        reg.default_name(None)


def test_crashed_register_leaves_no_version_and_next_one_is_numbered_right(tmp_path, monkeypatch):
    reg = Registry(tmp_path / "models")
    reg.register("signals", make_bundle(tmp_path / "b1"))

    def boom(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("train.registry.write_json_atomic", boom)
    with pytest.raises(OSError):
        reg.register("signals", make_bundle(tmp_path / "b2"))
    monkeypatch.undo()
    assert [v.version for v in reg.versions("signals")] == ["v0001"]
    assert not [p for p in (tmp_path / "models" / "signals").iterdir() if p.name.startswith(".")]
    assert reg.register("signals", make_bundle(tmp_path / "b3")).version == "v0002"


def test_concurrent_claims_never_share_a_number(tmp_path):
    reg = Registry(tmp_path / "models")
    reg.register("signals", make_bundle(tmp_path / "b1"))
    # Another writer took v0002 after we computed "latest": the claim must skip to v0003.
    (tmp_path / "models" / "signals" / "v0002").mkdir()
    (tmp_path / "models" / "signals" / "v0002" / "lineage.json").write_text("{}")
    staging = tmp_path / "models" / "signals" / ".incoming-x"
    staging.mkdir()
    (staging / "f").write_text("x")
    folder = tmp_path / "models" / "signals"
    reg.latest = lambda name: reg.get(name, "v0001")  # a stale view of the folder
    assert reg._claim(folder, staging) == "v0003"


def test_production_pointer_is_replaced_atomically(tmp_path, monkeypatch):
    reg = Registry(tmp_path / "models")
    reg.register("signals", make_bundle(tmp_path / "b1"))
    reg.register("signals", make_bundle(tmp_path / "b2"))
    reg.promote("signals", "v0001")
    real_replace = os.replace

    def crash(src, dst):
        raise KeyboardInterrupt  # killed between writing the temp file and the rename

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        reg.promote("signals", "v0002")
    monkeypatch.setattr(os, "replace", real_replace)
    assert reg.production("signals").version == "v0001"
    assert sorted(p.name for p in (tmp_path / "models" / "signals").iterdir()) == [
        "history.jsonl", "production", "v0001", "v0002"]


def test_cli_list_show_promote_rollback_without_tensorflow(tmp_path):
    models = tmp_path / "models"
    run_dir = tmp_path / "runs" / "a"
    run_dir.mkdir(parents=True)
    (run_dir / "model.keras").write_bytes(b"k")
    (run_dir / "run.json").write_text(json.dumps({"dataset": "synthetic", "dataset_sha256": "d1",
                                                  "split_file": "s.json", "split_sha256": "s1"}))
    (run_dir / "summary.json").write_text(json.dumps({"max_val_accuracy": 0.9}))
    (run_dir / "spec.json").write_text(json.dumps({"conv": [8]}))
    bundle = make_bundle(tmp_path / "b1")
    out = run_edgekit("models", "--registry", str(models), "register", str(bundle), "--name", "signals",
                      "--run", str(run_dir), "--promote", check=True)
    assert "registered v0001 (bundle signals:x)" in out.stdout
    run_edgekit("models", "--registry", str(models), "register", str(make_bundle(tmp_path / "b2", "20250101")),
                "--name", "signals", check=True)
    listing = run_edgekit("models", "--registry", str(models), "list", check=True).stdout
    assert "* v0001" in listing and "  v0002" in listing
    # the registry number and the bundle's own version (what the car reports) side by side
    assert re.search(r"v0002 .* bundle signals:20250101", listing), listing
    assert "bundle_version: signals:20250101" in run_edgekit("models", "--registry", str(models), "show", "v0002",
                                                             check=True).stdout
    shown = json.loads(run_edgekit("models", "--registry", str(models), "show", "v0001", "--json",
                                   check=True).stdout)
    assert shown["lineage"]["dataset_sha256"] == "d1" and shown["lineage"]["spec"] == {"conv": [8]}
    assert shown["metrics"]["max_val_accuracy"] == 0.9 and shown["keras_model"].endswith("model.keras")
    assert shown["production"] and shown["labels"] == LABELS and shown["bundle_version"] == "signals:x"
    run_edgekit("models", "--registry", str(models), "promote", "v0002", check=True)
    back = run_edgekit("models", "--registry", str(models), "rollback", check=True)
    assert "production is now v0001" in back.stdout
    bad = run_edgekit("models", "--registry", str(models), "promote", "v0042")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and "no version v0042" in bad.stderr

    # listing never imports TensorFlow
    code = (f"import sys; from edge.cli import main; main(['models', '--registry', {str(models)!r}, 'list']);"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr


def test_promoting_production_again_changes_nothing_and_rollback_walks_back(tmp_path):
    """Issue 13.1: a repeated promote recorded previous == version and rollback then went nowhere."""
    reg = Registry(tmp_path / "models")
    for tag in "abc":
        reg.register("signals", make_bundle(tmp_path / f"b{tag}", tag))
    reg.promote("signals", "v0001")
    reg.promote("signals", "v0002")
    reg.promote("signals", "v0002")  # already production: a no-op
    assert [(r["action"], r["version"]) for r in reg.history("signals")] == [("promote", "v0001"),
                                                                             ("promote", "v0002")]
    assert reg.rollback("signals").version == "v0001"
    reg.promote("signals", "v0002")
    reg.promote("signals", "v0003")
    assert reg.production_trail("signals") == ["v0001", "v0002", "v0003"]
    assert reg.rollback("signals").version == "v0002"
    assert reg.rollback("signals").version == "v0001"  # walks further back, does not undo the first rollback
    with pytest.raises(RegistryError, match="no version was in production before v0001"):
        reg.rollback("signals")
    assert reg.rollback("signals", to="v0003").version == "v0003"
    assert reg.rollback("signals").version == "v0001"


def test_history_written_by_the_old_promote_still_rolls_back_somewhere_else(tmp_path):
    reg = Registry(tmp_path / "models")
    for tag in "ab":
        reg.register("signals", make_bundle(tmp_path / f"b{tag}", tag))
    reg.promote("signals", "v0001")
    reg.promote("signals", "v0002")
    reg.log_event("signals", "promote", "v0002", "v0002", "old edgekit")  # what the bug left behind
    assert reg.rollback("signals").version == "v0001"


def test_cli_promote_twice_rollback_twice_and_history(tmp_path):
    models = tmp_path / "models"
    for tag in "abc":
        run_edgekit("models", "register", str(make_bundle(tmp_path / f"b{tag}", tag)), "--name", "signals",
                    "--registry", str(models), check=True)
    for version in ("v0001", "v0002", "v0003"):
        run_edgekit("models", "promote", version, "--registry", str(models), check=True)
    again = run_edgekit("models", "promote", "v0003", "--registry", str(models), check=True)
    assert "v0003 is already production; nothing changed" in again.stdout
    first = run_edgekit("models", "rollback", "--registry", str(models), check=True).stdout
    second = run_edgekit("models", "rollback", "--registry", str(models), check=True).stdout
    assert "production is now v0002" in first and "production is now v0001" in second
    history = run_edgekit("models", "history", "--registry", str(models), check=True).stdout
    lines = [line for line in history.splitlines() if line.strip() and not line.startswith("production trail")]
    assert [line.split()[1:3] for line in lines] == [["promote", "v0001"], ["promote", "v0002"],
                                                     ["promote", "v0003"], ["rollback", "v0002"],
                                                     ["rollback", "v0001"]]
    records = [json.loads(line) for line in run_edgekit("models", "history", "--json", "--registry", str(models),
                                                        check=True).stdout.splitlines()]
    assert records[-1]["previous"] == "v0002"


def _rejected(reg: Registry, tmp_path: Path) -> str:
    reg.register("signals", make_bundle(tmp_path / "ba", "a"))
    reg.promote("signals", "v0001")
    gate = {"promote": False, "reasons": ["val: accuracy dropped 4.0 pt (max 1.0)"]}
    return reg.register("signals", make_bundle(tmp_path / "bb", "b"), metrics={"gate": gate}).version


def test_a_version_the_gate_rejected_needs_force_and_is_recorded_as_forced(tmp_path):
    """Issue 13.2: promote printed `production is now v0002` after `gate: rejected (v0002)`."""
    reg = Registry(tmp_path / "models")
    version = _rejected(reg, tmp_path)
    with pytest.raises(RegistryError, match="gate rejected signals v0002 .*accuracy dropped.*--force"):
        reg.promote("signals", version)
    assert reg.production("signals").version == "v0001"
    models = str(tmp_path / "models")
    refused = run_edgekit("models", "promote", version, "--registry", models)
    assert refused.returncode != 0 and "--force" in refused.stderr and "Traceback" not in refused.stderr
    assert "REJECTED by the gate" in run_edgekit("models", "list", "--registry", models, check=True).stdout
    forced = run_edgekit("models", "promote", version, "--force", "--registry", models, check=True)
    assert "FORCED" in forced.stdout and "production is now v0002" in forced.stdout
    last = reg.history("signals")[-1]
    assert last["version"] == "v0002" and last["forced"] is True and "accuracy dropped" in last["gate_rejection"]
    assert "FORCED" in run_edgekit("models", "history", "--registry", models, check=True).stdout


@pytest.mark.parametrize("where", ["before", "after"])
def test_models_options_work_before_and_after_the_action(tmp_path, where):
    """Issue 13.3: `models promote v0001 --registry DIR` said `unrecognized arguments`."""
    models = str(tmp_path / "models")
    bundle = str(make_bundle(tmp_path / "b1"))

    def models_cmd(action: list[str], options: list[str]) -> subprocess.CompletedProcess:
        words = ["models", *options, *action] if where == "before" else ["models", *action, *options]
        return run_edgekit(*words, check=True)

    models_cmd(["register", bundle], ["--registry", models, "--name", "signals"])
    models_cmd(["promote", "v0001"], ["--registry", models, "--name", "signals"])
    assert "* v0001" in models_cmd(["list"], ["--registry", models, "--name", "signals"]).stdout
    assert json.loads(models_cmd(["show", "v0001", "--json"], ["--registry", models]).stdout)["production"]
    assert "promote" in models_cmd(["history"], ["--registry", models]).stdout


def test_the_repository_has_the_registry_folder_and_git_ignores_its_versions(tmp_path):
    """Issue 13.10: the card's top-level models/ was absent; its versions must never be committed."""
    folder = ROOT / "models"
    assert "--registry" in (folder / "README.md").read_text() and "EDGEKIT_MODELS" in (folder / "README.md").read_text()
    ignored = subprocess.run(["git", "check-ignore", "--no-index", "models/signals/v0001/bundle/model.tflite",
                              "models/signals/production", "models/README.md"], cwd=ROOT, capture_output=True,
                             text=True)
    assert ignored.stdout.split() == ["models/signals/v0001/bundle/model.tflite", "models/signals/production"]
    copy = tmp_path / "models"
    copy.mkdir()
    (copy / "README.md").write_text((folder / "README.md").read_text())
    reg = Registry(copy)
    assert reg.names() == []
    reg.register("signals", make_bundle(tmp_path / "b1"))
    assert reg.names() == ["signals"]
