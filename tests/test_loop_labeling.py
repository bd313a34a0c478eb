"""Labeling: decisions DB with undo, folder export/import, web API and its file-serving fence."""

from __future__ import annotations

import shutil

import pytest

from edge.errors import UserError
from tests.conftest import run_edgekit
from tests.loop_store import make_store
from train.labeling.decisions import LabelDB
from train.labeling.folders import import_folders
from train.labeling.samples import open_samples
from train.labeling.web import create_app


def test_decisions_commit_and_undo(tmp_path):
    db = LabelDB(tmp_path / "labels.db")
    db.decide("a", "red")
    db.decide("b", None, discard=True)
    db.decide("a", "green")  # changed mind
    assert {k: (d.label, d.discarded) for k, d in LabelDB(tmp_path / "labels.db").all().items()} == {
        "a": ("green", False), "b": (None, True)}
    assert db.undo() == "a" and db.get("a").label == "red"
    assert db.undo() == "b" and db.get("b") is None
    assert db.undo() == "a" and db.get("a") is None
    assert db.undo() is None
    assert db.labeled() == {}


def test_export_sort_import_via_cli(tmp_path):
    store = make_store(tmp_path / "store", n=6)
    out = tmp_path / "sort"
    result = run_edgekit("label", "export", str(store), "--out", str(out), check=True)
    assert "exported 6 samples" in result.stdout
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [
        "_unsure", "discard", "green", "none", "red", "yellow"]
    assert sorted(p.name for p in (out / "green").iterdir()) == ["s0__000000.png", "s0__000004.png"]
    # the person: one green is really red, one "none" is junk, the rest is fine
    shutil.move(out / "green" / "s0__000000.png", out / "red" / "s0__000000.png")
    shutil.move(out / "none" / "s1__000001.png", out / "discard" / "s1__000001.png")
    (out / "red" / "notes.txt").write_text("not a sample")
    result = run_edgekit("label", "import", str(out), check=True)
    assert "4 confirmed, 1 relabeled, 1 discarded" in result.stdout
    assert "not exported by edgekit" in result.stdout
    decisions = LabelDB(store / "labels.db").all()
    assert decisions["images/s0/000000.png"].label == "red"
    assert decisions["images/s1/000001.png"].discarded
    assert decisions["images/s0/000004.png"].label == "green"
    # a second export holds only what is still undecided: nothing
    assert "exported 0 samples" in run_edgekit("label", "export", str(store), "--out",
                                                str(tmp_path / "again"), check=True).stdout
    status = run_edgekit("label", "status", str(store), check=True).stdout
    assert "6 decided (1 discarded), 0 undecided" in status


def test_import_rejects_unknown_folders_and_moved_only(tmp_path):
    store = make_store(tmp_path / "store", n=4)
    out = tmp_path / "sort"
    run_edgekit("label", "export", str(store), "--out", str(out), check=True)
    (out / "purple").mkdir()
    with pytest.raises(UserError, match="not classes: purple"):
        import_folders(out)
    assert LabelDB(store / "labels.db").all() == {}  # nothing imported
    (out / "purple").rmdir()
    shutil.move(out / "red" / "s0__000002.png", out / "yellow" / "s0__000002.png")
    report = import_folders(out, moved_only=True)
    assert (report.relabeled, report.confirmed) == (1, 0)
    assert set(LabelDB(store / "labels.db").all()) == {"images/s0/000002.png"}
    bad = run_edgekit("label", "import", str(tmp_path))
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and ".edgekit-export.json" in bad.stderr


def test_auto_accepts_confident_or_truth(tmp_path):
    store = make_store(tmp_path / "store", n=6)  # confidences 0.5 .. 0.917
    out = run_edgekit("label", "auto", str(store), "--min-confidence", "0.8", check=True).stdout
    assert "auto-labeled 2 samples; 4 left for a person" in out
    run_edgekit("label", "auto", str(store), "--from-truth", check=True)
    decisions = LabelDB(store / "labels.db").all()
    assert decisions["images/s1/000005.png"].source == "auto"
    assert decisions["images/s0/000000.png"].label == "none" and decisions["images/s0/000000.png"].source == "truth"


def test_web_api_saves_and_serves_only_store_images(tmp_path):
    store = make_store(tmp_path / "store", n=3)
    (tmp_path / "secret.txt").write_text("secret")
    app = create_app(open_samples(store))
    client = app.test_client()
    state = client.get("/api/state").get_json()
    assert state["keyed"] == ["green", "none", "red", "yellow"] and len(state["samples"]) == 3
    first = state["samples"][0]
    image = client.get(first["image"])
    assert image.status_code == 200 and image.data[:4] == b"\x89PNG"
    for url in ["/files/../secret.txt", "/files/%2e%2e/secret.txt", "/files/images/../../secret.txt",
                "/files//etc/passwd", "/files/%2Fetc%2Fpasswd", "/files/samples.db", "/files/labels.db",
                "/files/images/s0/nope.png"]:
        assert client.get(url).status_code in (400, 404), url
    assert client.post("/api/decide", json={"id": first["id"], "label": "purple"}).status_code == 400
    assert client.post("/api/decide", json={"id": "../x", "label": "red"}).status_code == 404
    assert client.post("/api/decide", json={"id": first["id"], "label": "red"}).status_code == 200
    assert LabelDB(store / "labels.db").get(first["id"]).label == "red"
    assert client.post("/api/undo").get_json() == {"id": first["id"], "decision": None}
