"""Fault replays: the label page takes requests as untrusted (issue 14, item 11).

A sample replaced by a link out of the store, a Host header naming another site (DNS
rebinding), bodies of the wrong shape or type: each answers one line (or leaves the
sample out and counts it), never a 500 with a traceback, and no decision is made by it.
"""

from __future__ import annotations

import pytest

from tests.loop_store import make_store
from train.labeling.decisions import LabelDB
from train.labeling.samples import open_samples
from train.labeling.web import create_app

N = 4


@pytest.fixture
def page(tmp_path):
    store = make_store(tmp_path / "store", n=N)
    (tmp_path / "secret.txt").write_text("the workstation's secret")
    app = create_app(open_samples(store))
    return app.test_client(), store, tmp_path / "secret.txt"


def decisions(store) -> dict:
    return LabelDB(store / "labels.db").all()


@pytest.mark.fault("label page: requests and files")
def test_a_sample_replaced_by_a_link_out_is_left_out_and_counted(page, record_property):
    client, store, secret = page
    first = client.get("/api/state").get_json()["samples"][0]
    path = store / first["id"]
    path.unlink()
    path.symlink_to(secret)
    response = client.get("/api/state")
    record_property("data_lost", 0)
    assert response.status_code == 200, response.data
    state = response.get_json()
    assert state["skipped"] == 1 and len(state["samples"]) == N - 1
    assert first["id"] not in {s["id"] for s in state["samples"]}
    served = client.get(first["image"])
    assert served.status_code == 404 and b"secret" not in served.data


@pytest.mark.fault("label page: requests and files")
@pytest.mark.parametrize("host", ["evil.example", "evil.example:8321", "localhost.evil.example", "127.0.0.1.nip.io",
                                  "", "a b", "evil.example@127.0.0.1"])
def test_a_foreign_host_header_is_refused(page, host, record_property):
    """DNS rebinding: a page on evil.example whose name now points at 127.0.0.1."""
    client, store, secret = page
    first = client.get("/api/state").get_json()["samples"][0]
    for method, url, body in (("get", "/api/state", None), ("post", "/api/decide", {"id": first["id"], "label": "red"}),
                              ("get", first["image"], None), ("get", "/", None)):
        response = getattr(client, method)(url, json=body, headers={"Host": host})
        assert response.status_code == 403, (url, response.status_code)
        assert "Host" in response.get_json()["error"]
    record_property("data_lost", 0)
    assert decisions(store) == {}


@pytest.mark.fault("label page: requests and files")
@pytest.mark.parametrize("host", ["127.0.0.1:8321", "localhost:8321", "[::1]:8321", "192.168.1.20:8321",
                                  "labels.lan:8321"])
def test_own_names_and_allowed_names_pass(tmp_path, host, record_property):
    store = make_store(tmp_path / "store", n=N)
    client = create_app(open_samples(store), allowed_hosts=["labels.lan"]).test_client()
    record_property("data_lost", 0)
    assert client.get("/api/state", headers={"Host": host}).status_code == 200


BAD_BODIES = {
    "discard as a string": {"discard": "false"},
    "discard as a number": {"discard": 1},
    "discard as a list": {"discard": [True]},
    "label as a number": {"label": 3},
    "label as a list": {"label": ["red"]},
    "label and discard": {"label": "red", "discard": True},
    "unknown key": {"label": "red", "admin": True},
    "id as a number": {"id": 0, "label": "red"},
    "id as an object": {"id": {"$ne": ""}, "label": "red"},
    "no label": {},
}
BAD_JSON = {"a list": "[1, 2]", "a string": '"red"', "a number": "7", "null": "null", "not JSON": "{",
            "nested 50000 deep": "[" * 50_000 + "]" * 50_000, "too big": '{"id": "' + "x" * 100_000 + '"}'}


@pytest.mark.fault("label page: requests and files")
@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_a_decide_body_of_the_wrong_type_is_400_and_decides_nothing(page, case, record_property):
    client, store, secret = page
    first = client.get("/api/state").get_json()["samples"][0]
    response = client.post("/api/decide", json={"id": first["id"], **BAD_BODIES[case]})
    record_property("data_lost", 0)
    assert response.status_code == 400, response.data
    message = response.get_json()["error"]
    assert "\n" not in message and "Traceback" not in message
    assert decisions(store) == {}


@pytest.mark.fault("label page: requests and files")
@pytest.mark.parametrize("case", sorted(BAD_JSON))
def test_a_body_that_is_not_the_expected_object_is_400_or_413(page, case, record_property):
    client, store, secret = page
    for url in ("/api/decide", "/api/undo"):
        response = client.post(url, data=BAD_JSON[case], content_type="application/json")
        assert response.status_code in (400, 413), (url, response.status_code, response.data[:200])
        assert "error" in response.get_json()
    record_property("data_lost", 0)
    assert decisions(store) == {}


@pytest.mark.fault("label page: requests and files")
def test_good_requests_still_decide_and_undo(page, record_property):
    client, store, secret = page
    first = client.get("/api/state").get_json()["samples"][0]
    assert client.post("/api/decide", json={"id": first["id"], "discard": True}).status_code == 200
    assert client.post("/api/decide", json={"id": first["id"], "label": "red"}).status_code == 200
    assert client.post("/api/decide", json={"id": first["id"], "label": "red", "discard": False}).status_code == 200
    assert client.post("/api/undo", json={}).status_code == 200
    assert client.post("/api/undo").status_code == 200
    record_property("data_lost", 0)
    assert decisions(store)[first["id"]].discarded


@pytest.mark.fault("label page: requests and files")
def test_a_row_naming_a_path_out_of_the_store_is_left_out_and_counted(tmp_path, record_property):
    """A host store edited after the pull: one row's `file` leads out; the page still opens."""
    import sqlite3

    store = make_store(tmp_path / "store", n=N)
    with sqlite3.connect(store / "samples.db") as db:
        first_id = db.execute("SELECT min(id) FROM samples").fetchone()[0]
        db.execute("UPDATE samples SET file = ? WHERE id = ?", ("../../etc/hostname", first_id))
    source = open_samples(store)
    record_property("data_lost", 0)
    assert source.unsafe_rows == 1 and len(source.samples()) == N - 1
    state = create_app(source).test_client().get("/api/state").get_json()
    assert state["skipped"] == 1 and all(".." not in s["id"] for s in state["samples"])
