"""The loop's steps after the dataset: train, convert, bundle, register, deploy, drive, pull, label,
ingest, retrain, gate, promote, hot swap, compare, report. Each returns its summary line.

Every step goes through edgekit's own commands or the functions behind them (the gates
included); the runtime is `edgekit run` in a subprocess, as on the car.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

from edge.errors import UserError
from train.demo.car import Car
from train.demo.context import DemoContext, DemoStop, rel
from train.demo.scoring import before_after_table, condition_summary, plot_drive, score


def edgekit(*argv: object) -> str:
    """Run an edgekit command in this process (as typed in a shell); its printed output."""
    from edge.cli import main

    buffer = io.StringIO()
    with redirect_stdout(buffer):
        code = main([str(a) for a in argv])
    if code:
        raise UserError(f"`edgekit {' '.join(map(str, argv))}` failed (exit {code}): {buffer.getvalue()[-300:]}")
    return buffer.getvalue()


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


# --- train, convert, bundle, register, deploy -------------------------------------------------

def step_train(ctx: DemoContext) -> str:
    from train.training import TrainConfig, train

    s, a = ctx.settings, ctx.artifacts
    run_dir = ctx.out / "runs" / "v0001"
    result = train(TrainConfig(dataset=str(a["dataset_path"]), split_file=str(a["split_path"]), model=s.model,
                               out=str(run_dir), epochs=s.epochs, image_size=a["dataset"].image_size,
                               augment=dict(s.augment), verbose=0))
    if result.status not in ("completed", "early-stopped"):
        raise UserError(f"training {result.status}: {result.message or 'see ' + str(run_dir)}")
    summary = result.summary
    a.update(run_dir=run_dir)
    verdict = (summary.get("diagnosis") or {}).get("verdict", "")
    return (f"{s.model} preset, {summary['total_params']:,} params, {s.epochs} epoch(s) on daytime data: "
            f"val accuracy {summary['max_val_accuracy'] * 100:.1f}% (kept epoch {summary['kept_epoch']}"
            f"{', ' + verdict if verdict else ''}) -> {rel(run_dir / 'curves.png')}")


def step_convert(ctx: DemoContext) -> str:
    from convert.pipeline import ConvertOptions, convert

    s, a = ctx.settings, ctx.artifacts
    result = convert(ConvertOptions(source=a["run_dir"], modes=["int8"], out=a["run_dir"] / "bundle",
                                    name=s.name, version="v0001", max_drop=s.convert_max_drop,
                                    max_class_drop=s.convert_max_class_drop, latency_runs=50, force=s.force))[0]
    if not result.ok or result.bundle is None:
        raise UserError("the int8 conversion failed its gate: " + "; ".join(result.gate_failures))
    a.update(bundle=Path(result.bundle))
    acc = result.accuracy or {}
    return (f"int8 {result.size_bytes / 1024:.0f} KiB ({result.size_ratio:.2f} of float32); "
            f"{acc.get('split', 'val')} accuracy Keras {_pct(acc.get('keras_accuracy'))} -> int8 "
            f"{_pct(acc.get('tflite_accuracy'))} ({-acc.get('drop', 0):+.1f} pt): gate passed "
            f"(max drop {s.convert_max_drop:g} pt, per class {s.convert_max_class_drop:g} pt)"
            + ("; absolute gate FORCED (--quick): " + "; ".join((acc.get("absolute") or {}).get("failures", []))
               if (acc.get("absolute") or {}).get("forced") else ""))


def step_bundle(ctx: DemoContext) -> str:
    from edge.bundle import verify_bundle

    report = verify_bundle(ctx.artifacts["bundle"])
    return (f"{report['name']}:{report['version']} {report['files_checked']} files checksummed, "
            f"golden self-test {report['self_test']} ({report['golden_inputs']} inputs) with "
            f"{report['interpreter']}; input {report['input']} -> {rel(ctx.artifacts['bundle'])}")


def step_register(ctx: DemoContext) -> str:
    from train.registry import Registry

    s, a = ctx.settings, ctx.artifacts
    registry_dir = ctx.out / "models"
    edgekit("models", "--registry", registry_dir, "register", a["bundle"], "--name", s.name,
            "--run", a["run_dir"], "--promote")
    registry = Registry(registry_dir)
    entry = registry.production(s.name)
    a.update(registry=registry, v1=entry)
    return f"{s.name} {entry.version} registered and promoted to production -> {rel(entry.path)}"


def _deploy(ctx: DemoContext, entry: Any) -> Any:
    from train.deploy import deploy, open_target, registered_digest

    return deploy(entry.bundle_path, entry.version, open_target(str(ctx.out / "car")),
                  expected_digest=registered_digest(entry))


def step_deploy(ctx: DemoContext) -> str:
    a = ctx.artifacts
    a["car"] = Car(ctx.out / "car", ctx.settings.drive_size)
    result = _deploy(ctx, a["v1"])
    return (f"car {rel(ctx.out / 'car')}: releases/{result.release} copied, verified there "
            f"(`edgekit bundle verify`: checksums + golden self-test), current -> releases/{result.release}")


# --- the field: drives with the sample log, pull, label, ingest -------------------------------

def _drive(ctx: DemoContext, seed: int, frames: int) -> tuple[str, list[str]]:
    from edge.synthetic import Conditions, drive_conditions

    s = ctx.settings
    source = f"synthetic:seed={seed},frames={frames},fps={s.drive_fps},conditions={s.drive_conditions}"
    conditions = drive_conditions(frames, seed=seed, fps=s.drive_fps, conditions=Conditions.parse(s.drive_conditions))
    return source, conditions


def step_field(ctx: DemoContext) -> str:
    s, a = ctx.settings, ctx.artifacts
    car: Car = a["car"]
    policy = ("--log-low-confidence", str(s.low_confidence), "--log-random", str(s.random))
    drives = [(f"drive-{k}", 100 + k, s.field_frames) for k in range(1, s.field_drives + 1)]
    drives.append((f"drive-{s.field_drives + 1}", 101 + s.field_drives, s.eval_frames))
    records_all, conditions_all, dropped = [], [], 0
    for name, seed, frames in drives:
        source, conditions = _drive(ctx, seed, frames)
        # the drive runs faster than a camera: a queue as long as the drive, so no sample is dropped
        records = car.run(source, name, log_session=name,
                          log_options=(*policy, "--log-seed", str(seed), "--log-queue", str(frames)))
        dropped += car.stat(name, "log.log_dropped")
        if len(records) != frames:
            raise UserError(f"{name}: {len(records)} results for {frames} frames: see {car.logs / (name + '.log')}")
        records_all += records
        conditions_all += [conditions[int(r["frame"])] for r in records]
        a["eval"] = {"name": name, "source": source, "conditions": conditions, "records": records}
    overall = score([{**r, "frame": i} for i, r in enumerate(records_all)], conditions_all)
    a["field_scores"] = overall
    from edge.samplelog.store import SampleStore

    with SampleStore(car.samples, readonly=True) as store:
        rows = list(store.rows())
    reasons = {key: sum(key in (r.get("reasons") or "") for r in rows) for key in ("low_confidence", "random")}
    a["logged"] = len(rows)
    return (f"{len(drives)} drives ({s.drive_conditions.replace('=', ' ')}), {len(records_all)} frames through "
            f"`edgekit run` with {a['v1'].version}: {condition_summary(overall)}; logged {len(rows)} samples "
            f"({reasons['low_confidence']} low confidence < {s.low_confidence:g}, {reasons['random']} random "
            f"{s.random:.0%}; {dropped} dropped) -> {rel(car.samples)}")


def step_pull(ctx: DemoContext) -> str:
    from edge.samplelog.pull import pull

    a = ctx.artifacts
    a["store"] = ctx.out / "host" / "field"
    counts = pull(a["car"].samples, a["store"])
    return (f"{counts['new']} new samples ({counts['duplicates']} already there, "
            f"{counts['missing_in_source']} missing) -> {rel(a['store'])}")


def step_label(ctx: DemoContext) -> str:
    from train.labeling.decisions import LabelDB
    from train.labeling.samples import open_samples

    a = ctx.artifacts
    printed = edgekit("label", "auto", a["store"], "--from-truth").strip()
    source = open_samples(a["store"])
    labels = LabelDB(source.labels_db).labeled()
    corrected = sum(labels.get(s.sample_id) not in (None, s.predicted) for s in source.samples())
    return (f"`edgekit label auto --from-truth`: {printed}; {corrected} of them correct the model's prediction "
            "(the drive's ground truth stands in for a person; `edgekit label serve` is the page for one)")


def step_ingest(ctx: DemoContext) -> str:
    import numpy as np

    from train.data.dataset import Dataset
    from train.splits import load_split

    a = ctx.artifacts
    data, split = ctx.out / "data" / "dataset-field.npz", ctx.out / "data" / "split-field.json"
    edgekit("ingest", a["store"], "--into", data, "--base", a["dataset_path"], "--split", a["split_path"],
            "--split-out", split, "--fresh-test", 1, "--registry", ctx.out / "models")
    dataset, split_file = Dataset.load(data), load_split(split)
    field = np.char.startswith(dataset.sources.astype(str), "store:")
    where = split_file.split_of(dataset.groups[field])
    sessions: dict[str, set[str]] = {}
    for group, part in zip(dataset.groups[field].tolist(), where.tolist(), strict=True):
        sessions.setdefault(part, set()).add(group)
    a.update(field_data=data, field_split=split, eval_split=where, fresh=sorted(sessions.get("fresh_test", [])))
    parts = [f"{p} {int((where == p).sum())} ({', '.join(sorted(sessions[p]))})"
             for p in ("train", "val", "test", "fresh_test") if p in sessions]
    return (f"+{int(field.sum())} field samples, sessions as groups: {'; '.join(parts)}; earlier splits unchanged "
            f"-> {rel(data)}")


# --- retrain, gate, promote ------------------------------------------------------------------

def step_retrain(ctx: DemoContext) -> str:
    from train.gate import GateRules
    from train.retrain import RetrainOptions, retrain

    s, a = ctx.settings, ctx.artifacts
    rules = GateRules(max_drop=s.max_drop, max_class_drop=s.max_class_drop, critical=list(s.critical), force=s.force)
    result = retrain(RetrainOptions(
        data=str(a["field_data"]), split_file=str(a["field_split"]), name=s.name, registry=str(ctx.out / "models"),
        out=str(ctx.out / "runs" / "v0002"), epochs=s.retrain_epochs, rules=rules, promote=False,
        max_convert_drop=s.convert_max_drop, max_convert_class_drop=s.convert_max_class_drop,
        augment=dict(s.augment)))
    a.update(retrain=result, rules=rules)
    summary = json.loads((result.run_dir / "summary.json").read_text())
    return (f"fine-tuned {a['v1'].version} for {s.retrain_epochs} epoch(s) (val accuracy "
            f"{summary['max_val_accuracy'] * 100:.1f}%), int8 through the conversion gate, evaluated as TFLite "
            f"-> registered {result.version} -> {rel(result.run_dir)}")


def step_gate(ctx: DemoContext) -> str:
    s, a = ctx.settings, ctx.artifacts
    result = a["retrain"]
    figures = []
    for split, pair in result.evaluations.items():
        production, candidate = pair["production"], pair["candidate"]
        figures.append(f"{split} {production['accuracy']:.1f}% -> {candidate['accuracy']:.1f}%")
    rules = (f"overall drop <= {s.max_drop:g} pt, class F1 drop <= {s.max_class_drop:g} pt"
             + (f", no recall drop on {', '.join(s.critical)}" if s.critical else ""))
    verdict = "PASSED" if result.decision.promote else "REJECTED: " + "; ".join(result.decision.reasons)
    forced = [split for split, d in result.decision.deltas.items() if (d.get("absolute") or {}).get("forced")]
    if forced:
        verdict += f" (absolute gate FORCED on {', '.join(forced)}: --quick)"
    return f"{a['v1'].version} vs {result.version} as int8 TFLite: {', '.join(figures)}; rules: {rules}: {verdict}"


def step_promote(ctx: DemoContext) -> str:
    s, a = ctx.settings, ctx.artifacts
    result = a["retrain"]
    if not result.decision.promote:
        raise DemoStop(f"{result.version} was not promoted (the gate said no): production stays "
                       f"{a['v1'].version}, the car keeps it; see {rel(result.report)}")
    entry = a["registry"].promote(s.name, result.version, reason="demo: retrain gate passed")
    a["v2"] = entry
    return f"production {a['v1'].version} -> {entry.version} ({rel(a['registry'].model_dir(s.name))})"


# --- deploy under a running runtime, compare, report -----------------------------------------

def step_swap(ctx: DemoContext) -> str:
    s, a = ctx.settings, ctx.artifacts
    car: Car = a["car"]
    evaluation = a["eval"]
    view = getattr(ctx.args, "view", None)
    # watched: slower, and the deploy waits ~10 s so that there is time to open the page first
    after, fps = (max(s.swap_after, 100), min(s.swap_fps, 10.0)) if view else (s.swap_after, s.swap_fps)

    def announce(url: str) -> None:
        print(f"        watch the hot swap live: {url} (the car replays {evaluation['name']} at {fps:g} fps; "
              f"{a['v2'].version} is deployed after frame {after})", flush=True)

    swap = car.swap_run(evaluation["source"], "swap", lambda: _deploy(ctx, a["v2"]), after, fps,
                        view=view, on_view=announce)
    at = swap.swap_frame
    old, new = (f"{s.name}:{a[k].version}" for k in ("v1", "v2"))
    if at is None or swap.versions != [old, new]:
        raise UserError(f"the runtime did not swap to {new} (versions seen: {swap.versions}): "
                        f"see {car.logs / 'swap.log'}")
    if swap.lost_frames or len(swap.records) != s.eval_frames:
        raise UserError(f"{swap.lost_frames} frames lost during the swap: see {car.logs / 'swap.jsonl'}")
    field = {int(r["frame"]): r["label"] for r in evaluation["records"]}
    same = sum(field[int(r["frame"])] == r["label"] for r in swap.records if r["model_version"] == old)
    a["swap"] = swap
    logged_swap = "model swapped" in swap.stderr
    return (f"one `edgekit run` replaying {evaluation['name']} at {fps:g} fps; deploy of {a['v2'].version} "
            f"started after frame {swap.deploy_started_frame} and took {swap.deploy_seconds:.1f} s (copy, verify "
            f"on the car, switch); the runtime {'logged the swap and ' if logged_swap else ''}answered with "
            f"{a['v2'].version} from frame {at} on: {len(swap.records)}/{s.eval_frames} frames, "
            f"{swap.lost_frames} lost; its {a['v1'].version} answers before the swap match the field run "
            f"{same}/{at}")


def step_compare(ctx: DemoContext) -> str:
    s, a = ctx.settings, ctx.artifacts
    evaluation, swap = a["eval"], a["swap"]
    at = swap.swap_frame
    critical = s.critical[0] if s.critical else "red"
    before = [r for r in evaluation["records"] if int(r["frame"]) >= at]
    after = [r for r in swap.records if int(r["frame"]) >= at]
    scores = (score(before, evaluation["conditions"], critical), score(after, evaluation["conditions"], critical))
    a.update(compare=(before, after, scores, at))
    v1, v2 = a["v1"].version, a["v2"].version
    held_out = evaluation["name"] in a.get("fresh", [])
    hard = min((k for k in scores[0] if k not in ("overall",) and not k.endswith(" light")),
               key=lambda k: scores[0][k].accuracy if scores[0][k].accuracy is not None else 101, default=None)
    hard_text = f", {hard} {scores[0][hard].text()} -> {scores[1][hard].text()}" if hard else ""
    return (f"{evaluation['name']} frames {at}-{s.eval_frames - 1}"
            f"{' (held out of training as fresh_test)' if held_out else ''}: {v1} "
            f"{scores[0]['overall'].text()} -> {v2} {scores[1]['overall'].text()}{hard_text}")


def step_report(ctx: DemoContext) -> str:
    a = ctx.artifacts
    before, after, scores, at = a["compare"]
    v1, v2 = a["v1"].version, a["v2"].version
    picture = plot_drive(ctx.out / "drive.png", before, after, scores, (v1, v2), list(a["dataset"].class_names),
                         f"{a['eval']['name']}, frames {at}+ (same frames, before vs after the hot swap)")
    table = before_after_table(scores[0], scores[1], v1, v2)
    a["table"] = table
    lines = ["# edgekit demo", "", f"Before ({v1}, field run) vs after ({v2}, after the hot swap) on the same "
             f"frames {at}+ of {a['eval']['name']}:", "", "```", *table, "```", "", "![drive](drive.png)", "",
             "## Steps", "", *[f"- {line}" for line in a.get("lines", [])], "",
             "## Files", "", *[f"- `{rel(p)}`: {what}" for p, what in report_files(ctx)]]
    (ctx.out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return f"{rel(ctx.out / 'report.md')}, {rel(picture)}"


def report_files(ctx: DemoContext) -> list[tuple[Path, str]]:
    """The reports and pictures a user looks at, with what each shows."""
    out, a = ctx.out, ctx.artifacts
    files = [
        (out / "report.md", "this run: the steps and the before/after table"),
        (out / "drive.png", "confusion matrices before/after on the same drive frames, accuracy per condition"),
        (out / "runs" / "v0001" / "curves.png", "first model's training curves"),
    ]
    result = a.get("retrain")
    if result is not None:
        files += [(result.report, "retrain report: data added per class and session, per-class deltas, decision"),
                  (result.report.parent, "both confusion matrices + per-class deltas per split (val.png, "
                   "fresh_test.png)"),
                  (result.run_dir / "curves.png", "fine-tuning curves")]
    files += [(out / "models", "registry: every version with bundle, model.keras, metrics, lineage"),
              (out / "car", "the car: releases/, current, edgekit.toml, samples/, logs/*.jsonl (runtime output)")]
    return [(p, what) for p, what in files if p.exists()]
