"""`edgekit label serve`: a local page to label samples with the keyboard.

Keys: 1-9 assign a class, x discards, u undoes, arrow keys move. Each key press is
one POST that commits to labels.db before the page moves on, so closing the
browser loses nothing. Only the store's own sample images are served.

Example:
    >>> app = create_app(open_samples("pulled/car1"))
    >>> app.run(host="127.0.0.1", port=8321)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask, abort, jsonify, request, send_file

from train.labeling.decisions import LabelDB
from train.labeling.samples import SampleSource

MAX_KEYED_CLASSES = 9


def resolve_inside(root: Path, relative: str) -> Path | None:
    """`root/relative` if it stays inside root (after resolving links), else None."""
    if not relative or relative.startswith(("/", "\\")) or "\x00" in relative:
        return None
    candidate = (root / relative).resolve()
    return candidate if candidate.is_relative_to(root) else None


def create_app(source: SampleSource, classes: list[str] | None = None) -> Flask:
    """The labeling web app for one sample store."""
    names = source.class_names(classes)
    db = LabelDB(source.labels_db)
    samples = source.samples()
    by_id = {s.sample_id: s for s in samples}
    image_files = {s.image_path.resolve() for s in samples}
    app = Flask(__name__)
    app.url_map.merge_slashes = False  # "/files//etc/passwd" must not become a redirect

    def sample_json(sample, decisions) -> dict[str, Any]:
        decision = decisions.get(sample.sample_id)
        return {
            "id": sample.sample_id,
            "image": "/files/" + sample.image_path.resolve().relative_to(source.root).as_posix(),
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
        return jsonify(classes=names, keyed=names[:MAX_KEYED_CLASSES], store=str(source.root),
                       samples=[sample_json(s, decisions) for s in samples])

    @app.post("/api/decide")
    def decide():
        body = request.get_json(silent=True) or {}
        sample = by_id.get(str(body.get("id", "")))
        if sample is None:
            abort(404)
        if body.get("discard"):
            decision = db.decide(sample.sample_id, None, discard=True, source="web")
        elif body.get("label") in names:
            decision = db.decide(sample.sample_id, body["label"], source="web")
        else:
            abort(400)
        return jsonify(id=sample.sample_id, decision=decision.to_dict())

    @app.post("/api/undo")
    def undo():
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
