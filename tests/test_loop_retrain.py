"""`retrain` end to end on a tiny synthetic set: fine-tune from production, int8, gate, register, report."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_edgekit
from train.data import load_dataset
from train.gate import GateRules
from train.registry import Registry
from train.retrain import RetrainOptions, retrain
from train.splits import make_split

SPEC = {"name": "tiny", "input_shape": [16, 16, 3],
        "layers": [{"type": "conv", "filters": 4, "kernel": 3, "activation": "relu"},
                   {"type": "maxpool"}, {"type": "flatten"}]}


@pytest.mark.slow
def test_retrain_fine_tunes_gates_registers_and_reports(tmp_path):
    from convert.pipeline import ConvertOptions, convert
    from train.training import TrainConfig, train

    data = tmp_path / "data.npz"
    dataset = load_dataset("synthetic:n=240,size=16x16")
    dataset.save(data)
    split = tmp_path / "split.json"
    make_split(dataset).save(split)
    (tmp_path / "tiny.json").write_text(json.dumps(SPEC))
    first = tmp_path / "runs" / "first"
    train(TrainConfig(dataset=str(data), split_file=str(split), model=str(tmp_path / "tiny.json"),
                      out=str(first), epochs=1, verbose=0))
    # one epoch of a 4-filter model may never find a class: the absolute gate would refuse it, so force it
    # (this test is about the retrain plumbing; tests/test_loop_gate.py tests the gate)
    convert(ConvertOptions(source=first, modes=["int8"], out=first / "bundle", name="signals", version="v0001",
                           max_drop=100, max_class_drop=100, latency_runs=5, rep_size=50, force=True))
    models = tmp_path / "models"
    run_edgekit("models", "--registry", str(models), "register", str(first / "bundle"), "--name", "signals",
                "--run", str(first), "--promote", check=True)

    # a gate no candidate can pass (it would have to gain 100 points): registered, not promoted
    result = retrain(RetrainOptions(data=str(data), split_file=str(split), registry=str(models),
                                    out=str(tmp_path / "runs" / "second"), epochs=1,
                                    max_convert_drop=100, max_convert_class_drop=100,
                                    rules=GateRules(max_drop=-100, critical=["red"], force=True)))
    registry = Registry(models)
    assert result.version == "v0002" and not result.promoted and not result.decision.promote
    # the whole recipe came from the parent's run.json; the one option given overrode one field
    run = json.loads((tmp_path / "runs" / "second" / "run.json").read_text())
    parent = json.loads((first / "run.json").read_text())["config"]
    assert run["inherited"]["overridden"] == ["epochs"] and run["inherited"]["parent_config"] == parent
    for key in ("batch_size", "optimizer", "lr_schedule", "label_smoothing", "class_weights", "augment", "image_size"):
        assert run["config"][key] == parent[key], key
    assert run["config"]["learning_rate"] == pytest.approx(parent["learning_rate"] * 0.3)
    assert registry.production("signals").version == "v0001"
    entry = registry.get("signals", "v0002")
    assert entry.parent == "v0001" and entry.lineage["fine_tuned"] is True
    assert entry.metrics["gate"]["promote"] is False
    val = entry.metrics["evaluations"]["val"]
    assert val["candidate"]["images"] == val["production"]["images"] > 0  # same split for both
    report = result.report.read_text()
    assert "REJECTED" in report and "| red |" in report
    assert (result.report.parent / "val.png").stat().st_size > 1000

    # the cron command: pull, auto-label the confident ones, ingest; too few new samples -> no retrain, exit 0
    from tests.loop_store import make_store

    car = make_store(tmp_path / "car-samples", n=6)  # confidences 0.5 .. 0.917, 16x16 frames
    log = tmp_path / "cycle.jsonl"
    out = run_edgekit("cycle", "--pull", str(car), "--store", str(tmp_path / "field"), "--data", str(data),
                      "--split", str(split), "--auto-label", "0.8", "--min-new", "50", "--registry", str(models),
                      "--log", str(log), check=True)
    assert "2 auto-accepted" in out.stdout and "4 wait for a person" in out.stdout
    assert "ingest: 2 new samples" in out.stdout and "retrain: skipped" in out.stdout
    assert json.loads(log.read_text())["ingested"] == 2
