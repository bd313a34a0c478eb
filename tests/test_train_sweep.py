"""Sweeps: mean ± std tables with the "within noise" mark, resumable runs, --repeat."""

from __future__ import annotations

import json

import pytest

from tests.test_train_training import TINY_SPEC, tiny_dataset
from train.training.sweep import run_sweep, sweep_table, write_sweep


def _summary(val_acc: float, seconds: float = 1.0) -> dict:
    return {"training_time_s": seconds, "min_loss": 1.0, "min_val_loss": 1.2, "max_accuracy": 0.7,
            "max_val_accuracy": val_acc, "total_params": 1000}


def test_table_marks_differences_within_noise():
    markdown, table = sweep_table([
        ("baseline", [_summary(0.60), _summary(0.62), _summary(0.61)]),
        ("close", [_summary(0.605), _summary(0.615), _summary(0.625)]),
        ("better", [_summary(0.70), _summary(0.71), _summary(0.72)]),
    ])
    rows = {row["model"]: row for row in table["rows"]}
    assert rows["baseline"]["max_val_accuracy"]["mean"] == 0.61
    assert abs(rows["baseline"]["max_val_accuracy"]["std"] - 0.01) < 1e-9
    assert rows["close"]["within_noise"]["max_val_accuracy"] is True
    assert rows["better"]["within_noise"]["max_val_accuracy"] is False
    assert "0.6100 ± 0.0100" in markdown and "| close | 3 |" in markdown and "≈" in markdown
    assert "1,000" in markdown


@pytest.mark.slow
def test_sweep_runs_every_model_and_seed_then_resumes(tmp_path):
    (tmp_path / "tiny.json").write_text(json.dumps(TINY_SPEC))
    wide = {**TINY_SPEC, "name": "wide", "layers": [{**TINY_SPEC["layers"][0], "filters": 8}, *TINY_SPEC["layers"][1:]]}
    (tmp_path / "wide.json").write_text(json.dumps(wide))
    models = [str(tmp_path / "tiny.json"), str(tmp_path / "wide.json")]
    base = dict(dataset="tiny", epochs=1, batch_size=32, verbose=0, deterministic=False)
    seen = []
    results = run_sweep(models, [1, 2], base, tmp_path / "sweep", dataset=tiny_dataset(n=48),
                        on_result=lambda model, seed, summary: seen.append((model, seed)))
    assert len(seen) == 4 and set(results) == {"tiny", "wide"}
    assert (tmp_path / "sweep" / "wide" / "seed-2" / "model.keras").exists()
    md_path, json_path = write_sweep(results, tmp_path / "sweep")
    table = json.loads(json_path.read_text())
    assert [row["model"] for row in table["rows"]] == ["tiny", "wide"]
    assert table["rows"][1]["total_params"]["mean"] > table["rows"][0]["total_params"]["mean"]

    def must_not_train(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    again = run_sweep(models, [1, 2], base, tmp_path / "sweep", train_fn=must_not_train, dataset=tiny_dataset(n=48))
    assert again == results


def test_train_repeat_reports_mean_and_std(tmp_path, capsys):
    from edge.cli import main

    tiny_dataset(n=48).save(tmp_path / "tiny.npz")
    (tmp_path / "tiny.json").write_text(json.dumps(TINY_SPEC))
    code = main(["train", str(tmp_path / "tiny.npz"), "--model", str(tmp_path / "tiny.json"), "--epochs", "1",
                 "--repeat", "2", "--quiet", "--no-deterministic", "--out", str(tmp_path / "rep")])
    assert code == 0
    table = json.loads((tmp_path / "rep" / "repeat.json").read_text())
    assert table["rows"][0]["seeds"] == 2 and table["rows"][0]["max_val_accuracy"]["n"] == 2
    assert (tmp_path / "rep" / "seed-1" / "model.keras").exists() and (tmp_path / "rep" / "seed-2" / "model.keras").exists()
    assert "±" in capsys.readouterr().out


def test_presets_command_lists_counts_and_bad_specs_fail_before_training(tmp_path, capsys):
    from edge.cli import main

    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "two-maxpool" in out and "105,154" in out and "car-small" in out
    (tmp_path / "bad.json").write_text(json.dumps({"layers": [{"type": "transformer"}]}))
    tiny_dataset(n=12).save(tmp_path / "tiny.npz")
    code = main(["train", str(tmp_path / "tiny.npz"), "--model", str(tmp_path / "bad.json"), "--out", str(tmp_path / "r")])
    assert code == 1 and "unknown layer type 'transformer'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
