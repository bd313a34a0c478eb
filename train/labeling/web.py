"""`edgekit label serve`: a local page to label samples with the keyboard.

Keys: 1-9 assign a class, x discards, u undoes, arrow keys move. Each key press is
one POST that commits to labels.db before the page moves on, so closing the
browser loses nothing. Only the store's own sample images are served.

Requests are untrusted: the Host header must name this machine (loopback names, an IP
address, or a name given in `allowed_hosts`), so a page elsewhere cannot reach the
labels through DNS rebinding; bodies must have exactly the expected keys and types
(400 with one line otherwise); a sample whose file has become a link out of the store
is left out of the list and counted (`skipped`), never served.

Example:
    >>> app = create_app(open_samples("pulled/car1"))
    >>> app.run(host="127.0.0.1", port=8321)
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, jsonify, request, send_file
from werkzeug.exceptions import HTTPException

from edge.view.guard import host_name
from edge.view.settings import is_loopback
from train.labeling.decisions import LabelDB
from train.labeling.samples import SampleSource

MAX_KEYED_CLASSES = 9
MAX_BODY_BYTES = 16 * 1024
_DECIDE_KEYS = {"id", "label", "discard"}


def resolve_inside(root: Path, relative: str) -> Path | None:
    """`root/relative` if it stays inside root (after resolving links), else None."""
    if not relative or relative.startswith(("/", "\\")) or "\x00" in relative:
        return None
    candidate = (root / relative).resolve()
    return candidate if candidate.is_relative_to(root) else None


def host_allowed(header: str | None, allowed_hosts: frozenset[str] = frozenset()) -> bool:
    """Loopback names and IP addresses (no DNS involved), or a name the user allowed."""
    name = host_name(header)
    if name is None:
        return False
    if is_loopback(name) or name in allowed_hosts:
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def create_app(source: SampleSource, classes: list[str] | None = None,
               allowed_hosts: list[str] | tuple[str, ...] = ()) -> Flask:
    """The labeling web app for one sample store.

    Args:
        allowed_hosts: names besides localhost and IP addresses the page may be opened by
            (e.g. "workstation.lan" when serving on 0.0.0.0).
    """
    names = source.class_names(classes)
    db = LabelDB(source.labels_db)
    samples = source.samples()
    by_id = {s.sample_id: s for s in samples}
    image_files = {s.image_path.resolve() for s in samples}
    hosts = frozenset(h.lower().rstrip(".") for h in allowed_hosts)
    app = Flask(__name__)
    app.url_map.merge_slashes = False  # "/files//etc/passwd" must not become a redirect
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES

    @app.before_request
    def check_host():
        if not host_allowed(request.headers.get("Host"), hosts):
            return _error(403, "unknown Host header: open the page as http://127.0.0.1:PORT/ "
                               "(or allow the name with --allow-host)")
        return None

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        return _error(error.code or 500, error.description or error.name)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        app.logger.error("label page: %s: %s", type(error).__name__, error)
        return _error(500, f"internal error ({type(error).__name__}); the decision was not saved")

    def image_url(sample) -> str | None:
        """The sample's URL, or None when its file now resolves outside the store (a link out)."""
        relative = sample.image_path.relative_to(source.root).as_posix() \
            if sample.image_path.is_relative_to(source.root) else None
        path = resolve_inside(source.root, relative) if relative else None
        return None if path is None else "/files/" + path.relative_to(source.root).as_posix()

    def sample_json(sample, decisions, url: str) -> dict[str, Any]:
        decision = decisions.get(sample.sample_id)
        return {
            "id": sample.sample_id,
            "image": url,
            "predicted": sample.predicted,
            "confidence": sample.confidence,
            "session": sample.session_id,
            "decision": decision.to_dict() if decision else None,
        }

    @app.get("/")
    def page():
        return PAGE

    @app.get("/api/state")
    def state():
        decisions = db.all()
        shown, skipped = [], source.unsafe_rows
        for sample in samples:
            url = image_url(sample)
            if url is None:
                skipped += 1
            else:
                shown.append(sample_json(sample, decisions, url))
        if skipped:
            app.logger.warning("label page: %d samples left out: their file leads out of %s", skipped, source.root)
        return jsonify(classes=names, keyed=names[:MAX_KEYED_CLASSES], store=str(source.root),
                       samples=shown, skipped=skipped)

    @app.post("/api/decide")
    def decide():
        body = request.get_json(silent=True)
        problem = _decide_problem(body, names)
        if problem:
            return _error(400, problem)
        sample = by_id.get(body["id"])
        if sample is None:
            return _error(404, "no such sample in this store")
        if body.get("discard") is True:
            decision = db.decide(sample.sample_id, None, discard=True, source="web")
        else:
            decision = db.decide(sample.sample_id, body["label"], source="web")
        return jsonify(id=sample.sample_id, decision=decision.to_dict())

    @app.post("/api/undo")
    def undo():
        if request.get_data().strip() and request.get_json(silent=True) != {}:
            return _error(400, "undo takes no arguments: send {} or nothing")
        sample_id = db.undo(source="web")
        if sample_id is None:
            return jsonify(id=None, decision=None)
        decision = db.get(sample_id)
        return jsonify(id=sample_id, decision=decision.to_dict() if decision else None)

    @app.get("/files/<path:relative>")
    def files(relative: str):
        if relative.startswith("/") or ".." in Path(relative).parts:
            abort(400)
        path = resolve_inside(source.root, relative)
        if path is None or path not in image_files or not path.is_file():
            abort(404)
        return send_file(path, max_age=3600)

    return app


def _decide_problem(body: object, names: list[str]) -> str | None:
    """What is wrong with a /api/decide body, or None: {"id": str, and "label": a class or "discard": true}."""
    if not isinstance(body, dict):
        return 'send a JSON object: {"id": ..., "label": ...} or {"id": ..., "discard": true}'
    unknown = set(body) - _DECIDE_KEYS
    if unknown:
        return f"unknown keys {sorted(unknown)}: known are {sorted(_DECIDE_KEYS)}"
    if not isinstance(body.get("id"), str):
        return '"id" must be the sample id (a string)'
    if "discard" in body and not isinstance(body["discard"], bool):
        return '"discard" must be true or false'
    if body.get("discard") is True:
        return '"discard": true goes without a "label"' if "label" in body else None
    if not isinstance(body.get("label"), str) or body["label"] not in names:
        return f'"label" must be one of {names} (or send "discard": true)'
    return None


def _error(status: int, message: str) -> Response:
    """One line, as JSON, for the page and for scripts; never a traceback."""
    response = jsonify(error=message)
    response.status_code = status
    return response


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>edgekit label</title>
<style>
 body{font-family:system-ui,sans-serif;margin:0;background:#1e1e1e;color:#eee;display:flex;height:100vh}
 main{flex:1;display:flex;flex-direction:column;align-items:center;justify-content:center}
 #img{width:min(70vh,70vw);height:min(70vh,70vw);object-fit:contain;image-rendering:pixelated;background:#000}
 #info{font-size:1.3em;margin:.6em} .conf{color:#aaa} #decision{font-size:1.5em;min-height:1.5em}
 .discarded{color:#f66} .labeled{color:#6f6} aside{width:16em;padding:1em;background:#2a2a2a}
 kbd{background:#444;border-radius:3px;padding:0 .4em} li{margin:.3em 0;list-style:none}
 #status{color:#aaa;margin-top:1em}
</style></head><body>
<main>
 <img id="img" alt="sample">
 <div id="info"><span id="predicted"></span> <span class="conf" id="confidence"></span></div>
 <div id="decision"></div>
 <div id="position"></div>
</main>
<aside>
 <h3>Keys</h3><ul id="keys"></ul>
 <ul><li><kbd>x</kbd> discard</li><li><kbd>u</kbd> undo</li><li><kbd>&larr;</kbd> <kbd>&rarr;</kbd> move</li></ul>
 <div id="status">loading</div>
</aside>
<script>
let classes = [], keyed = [], samples = [], index = 0;
const $ = (id) => document.getElementById(id);

function show() {
  const s = samples[index];
  if (!s) { $("position").textContent = "no samples"; return; }
  $("img").src = s.image;
  $("predicted").textContent = "model: " + (s.predicted ?? "?");
  $("confidence").textContent = s.confidence == null ? "" : (100 * s.confidence).toFixed(1) + "%";
  const d = s.decision;
  $("decision").className = d ? (d.discarded ? "discarded" : "labeled") : "";
  $("decision").textContent = d ? (d.discarded ? "discarded" : "label: " + d.label) : "undecided";
  const done = samples.filter((x) => x.decision).length;
  $("position").textContent = `${index + 1} / ${samples.length}  (${done} decided)  session ${s.session}`;
  document.body.dataset.sample = s.id;
}

async function post(url, body) {
  const r = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"},
                              body: JSON.stringify(body)});
  if (!r.ok) throw new Error(url + " " + r.status);
  return r.json();
}

function move(step) { index = Math.max(0, Math.min(samples.length - 1, index + step)); show(); }

async function decide(body) {
  const s = samples[index];
  $("status").textContent = "saving";
  try {
    const r = await post("/api/decide", {id: s.id, ...body});
    s.decision = r.decision;
    $("status").textContent = "saved";
    document.body.dataset.saved = String(Number(document.body.dataset.saved || 0) + 1);
    if (index < samples.length - 1) move(1); else show();
  } catch (e) { $("status").textContent = "NOT saved: " + e.message; }
}

async function undo() {
  const r = await post("/api/undo", {});
  if (!r.id) { $("status").textContent = "nothing to undo"; return; }
  const i = samples.findIndex((x) => x.id === r.id);
  if (i >= 0) { samples[i].decision = r.decision; index = i; }
  $("status").textContent = "undone";
  document.body.dataset.saved = String(Number(document.body.dataset.saved || 0) + 1);
  show();
}

document.addEventListener("keydown", (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey || !samples.length) return;
  if (e.key >= "1" && e.key <= "9") {
    const label = keyed[Number(e.key) - 1];
    if (label !== undefined) decide({label});
  } else if (e.key === "x") decide({discard: true});
  else if (e.key === "u") undo();
  else if (e.key === "ArrowRight") move(1);
  else if (e.key === "ArrowLeft") move(-1);
  else return;
  e.preventDefault();
});

fetch("/api/state").then((r) => r.json()).then((state) => {
  classes = state.classes; keyed = state.keyed; samples = state.samples;
  keyed.forEach((c, i) => {
    const li = document.createElement("li"), kbd = document.createElement("kbd");
    kbd.textContent = String(i + 1); li.append(kbd, " " + c); $("keys").append(li);
  });
  const first = samples.findIndex((s) => !s.decision);
  index = first >= 0 ? first : 0;
  $("status").textContent = "ready";
  document.body.dataset.ready = "1";
  show();
});
</script></body></html>
"""
