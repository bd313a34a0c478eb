"""Group-hash splits, stability as data grows, stratification, and the leakage audit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge.errors import UserError
from tests.conftest import run_edgekit
from train.audit import audit, dhash, near_pairs
from train.data import Dataset, load_dataset
from train.splits import class_weights, imbalance_warnings, load_split, make_split, newest_groups


@pytest.fixture(scope="module")
def scenes() -> Dataset:
    return load_dataset("synthetic:n=2000,frames=20,seed=0")


def _sets(split, ds):
    return {k: set(ds.groups[v].tolist()) for k, v in split.indices(ds).items()}


def test_groups_never_span_splits_and_assignment_is_deterministic(scenes, tmp_path):
    split = make_split(scenes)
    groups = _sets(split, scenes)
    assert not (groups["train"] & groups["val"]) and not (groups["train"] & groups["test"])
    assert sum(len(v) for v in split.indices(scenes).values()) == len(scenes)
    again = load_split(split.save(tmp_path / "s.json"))
    assert again.assignments == make_split(scenes).assignments == split.assignments
    assert make_split(scenes, salt="other").assignments != split.assignments


def test_adding_groups_never_moves_old_ones(scenes):
    bigger = load_dataset("synthetic:n=5000,frames=20,seed=0")  # the first 2000 images are the same scenes
    old, new = make_split(scenes), make_split(bigger)
    assert all(new.assignments[g] == s for g, s in old.assignments.items())
    fresh = newest_groups(bigger, old, 10)
    updated = make_split(bigger, previous=old, fresh_test=fresh)
    assert all(updated.assignments[g] == s for g, s in old.assignments.items())
    assert sorted(g for g, s in updated.assignments.items() if s == "fresh_test") == sorted(fresh)
    assert fresh == sorted(set(bigger.groups.tolist()))[-10:]  # the newest scenes


def test_stratified_by_class(scenes):
    """balanced: exact per-class fractions; hash: per-class fractions in expectation (many groups)."""
    many_groups = load_dataset("synthetic:n=2000,frames=2,seed=0")
    for ds, method, tolerance in ((scenes, "balanced", 0.02), (many_groups, "hash", 0.08)):
        counts = make_split(ds, method=method).counts(ds)
        for k in range(len(ds.class_names)):
            total = sum(counts[s][k] for s in ("train", "val", "test"))
            assert counts["train"][k] / total == pytest.approx(0.7, abs=tolerance), (method, counts)
            assert counts["val"][k] > 0 and counts["test"][k] > 0


def test_keep_given_subsets():
    ds = load_dataset("synthetic:n=400,frames=1,seed=4")
    ds.subsets = np.where(np.arange(len(ds)) < 300, "train", "test")
    split = make_split(ds, keep_subsets=True)
    idx = split.indices(ds)
    assert set(idx["test"].tolist()) == set(range(300, 400))
    assert len(idx["val"]) > 20 and set(idx["train"].tolist()) | set(idx["val"].tolist()) == set(range(300))


def test_class_weights_and_imbalance_warning():
    labels = np.array([0] * 100 + [1] * 10 + [2] * 50)
    weights = class_weights(labels, 3)
    assert weights[1] == pytest.approx(160 / 30) and weights[0] < weights[2] < weights[1]
    warnings = imbalance_warnings(np.bincount(labels).tolist(), ["a", "b", "c"])
    assert len(warnings) == 1 and "'b'" in warnings[0]
    with pytest.raises(UserError):
        make_split(load_dataset("synthetic:n=20"), (0.5, 0.5, 0.5))


def test_near_pairs_matches_brute_force():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2**63, 500, dtype=np.uint64)
    b = rng.integers(0, 2**63, 700, dtype=np.uint64)
    b[:40] = a[:40] ^ np.uint64(0b10110)  # distance 3
    b[40:50] = a[50:60]  # distance 0
    for threshold in (0, 3, 5):
        i, j, d = near_pairs(a, b, threshold)
        brute = np.argwhere(np.bitwise_count(a[:, None] ^ b[None, :]) <= threshold)
        assert set(zip(i.tolist(), j.tolist(), strict=True)) == set(map(tuple, brute.tolist()))
        assert (d <= threshold).all()


def test_audit_flags_frame_shuffling_but_not_group_splits(scenes):
    """The chapter's 10,000 photos of 100 pets: shuffled frames leak, grouped scenes do not."""
    hashes = dhash(scenes.images)
    grouped = audit(scenes.images, make_split(scenes).indices(scenes), hashes=hashes)
    order = np.random.default_rng(0).permutation(len(scenes))
    shuffled = audit(scenes.images, dict(zip(("train", "val", "test"), np.split(order, [1400, 1700]), strict=True)),
                     hashes=hashes)
    assert shuffled.leaked("train~test") > 0.5 * 300  # most test frames have a near-copy in train
    assert grouped.total <= 5 and grouped.total * 20 < shuffled.total


def _pairs_with_labels() -> tuple[np.ndarray, np.ndarray]:
    """Six distinct images; image 3 copies image 0 (same label), image 4 copies image 1 (another label)."""
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)
    images[3], images[4] = images[0], images[1]
    return images, np.array([0, 1, 0, 0, 2, 1])


def test_audit_wording_is_the_same_whichever_order_the_splits_come_in():
    """Issue 13.7: "N *train* samples have a near-copy in test" in one mode, "*test* ... in train" in the other."""
    images, labels = _pairs_with_labels()
    train, test = np.array([0, 1, 2]), np.array([3, 4, 5])
    given = audit(images, {"test": test, "train": train}, labels=labels)  # an archive's sorted subsets
    split = audit(images, {"train": train, "val": np.zeros(0, int), "test": test}, labels=labels)
    for report in (given, split):
        assert list(report.pairs) == ["train~test"] and report.leaked("train~test") == 2
        assert "2 of 3 test samples (66.7%) have a near-copy in train" in report.format()


def test_audit_shows_both_labels_and_counts_pairs_whose_labels_differ():
    """Issue 13.7: a green and a yellow arrow at distance 2 were flagged without a word about their labels."""
    images, labels = _pairs_with_labels()
    report = audit(images, {"train": np.array([0, 1, 2]), "test": np.array([3, 4, 5])}, labels=labels)
    assert report.cross_label("train~test") == 1 and report.to_dict()["cross_label_pairs"] == {"train~test": 1}
    text = report.format(np.array([f"img{i}" for i in range(6)]), class_names=["green", "yellow", "red"])
    assert "1 of the pairs have different labels" in text
    assert "img1 [yellow]  ~  img4 [red]  (labels differ)" in text
    assert "img0 [green]  ~  img3 [green]\n" in text + "\n"


def test_split_and_audit_commands(tmp_path):
    data = tmp_path / "d.npz"
    run_edgekit("dataset", "build", "--source", "synthetic:n=400,frames=20", "--out", str(data), check=True)
    result = run_edgekit("split", str(data), "--out", str(tmp_path / "s.json"), check=True)
    assert "train" in result.stdout and "class weights" in result.stdout
    assert json.loads((tmp_path / "s.json").read_text())["info"]["dataset_sha256"]
    result = run_edgekit("audit", str(data), "--split", str(tmp_path / "s.json"), "--pairs", str(tmp_path / "p.csv"))
    assert result.returncode == 0 and "train~test" in result.stdout


@pytest.mark.parametrize("args, message", [
    (("split", "/no/such/data.npz", "--out", "x.json"), "not found"),
    (("split", "synthetic:n=40", "--out", "x.json", "--fractions", "0.9,0.9"), "three numbers"),
    (("audit", "synthetic:n=40"), "no given subsets"),
    (("dataset", "build", "--source", "synthetic:bogus=1", "--out", "x.npz"), "synthetic option"),
    (("dataset", "info", "/no/such/folder"), "not found"),
])
def test_user_mistakes_are_one_line_errors(args, message, tmp_path):
    result = run_edgekit(*args, cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_option_is_a_usage_error_not_a_traceback(tmp_path):
    result = run_edgekit("split", "synthetic", "--out", "x.json", "--method", "random", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr and "invalid choice" in result.stderr


def test_host_command_in_device_env_names_the_extra(tmp_path):
    from edge.cli import discover_commands
    from tests.conftest import DEVICE_PYTHON

    if not DEVICE_PYTHON.exists():
        pytest.skip("the device-only venv (.venv-device) was not built; run `make device-env`")
    needs_tf = [name for name, module in discover_commands().items() if "tensorflow" in getattr(module, "NEEDS", ())]
    if "train" not in needs_tf:
        pytest.skip("no host command declares NEEDS=('tensorflow',) yet")
    result = run_edgekit("train", "synthetic:n=40", "--out", str(tmp_path / "run"), python=DEVICE_PYTHON)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "host extra" in result.stderr and "Traceback" not in result.stderr
