"""`edgekit demo --quick`: every step of the loop runs, and the car's runtime swaps models mid-drive."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from tests.conftest import run_edgekit


@pytest.mark.slow
def test_quick_demo_runs_every_step_and_hot_swaps(tmp_path):
    out = tmp_path / "demo"
    result = run_edgekit("demo", "--quick", "--out", str(out), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if re.match(r"\[\s*\d+/\d+\]", line)]
    steps = ["dataset", "split", "audit", "train", "convert", "bundle", "register", "deploy", "drive", "pull",
             "label", "ingest", "retrain", "gate", "promote", "hot-swap", "compare", "report"]
    assert [line.split("]", 1)[1].split()[0] for line in lines] == steps
    assert "PASSED" in lines[steps.index("gate")]

    # the swap, from the runtime's own JSON lines: one process, v0001 then v0002, every frame once
    records = [json.loads(line) for line in (out / "car" / "logs" / "swap.jsonl").read_text().splitlines()]
    versions = [r["model_version"] for r in records]
    assert versions[0] == "signals:v0001" and versions[-1] == "signals:v0002"
    switch = versions.index("signals:v0002")
    assert set(versions[:switch]) == {"signals:v0001"} and set(versions[switch:]) == {"signals:v0002"}
    assert [r["frame"] for r in records] == list(range(len(records)))
    assert "model swapped: signals:v0001 -> signals:v0002" in (out / "car" / "logs" / "swap.log").read_text()
    assert (out / "car" / "current").resolve().name == "v0002"

    # the loop's products exist and the summary names them
    assert (out / "models" / "signals" / "production").read_text().strip() == "v0002"
    assert (out / "runs" / "v0002" / "report" / "report.md").is_file()
    assert (out / "drive.png").stat().st_size > 1000 and (out / "runs" / "v0001" / "curves.png").is_file()
    assert "before/after on the same" in result.stdout and "reports and pictures in" in result.stdout
    assert json.loads((out / "demo.json").read_text())["status"] == "done"

    # both releases' golden inputs span the classes with unsaturated outputs, so another model of
    # the same shape under a re-hashed manifest fails verify (issue 14 item 3)
    from edge.bundle import BundleError, open_bundle, verify_bundle
    from tests.faults.test_bundle import rehash

    for release in ("v0001", "v0002"):
        selection = open_bundle(out / "car" / "releases" / release).manifest["golden"]["selection"]
        assert len(selection["predicted_classes"]) >= 3 and selection["saturated"] == 0, selection
    swapped = tmp_path / "swapped"
    shutil.copytree(out / "car" / "releases" / "v0002", swapped)
    (swapped / ".accepted-digest").unlink()
    shutil.copy(out / "car" / "releases" / "v0001" / "model.tflite", swapped / "model.tflite")
    rehash(swapped)
    with pytest.raises(BundleError, match="self-test failed"):
        verify_bundle(swapped)

    # a second run starts clean; a folder that is not a demo is refused, untouched
    other = tmp_path / "mine"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    refused = run_edgekit("demo", "--quick", "--out", str(other))
    assert refused.returncode != 0 and "not a demo folder" in refused.stderr
    assert (other / "keep.txt").read_text() == "mine"


def test_demo_folder_starts_clean_and_never_clears_a_foreign_folder(tmp_path):
    from edge.errors import UserError
    from train.commands.demo import MARKER, _start_clean

    previous = tmp_path / "demo"
    (previous / "car").mkdir(parents=True)
    (previous / MARKER).write_text("{}")
    assert "starting clean" in _start_clean(previous) and not previous.exists()
    assert _start_clean(tmp_path / "new") == "new folder"
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "a.jpg").write_bytes(b"x")
    with pytest.raises(UserError, match="not a demo folder"):
        _start_clean(foreign)
    assert (foreign / "a.jpg").exists()


def test_log_session_names_the_run_and_refuses_path_like_names(tmp_path):
    from types import SimpleNamespace

    from edge.errors import UserError
    from edge.samplelog.options import from_options
    from edge.samplelog.store import SampleStore

    context = SimpleNamespace(loaded=SimpleNamespace(labels=["green", "red"], version="m:v1", spec=None, bundle=None))
    logger = from_options({"dir": str(tmp_path / "s"), "random": "1", "session": "drive-1"}, context)
    assert logger.session_id == "drive-1"
    logger.shutdown()
    with SampleStore(tmp_path / "s", readonly=True) as store:
        assert [s["session_id"] for s in store.sessions()] == ["drive-1"]
    for bad in ("../x", "/abs", "a b"):
        with pytest.raises(UserError, match="not a plain name"):
            from_options({"dir": str(tmp_path / "t"), "random": "1", "session": bad}, context)
