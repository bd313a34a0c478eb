"""Fault replays: a car's store is untrusted on the workstation (issue 14, items 1 and 6).

A tampered store (rows with `..`, absolute paths, links out, odd types) must not make
`pull` write outside DEST or copy host files in; the bad rows are refused and counted,
the good ones all arrive. Stores on read-only media can be read.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from edge.digest import file_sha256
from edge.errors import UserError
from edge.samplelog.imagefile import encode_image
from edge.samplelog.pull import pull
from edge.samplelog.store import SampleStore
from tests.conftest import run_edgekit
from tests.faults.stores import (
    insert_row,
    make_store,
    read_only_view,
    sample_meta,
    tamper,
    tree,
)

GOOD = 4
PTH = b"import os; open(os.path.expanduser('~/pwned'), 'w')\n"


@pytest.fixture
def site(tmp_path):
    """A car store with GOOD samples, a host secret beside it, and an empty folder `outside`."""
    car = make_store(tmp_path / "car", GOOD)
    secret = tmp_path / "host-secret.txt"
    secret.write_text("the workstation's secret\n")
    (tmp_path / "outside").mkdir()
    return tmp_path, car, secret


def plant(car: Path, name: str, data: bytes, session: str = "s1") -> str:
    """Put a file in the car's images/<session>/ and return its SHA-256 (so only the path is wrong)."""
    path = car / "images" / session / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return file_sha256(path)


def pull_and_check(tmp_path: Path, car: Path, secrets: list[Path], record_property, refused: int = 1) -> dict:
    """Pull car -> tmp_path/dest; assert nothing outside DEST changed, no secret came in, good rows came."""
    dest = tmp_path / "dest"
    before = tree(tmp_path, skip=(dest, car))
    counts = pull(car, dest)
    record_property("data_lost", max(0, GOOD - counts["new"]))
    assert tree(tmp_path, skip=(dest, car)) == before, "pull wrote outside DEST"
    assert not (tmp_path / "venv").exists() and not list((tmp_path / "outside").iterdir())
    pulled = {file_sha256(p) for p in dest.rglob("*") if p.is_file() and not p.is_symlink()}
    for secret in secrets:
        assert file_sha256(secret) not in pulled, f"{secret} was copied into the store"
    assert all(not p.is_symlink() for p in dest.rglob("*"))
    assert counts["new"] == GOOD and counts["refused"] == refused, counts
    assert len(counts["refused_examples"]) == min(refused, 5)
    with SampleStore(dest, readonly=True) as store:
        assert store.check()["ok"]
        assert {r["session_id"] for r in store.rows()} == {"s1"}
    return counts


@pytest.mark.fault("pull: paths from the car")
@pytest.mark.parametrize("session", ["../../venv/lib/python3.11/site-packages", "{tmp}/outside",
                                     "s1/../../../outside", "..", ".hidden", "s1\x00x", ""])
def test_a_session_id_cannot_place_files_outside_dest(site, session, record_property):
    tmp_path, car, secret = site
    sha = plant(car, "evil.png", PTH)
    insert_row(car, session_id=session.format(tmp=tmp_path), file="images/s1/evil.png", sha256=sha,
               bytes=len(PTH))
    counts = pull_and_check(tmp_path, car, [secret], record_property)
    assert "session_id" in counts["refused_examples"][0]


@pytest.mark.fault("pull: paths from the car")
@pytest.mark.parametrize("file", ["images/s1/../../../host-secret.txt", "{tmp}/host-secret.txt", "/etc/hostname",
                                  "../host-secret.txt", "images/s1/../../../../../../../../etc/hostname",
                                  "images//s1/x.png", "images/s1/x.png/..", "samples.db"])
def test_a_file_name_cannot_copy_host_files_in(site, file, record_property):
    tmp_path, car, secret = site
    file = file.format(tmp=tmp_path)
    target = Path(file) if file.startswith("/") else car / file
    sha = file_sha256(target) if target.is_file() else "0" * 64
    insert_row(car, file=file, sha256=sha, bytes=target.stat().st_size if target.is_file() else 1)
    host = [secret] + [Path("/etc/hostname")] * Path("/etc/hostname").is_file()
    counts = pull_and_check(tmp_path, car, host, record_property)
    assert "is not images/<session>/<name>" in counts["refused_examples"][0]


@pytest.mark.fault("pull: paths from the car")
def test_a_sample_replaced_by_a_link_out_is_refused(site, record_property):
    tmp_path, car, secret = site
    link = car / "images" / "s1" / "000000009.png"
    link.symlink_to(secret)
    insert_row(car, file="images/s1/000000009.png", sha256=file_sha256(secret), bytes=secret.stat().st_size)
    counts = pull_and_check(tmp_path, car, [secret], record_property)
    assert "symbolic link" in counts["refused_examples"][0]


@pytest.mark.fault("pull: paths from the car")
def test_a_session_folder_linked_out_is_refused(site, record_property):
    tmp_path, car, secret = site
    host_folder = tmp_path / "host-photos"
    host_folder.mkdir()
    photo = host_folder / "000000001.png"
    photo.write_bytes(encode_image(np.zeros((4, 4, 3), np.uint8), sample_meta(1, "s2"), "png"))
    (car / "images" / "s2").symlink_to(host_folder)
    insert_row(car, session_id="s2", file="images/s2/000000001.png", sha256=file_sha256(photo),
               bytes=photo.stat().st_size)
    pull_and_check(tmp_path, car, [photo], record_property)


@pytest.mark.fault("pull: paths from the car")
@pytest.mark.timeout(60)
def test_a_fifo_in_place_of_a_sample_does_not_hang_pull(site, record_property):
    tmp_path, car, secret = site
    os.mkfifo(car / "images" / "s1" / "000000009.png")
    insert_row(car, file="images/s1/000000009.png", sha256="1" * 64, bytes=10)
    counts = pull_and_check(tmp_path, car, [secret], record_property)
    assert "not a regular file" in counts["refused_examples"][0]


BAD_FIELDS = {
    "frame_index as text": {"frame_index": "abc"},
    "negative frame_index": {"frame_index": -5},
    "capture_time as text": {"capture_time": "yesterday"},
    "confidence above 1": {"confidence": 5.0},
    "confidence as blob": {"confidence": b"\x00\x01"},
    "label with a path": {"label": "../../etc"},
    "label with a newline": {"label": "red\nwhite"},
    "truth as bytes": {"truth": b"red"},
    "probabilities not JSON": {"probabilities": "{not json"},
    "probabilities out of range": {"probabilities": "[2, -1]"},
    "labels with a slash": {"labels": '["red", "a/b"]'},
    "roi of 3 values": {"roi": "[0, 0, 1]"},
    "reasons unknown": {"reasons": "because"},
    "priority 9": {"priority": 9},
    "sha256 not hex": {"sha256": "zz" * 32},
    "negative bytes": {"bytes": -1},
    "frame_width zero": {"frame_width": 0},
    "roi_only 7": {"roi_only": 7},
    "model_version of 10 kB": {"model_version": "v" * 10_000},
    "deeply nested labels": {"labels": "[" * 100_000 + "]" * 100_000},
}


@pytest.mark.fault("pull: field values from the car")
@pytest.mark.parametrize("case", sorted(BAD_FIELDS))
def test_a_row_with_a_bad_field_is_refused_and_counted(site, case, record_property):
    tmp_path, car, secret = site
    data = encode_image(np.full((8, 8, 3), 7, np.uint8), sample_meta(99), "png")
    sha = plant(car, "000000099.png", data)
    insert_row(car, **{"file": "images/s1/000000099.png", "sha256": sha, "bytes": len(data), "frame_index": 99,
                       **BAD_FIELDS[case]})
    pull_and_check(tmp_path, car, [secret], record_property)


@pytest.mark.fault("pull: field values from the car")
@pytest.mark.parametrize("values", [("../../x", None), ("s9", '{"red": -1}'), ("s9", '{"../x": 1}'), ("s9", "[[[")])
def test_a_bad_session_row_is_refused(site, values, record_property):
    tmp_path, car, secret = site
    tamper(car, "INSERT INTO sessions (session_id, predictions) VALUES (?, ?)", values)
    pull_and_check(tmp_path, car, [secret], record_property)
    with SampleStore(tmp_path / "dest", readonly=True) as store:
        assert [s["session_id"] for s in store.sessions()] == ["s1"]


@pytest.mark.fault("pull: field values from the car")
@pytest.mark.parametrize("session", ["../../../outside", "/etc", 7])
def test_metadata_inside_an_image_is_checked_before_reindexing(site, session, record_property):
    """A copied image whose row was not inserted (interrupted pull) is re-indexed from its embedded
    metadata: that metadata came from the car too."""
    tmp_path, car, secret = site
    dest = make_store(tmp_path / "dest", 2, session="s1")
    evil = {**sample_meta(50), "session_id": session}
    (dest / "images" / "s1" / "000000050.png").write_bytes(encode_image(np.zeros((4, 4, 3), np.uint8), evil, "png"))
    counts = pull(car, dest)
    record_property("data_lost", max(0, GOOD - 2 - counts["new"]))
    with SampleStore(dest, readonly=True) as store:
        assert {r["session_id"] for r in store.rows()} == {"s1"} and store.count() == GOOD
    assert counts["reconciled"]["reindexed"] == 0 and not list((tmp_path / "outside").iterdir())


@pytest.mark.fault("pull: archives and remote copies")
def test_a_tar_export_with_tampered_rows_is_refused_row_by_row(site, record_property):
    tmp_path, car, secret = site
    sha = plant(car, "evil.png", PTH)
    insert_row(car, session_id="../../venv/lib/python3.11/site-packages", file="images/s1/evil.png", sha256=sha,
               bytes=len(PTH))
    insert_row(car, file="/etc/hostname", sha256="2" * 64, frame_index=77)
    archive = tmp_path / "car.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(car, arcname="samples")
    shutil.rmtree(car)
    dest = tmp_path / "dest"
    result = run_edgekit("pull", str(archive), str(dest))
    assert result.returncode == 0, result.stderr
    assert "refused 2 rows: row 5: session_id" in result.stdout, result.stdout
    assert not (tmp_path / "venv").exists()
    with SampleStore(dest, readonly=True) as store:
        record_property("data_lost", max(0, GOOD - store.count()))
        assert store.count() == GOOD and store.check()["ok"]


@pytest.mark.fault("pull: archives and remote copies")
@pytest.mark.parametrize("member", ["../escaped.txt", "link-out", "samples/images/s1/../../../../x"])
def test_a_tar_with_members_leaving_the_folder_is_refused_in_one_line(site, member, record_property):
    tmp_path, car, secret = site
    archive = tmp_path / "car.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(car, arcname="samples")
        info = tarfile.TarInfo(member)
        if member == "link-out":
            info.type, info.linkname = tarfile.SYMTYPE, "../../../../etc/hostname"
            tar.addfile(info)
        else:
            info.size = 3
            tar.addfile(info, io.BytesIO(b"bad"))
    result = run_edgekit("pull", str(archive), str(tmp_path / "dest"))
    record_property("data_lost", 0)
    assert result.returncode == 1 and "not a safe sample export" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "x").exists()


@pytest.mark.fault("pull: archives and remote copies")
def test_a_tar_member_with_an_absolute_path_stays_inside_dest(site, record_property):
    tmp_path, car, secret = site
    archive, target = tmp_path / "car.tar", tmp_path / "outside" / "planted.txt"
    with tarfile.open(archive, "w") as tar:
        tar.add(car, arcname="samples")
        info = tarfile.TarInfo(str(target))
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    result = run_edgekit("pull", str(archive), str(tmp_path / "dest"), "--json")
    assert result.returncode == 0, result.stderr
    record_property("data_lost", max(0, GOOD - json.loads(result.stdout)["new"]))
    assert not target.exists() and json.loads(result.stdout)["new"] == GOOD


@pytest.mark.fault("pull: archives and remote copies")
@pytest.mark.skipif(shutil.which("rsync") is None, reason="rsync is not installed")
def test_rsync_pull_copies_no_links_from_the_car(site, record_property):
    """user@host:path goes through rsync over ssh; `ssh` here is a stand-in that runs the remote
    side locally (there is no car to ssh into)."""
    tmp_path, car, secret = site
    (car / "images" / "s1" / "000000009.png").symlink_to(secret)
    insert_row(car, file="images/s1/000000009.png", sha256=file_sha256(secret), bytes=secret.stat().st_size)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_ssh = bin_dir / "fake-ssh"
    fake_ssh.write_text('#!/bin/sh\nshift\nexec sh -c "$*"\n')  # ssh HOST COMMAND... -> run COMMAND here
    fake_ssh.chmod(0o755)
    dest = tmp_path / "dest"
    result = run_edgekit("pull", f"car.local:{car}", str(dest), "--json", env={"EDGEKIT_SSH": str(fake_ssh)})
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout)
    record_property("data_lost", max(0, GOOD - counts["new"]))
    assert counts["new"] == GOOD
    copied = dest / ".incoming"
    assert not any(p.is_symlink() for p in copied.rglob("*")), "rsync brought a link from the car"
    assert all(file_sha256(secret) != file_sha256(p) for p in dest.rglob("*") if p.is_file())


@pytest.mark.fault("pull: paths from the car")
def test_pull_output_names_the_refused_rows(site, record_property):
    tmp_path, car, secret = site
    for index in range(7):
        insert_row(car, session_id=f"../x{index}", sha256=f"{index:064d}", file=f"images/s1/e{index}.png")
    result = run_edgekit("pull", str(car), str(tmp_path / "dest"))
    record_property("data_lost", 0 if f"holds {GOOD}" in result.stdout else GOOD)
    assert result.returncode == 0, result.stderr
    line = [x for x in result.stdout.splitlines() if x.startswith("refused")]
    assert line and line[0].startswith("refused 7 rows: row 5: session_id '../x0'") and line[0].count("row ") == 5


@pytest.mark.fault("pull: field values from the car")
def test_a_source_index_without_its_tables_is_one_line(site, record_property):
    tmp_path, car, secret = site
    tamper(car, "DROP TABLE sessions")
    result = run_edgekit("pull", str(car), str(tmp_path / "dest"))
    record_property("data_lost", 0)
    assert result.returncode == 1 and "is not a sample index" in result.stderr and "Traceback" not in result.stderr


# --- read-only media (item 6) ---------------------------------------------------------------

@pytest.fixture
def read_only_store(tmp_path):
    """A store seen through a read-only mount (a card in a reader), written first elsewhere."""
    store = make_store(tmp_path / "written" / "samples", GOOD)
    with read_only_view(store.parent, tmp_path / "card") as mount:
        yield mount / "samples"


@pytest.mark.fault("store on read-only media")
def test_samples_stats_and_check_read_a_store_on_read_only_media(read_only_store, record_property):
    record_property("data_lost", 0)
    with pytest.raises(OSError):
        (read_only_store / "probe").write_text("x")  # really read-only
    stats = run_edgekit("samples", "stats", str(read_only_store), "--json")
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["samples"] == GOOD
    check = run_edgekit("samples", "check", str(read_only_store))
    assert check.returncode == 0 and json.loads(check.stdout)["ok"], check.stdout + check.stderr
    tar = read_only_store.parent.parent / "card.tar"  # tmp_path, beside the read-only mount
    export = run_edgekit("samples", "export", str(read_only_store), str(tar))
    assert export.returncode == 0 and f"exported {GOOD} samples" in export.stdout, export.stderr


@pytest.mark.fault("store on read-only media")
def test_pull_from_a_store_on_read_only_media(read_only_store, tmp_path, record_property):
    counts = pull(read_only_store, tmp_path / "dest")
    record_property("data_lost", max(0, GOOD - counts["new"]))
    assert counts["new"] == GOOD and counts["refused"] == 0


def test_a_store_writer_refuses_names_that_leave_the_store(tmp_path):
    """The last line of defence, below pull: SampleStore.add takes plain names only."""
    with SampleStore(tmp_path / "s", create=True) as store:
        for session, name in (("../x", "a.png"), ("s1", "../a.png"), ("/abs", "a.png"), ("s1", "a.pth")):
            with pytest.raises(ValueError):
                store.add(b"x", {**sample_meta(1), "session_id": session}, name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]
    with pytest.raises(UserError, match="unsafe path"):
        SampleStore(tmp_path / "s").path_of({"file": "../../etc/hostname"})


@pytest.mark.fault("pull: field values from the car")
@pytest.mark.parametrize("command, table, column", [("stats", "sessions", "predictions"),
                                                    ("list", "samples", "probabilities")])
def test_reading_commands_on_a_tampered_store_are_one_line(site, command, table, column, record_property):
    tmp_path, car, secret = site
    tamper(car, f"UPDATE {table} SET {column} = ?", ("[" * 100_000,))
    result = run_edgekit("samples", command, str(car))
    record_property("data_lost", 0)
    assert result.returncode == 1 and "not JSON" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.fault("pull: archives and remote copies")
@pytest.mark.slow
def test_cycle_pulls_through_the_same_checks(site, record_property):
    tmp_path, car, secret = site
    sha = plant(car, "evil.png", PTH)
    insert_row(car, session_id="../../venv/lib/python3.11/site-packages", file="images/s1/evil.png", sha256=sha,
               bytes=len(PTH))
    result = run_edgekit("cycle", "--pull", str(car), "--store", str(tmp_path / "dest"), "--data",
                         str(tmp_path / "none.npz"), "--split", str(tmp_path / "none.json"), "--auto-label", "0.9",
                         "--registry", str(tmp_path / "models"))
    pulled = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("pull: "))[6:])
    record_property("data_lost", max(0, GOOD - pulled["new"]))
    assert pulled["refused"] == 1 and pulled["new"] == GOOD, pulled
    assert "refused 1 rows" in result.stderr and not (tmp_path / "venv").exists()
    assert "Traceback" not in result.stderr
