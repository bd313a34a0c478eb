"""`edgekit cycle`: the unattended loop for cron — pull, auto-label, ingest, retrain, gate, register
(and deploy when promoted). Exits 0 whether or not the candidate was promoted; a failing step
exits non-zero with one line saying which.

Example crontab line (weekly, Sunday 03:00):
    0 3 * * 0  cd /srv/edgekit && .venv/bin/edgekit cycle --pull pi@car.local:edgekit/samples \\
        --store data/field --data data/dataset.npz --split data/split.json --auto-label 0.95 \\
        --critical red --deploy-to pi@car.local:edgekit >> cycle.log 2>&1
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

NAME = "cycle"
HELP = "unattended loop for cron: pull, auto-label above a confidence, ingest, retrain, gate, register"
NEEDS = ("tensorflow",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pull", metavar="SRC", help="pull samples from SRC first (folder, .tar or user@host:path; "
                                                       "over ssh as $EDGEKIT_SSH, like --deploy-to)")
    parser.add_argument("--store", type=Path, required=True, help="the host-side sample store")
    parser.add_argument("--data", type=Path, required=True, help="dataset .npz (extended in place)")
    parser.add_argument("--split", type=Path, required=True, help="split file (extended in place)")
    parser.add_argument("--auto-label", type=float, required=True, metavar="P",
                        help="accept predictions with confidence >= P; the rest waits for a person")
    parser.add_argument("--fresh-test", type=float, default=1, help="newest new sessions held out (default 1)")
    parser.add_argument("--min-new", type=int, default=1, help="skip retraining below this many new samples")
    parser.add_argument("--registry", default=None)
    parser.add_argument("--name")
    parser.add_argument("--epochs", type=int, help="retrain epochs (default: production's own recipe)")
    parser.add_argument("--max-drop", type=float, default=1.0)
    parser.add_argument("--max-class-drop", type=float, default=3.0)
    parser.add_argument("--critical", default="")
    parser.add_argument("--deploy-to", help="deploy the new production version here when promoted")
    parser.add_argument("--target-edgekit", help="the target's edgekit command (see `edgekit deploy`)")
    parser.add_argument("--log", type=Path, help="append one JSON line per cycle here")


def run(args: argparse.Namespace) -> int:
    from edge.bundle import open_bundle
    from train.data.dataset import Dataset
    from train.gate import GateRules
    from train.ingest import merge, split_checked, store_dataset
    from train.labeling.decisions import LabelDB
    from train.labeling.samples import open_samples
    from train.registry import Registry
    from train.retrain import RetrainOptions, retrain
    from train.splits import load_split

    record: dict = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if args.pull:
        from edge.samplelog.pull import pull

        record["pull"] = pull(args.pull, args.store)
        print(f"pull: {json.dumps(record['pull'], default=str)}")

    source = open_samples(args.store)
    db = LabelDB(source.labels_db)
    decided = db.all()
    accepted = 0
    for sample in source.samples():
        if sample.sample_id not in decided and sample.confidence is not None \
                and sample.confidence >= args.auto_label and sample.predicted:
            db.decide(sample.sample_id, sample.predicted, source="auto")
            accepted += 1
    waiting = sum(s.sample_id not in db.all() for s in source.samples())
    record["auto_labeled"], record["waiting_for_person"] = accepted, waiting
    print(f"label: {accepted} auto-accepted (confidence >= {args.auto_label:g}), {waiting} wait for a person")

    registry = Registry(args.registry)
    name = registry.default_name(args.name)
    production = registry.production(name)
    bundle = open_bundle(production.bundle_path if production else registry.resolve(f"{name}:latest").bundle_path)
    base = Dataset.load(args.data)
    merged, added = merge(base, store_dataset(source, bundle.preprocess, base.class_names))
    record["ingested"] = added
    print(f"ingest: {added} new samples -> {args.data} ({len(merged)} total)")
    if added < args.min_new:
        record["result"] = "skipped: too few new samples"
        print(f"retrain: skipped ({added} new samples < --min-new {args.min_new})")
        _log(args.log, record)
        return 0
    # unattended: near-copies of images in another split are dropped (and counted), never ingested
    checked = split_checked(merged, len(base), load_split(args.split), args.fresh_test, drop_leaks=True)
    record["leaks_dropped"] = checked.dropped
    print(checked.leaks.summary() + (f"; dropped {checked.dropped}" if checked.dropped else ""))
    checked.dataset.save(args.data)
    checked.split.save(args.split)

    critical = [c.strip() for c in args.critical.split(",") if c.strip()]
    result = retrain(RetrainOptions(
        data=str(args.data), split_file=str(args.split), name=name, registry=args.registry, epochs=args.epochs,
        rules=GateRules(max_drop=args.max_drop, max_class_drop=args.max_class_drop, critical=critical)))
    record.update(version=result.version, promoted=result.promoted, reasons=result.decision.reasons,
                  report=str(result.report))
    print(f"retrain: {result.version} {'promoted' if result.promoted else 'not promoted'}; report {result.report}")
    for reason in result.decision.reasons:
        print(f"  {reason}")
    if result.promoted and args.deploy_to:
        from train.deploy import deploy, open_target, registered_digest

        entry = registry.get(name, result.version)
        deployed = deploy(entry.bundle_path, entry.version, open_target(args.deploy_to, edgekit=args.target_edgekit),
                          expected_digest=registered_digest(entry))
        record["deployed"] = deployed.release
        print(f"deploy: {args.deploy_to} current -> {deployed.release}")
    _log(args.log, record)
    return 0


def _log(path: Path | None, record: dict) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, default=str) + "\n")
