"""Training runs: the run folder, repeatability, NaN and Ctrl-C handling, fine-tuning, predict, activations."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from train.data import Dataset
from train.training import TrainConfig, train
from train.training.analysis import diagnose

CLASSES = ["red", "green", "blue"]
TINY_SPEC = {"name": "tiny", "layers": [{"type": "conv", "filters": 4, "padding": "same"}, {"type": "maxpool"},
                                        {"type": "flatten"}, {"type": "dense", "units": 8}]}


def tiny_dataset(n: int = 96, size: int = 12, seed: int = 0) -> Dataset:
    """Images whose dominant colour channel is the class, with given train/test subsets."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    images = rng.integers(0, 90, (n, size, size, 3)).astype(np.uint8)
    for index, label in enumerate(labels):
        images[index, :, :, label] += 150
    subsets = np.where(np.arange(n) < n * 3 // 4, "train", "test")
    return Dataset(images, labels, CLASSES, groups=np.arange(n).astype(str), sources=np.arange(n).astype(str),
                   subsets=subsets, name="tiny")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("training")
    tiny_dataset().save(root / "tiny.npz")
    (root / "tiny.json").write_text(json.dumps(TINY_SPEC))
    return root


def config(workdir: Path, out: str, **more) -> TrainConfig:
    base = dict(dataset=str(workdir / "tiny.npz"), model=str(workdir / "tiny.json"), out=str(workdir / out),
                epochs=2, batch_size=16, verbose=0)
    return TrainConfig(**{**base, **more})


@pytest.fixture(scope="module")
def cli_run(workdir) -> tuple[Path, str]:
    from tests.conftest import run_edgekit

    out = workdir / "cli-run"
    result = run_edgekit("train", str(workdir / "tiny.npz"), "--model", str(workdir / "tiny.json"),
                         "--epochs", "3", "--batch-size", "16", "--lr", "0.01", "--patience", "5",
                         "--augment", '{"horizontal_flip": true}', "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out, result.stdout


def test_train_cli_writes_the_whole_run_folder(cli_run):
    out, stdout = cli_run
    for name in ("model.keras", "spec.json", "history.json", "history.csv", "summary.json", "curves.png", "run.json"):
        assert (out / name).is_file(), name
    for line in ("Training time:", "Min Loss:", "Min Validation Loss:", "Max Accuracy:", "Max Validation Accuracy:",
                 "Total params:", "Fit:"):
        assert line in stdout
    summary = json.loads((out / "summary.json").read_text())
    history = json.loads((out / "history.json").read_text())
    assert summary["min_val_loss"] == min(history["val_loss"]) and len(history["loss"]) == 3
    assert summary["diagnosis"]["verdict"] in ("underfitting", "overfitting", "good fit")
    run = json.loads((out / "run.json").read_text())
    assert run["class_names"] == CLASSES and run["preprocess"]["input_size"] == [12, 12]
    assert len(run["dataset_sha256"]) == 64 and run["seed"] == 1 and run["parent_model"] is None
    assert run["config"]["augment"]["horizontal_flip"] is True
    assert (out / "history.csv").read_text().splitlines()[0].startswith("epoch,")
    assert cv2.imread(str(out / "curves.png")) is not None


@pytest.mark.slow
def test_same_seed_same_figures(workdir):
    same = dict(epochs=1, augment={"horizontal_flip": True, "rotation_range": 10})
    first = train(config(workdir, "seed-a", seed=7, **same))
    again = train(config(workdir, "seed-b", seed=7, **same))
    other = train(config(workdir, "seed-c", seed=8, **same))
    assert first.history == again.history
    assert first.history != other.history


class _Poison:
    """A Keras callback that makes the loss NaN from the second epoch on."""

    def __new__(cls):
        import keras

        class Poison(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                if epoch == 1:
                    kernel = self.model.get_layer("logits").kernel
                    kernel.assign(np.full(kernel.shape, np.nan, np.float32))

        return Poison()


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(workdir):
    result = train(config(workdir, "nan", epochs=4), callbacks=[_Poison()])
    assert result.status == "nan"
    assert "NaN at epoch 2" in result.message and "last good checkpoint" in result.message
    assert result.model_path.exists() and len(result.history["loss"]) == 2
    import keras

    kept = keras.models.load_model(result.model_path)
    assert np.isfinite(kept.get_layer("logits").kernel.numpy()).all()
    assert json.loads((result.out / "summary.json").read_text())["status"] == "nan"


def test_checkpoint_keeps_the_lowest_val_loss_or_the_last_finite_epoch(tmp_path):
    from train.training.callbacks import Checkpoint

    class EpochWriter:  # stands in for the model: save() writes which epoch it was
        epoch = -1

        def save(self, path):
            Path(path).write_text(str(self.epoch))

    for keep, kept_epoch in (("best", "1"), ("last", "2")):
        writer, checkpoint = EpochWriter(), Checkpoint(tmp_path / f"{keep}.keras", keep)
        checkpoint.set_model(writer)
        for epoch, val_loss in enumerate([1.0, 0.5, 0.8, float("nan")]):
            writer.epoch = epoch
            checkpoint.on_epoch_end(epoch, {"val_loss": val_loss})
        assert (tmp_path / f"{keep}.keras").read_text() == kept_epoch, keep


def test_a_last_checkpoint_run_keeps_and_reports_its_last_epoch(workdir):
    result = train(config(workdir, "last", epochs=3, checkpoint="last"))
    assert result.summary["checkpoint"] == "last" and result.summary["kept_epoch"] == 3
    assert json.loads((result.out / "run.json").read_text())["config"]["checkpoint"] == "last"


def test_ctrl_c_stops_cleanly_keeping_the_best_model(workdir):
    import keras

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    result = train(config(workdir, "interrupted", epochs=4), callbacks=[Interrupt()])
    assert result.status == "interrupted" and "best model so far" in result.message
    assert result.model_path.exists() and len(result.history["loss"]) == 1
    assert (result.out / "run.json").exists()


def test_fine_tune_from_an_earlier_model(workdir, cli_run):
    parent = cli_run[0] / "model.keras"
    result = train(config(workdir, "fine-tuned", epochs=1, init_model=str(parent), learning_rate=1e-4))
    run = json.loads((result.out / "run.json").read_text())
    assert run["parent_model"] == str(parent) and result.status == "completed"
    assert result.summary["max_val_accuracy"] >= 0.5  # starts from a trained model, not from scratch


def test_diagnosis_on_synthetic_histories():
    under = diagnose({"loss": [2.3, 2.29, 2.29, 2.28], "accuracy": [0.1, 0.11, 0.11, 0.11],
                      "val_loss": [2.3, 2.3, 2.3, 2.3], "val_accuracy": [0.1] * 4})
    assert under["verdict"] == "underfitting" and "flat" in under["detail"]
    over = diagnose({"loss": [1.5, 0.9, 0.5, 0.3, 0.1], "accuracy": [0.5, 0.7, 0.85, 0.9, 0.97],
                     "val_loss": [1.2, 1.0, 1.1, 1.3, 1.6], "val_accuracy": [0.6, 0.65, 0.64, 0.63, 0.62]})
    assert over["verdict"] == "overfitting" and over["best_epoch"] == 2 and "epoch 2" in over["detail"]
    good = diagnose({"loss": [1.5, 0.9, 0.6], "accuracy": [0.5, 0.75, 0.85],
                     "val_loss": [1.2, 0.9, 0.7], "val_accuracy": [0.6, 0.72, 0.8]})
    assert good["verdict"] == "good fit" and good["best_epoch"] == 3


def _main(capsys, *args: str) -> tuple[int, str, str]:
    """The CLI in this process (cheaper than a subprocess: TensorFlow is already imported)."""
    from edge.cli import main

    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_predict_prints_label_confidence_and_top_k(cli_run, tmp_path, capsys):
    images = tiny_dataset(n=3, seed=5).images
    paths = []
    for index, image in enumerate(images):
        path = tmp_path / f"img{index}.png"
        cv2.imwrite(str(path), cv2.cvtColor(np.kron(image, np.ones((4, 4, 1), np.uint8)), cv2.COLOR_RGB2BGR))
        paths.append(str(path))
    code, out, err = _main(capsys, "predict", str(cli_run[0]), *paths, "--top-k", "2", "--json")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert len(rows) == 3
    for row in rows:
        assert row["label"] in CLASSES and len(row["top_k"]) == 2
        assert row["confidence"] == row["top_k"][0]["probability"] >= row["top_k"][1]["probability"]
    code, out, err = _main(capsys, "predict", str(cli_run[0]), str(tmp_path / "missing.png"))
    assert code == 1 and "cannot read image" in err and "Traceback" not in err


def test_activations_png_per_layer(cli_run, workdir, tmp_path, capsys):
    out = tmp_path / "acts"
    code, _, err = _main(capsys, "activations", str(cli_run[0]), str(workdir / "tiny.npz"), "-k", "4", "--out", str(out))
    assert code == 0, err
    assert sorted(p.name for p in out.glob("*.png")) == ["conv2d_1.png", "max_pooling2d_1.png"]
    grid = cv2.imread(str(out / "conv2d_1.png"))
    assert grid is not None and grid.shape[1] > grid.shape[0]  # 4 images x 4 channels of 12x12
    code, _, err = _main(capsys, "activations", str(cli_run[0]), str(workdir / "tiny.npz"), "--layers", "nope",
                         "--out", str(out))
    assert code == 1 and "no layer named" in err


@pytest.mark.slow
def test_predict_with_a_tflite_bundle_agrees_with_keras(cli_run, tmp_path, cli):
    images = tiny_dataset(n=2, seed=6).images
    paths = []
    for index, image in enumerate(images):
        path = tmp_path / f"img{index}.png"
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        paths.append(str(path))
    bundle = tmp_path / "bundle"
    converted = cli("convert", str(cli_run[0]), "--mode", "float32", "--no-gate", "--split", "test",
                    "--out", str(bundle))
    assert converted.returncode == 0, converted.stderr
    from_bundle = cli("predict", str(bundle), *paths, "--json")
    from_keras = cli("predict", str(cli_run[0]), *paths, "--json")  # both as the user runs them
    assert from_bundle.returncode == 0, from_bundle.stderr
    rows_b = [json.loads(line) for line in from_bundle.stdout.splitlines() if line.startswith("{")]
    rows_k = [json.loads(line) for line in from_keras.stdout.splitlines() if line.startswith("{")]
    assert [r["label"] for r in rows_b] == [r["label"] for r in rows_k]
    assert all(abs(b["confidence"] - k["confidence"]) < 1e-3 for b, k in zip(rows_b, rows_k, strict=True))
