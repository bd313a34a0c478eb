"""`edgekit samples stats|list|export|check`: look at the sample store on the car."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "samples"
HELP = "inspect the field sample store: stats, list, export to .tar, check/repair"
NEEDS = ()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="samples_command", metavar="ACTION", required=True)
    stats = sub.add_parser("stats", help="counts by reason/class/session, confidence histogram, drift")
    stats.add_argument("store", type=Path, help="sample store folder (--log-dir of edgekit run)")
    stats.add_argument("--bundle", type=Path, help="compare with this bundle's training distribution "
                       "(default: the one each session recorded)")
    stats.add_argument("--drift-threshold", type=float, default=0.2,
                       help="total-variation distance that counts as drift (default 0.2)")

    listing = sub.add_parser("list", help="list samples, newest last")
    listing.add_argument("store", type=Path)
    listing.add_argument("--label", help="only samples with this predicted label")
    listing.add_argument("--limit", type=int, help="at most N (the newest)")

    export = sub.add_parser("export", help="write the store (or a selection) to one .tar")
    export.add_argument("store", type=Path)
    export.add_argument("out", type=Path, help="the .tar to write")

    check = sub.add_parser("check", help="integrity of the index and SHA-256 of every file")
    check.add_argument("store", type=Path)
    check.add_argument("--repair", action="store_true",
                       help="reconcile: drop rows without image, re-index or drop images without row")
    check.add_argument("--force", action="store_true", help="with --repair: even if it removes most of the store")
    from edge.cli_options import add_shared_option

    add_shared_option(parser, [stats, listing], "--json", action="store_true",
                      help="print JSON (list: one object per line)")
    add_shared_option(parser, [listing, export], "--reason", help="only samples logged for this reason")
    add_shared_option(parser, [listing, export], "--session", help="only samples of this session")


def _filters(args: argparse.Namespace) -> tuple[str, tuple]:
    clauses, params = [], []
    if getattr(args, "reason", None):
        clauses.append("(',' || reasons || ',') LIKE ?")
        params.append(f"%,{args.reason},%")
    if getattr(args, "label", None):
        clauses.append("label = ?")
        params.append(args.label)
    if getattr(args, "session", None):
        clauses.append("session_id = ?")
        params.append(args.session)
    return " AND ".join(clauses), tuple(params)


def run(args: argparse.Namespace) -> int:
    from edge.samplelog.report import export_tar, format_summary, summarize
    from edge.samplelog.store import SampleStore

    if args.samples_command == "check":
        with SampleStore(args.store, lock=args.repair, readonly=not args.repair) as store:
            if args.repair:
                print(json.dumps({"reconcile": store.reconcile(force=args.force).to_dict()}))
            report = store.check()
        print(json.dumps(report if not report["ok"] else {k: report[k] for k in ("integrity", "rows", "ok")}))
        return 0 if report["ok"] else 1
    with SampleStore(args.store, readonly=True) as store:
        if args.samples_command == "stats":
            training = None
            if args.bundle:
                from edge.bundle import open_bundle

                training = open_bundle(args.bundle, verify=False).training_distribution or None
            summary = summarize(store, training, args.drift_threshold)
            print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
        elif args.samples_command == "list":
            where, params = _filters(args)
            rows = list(store.rows(where, params, order="id DESC", limit=args.limit))[::-1]
            for row in rows:
                if args.json:
                    print(json.dumps(row))
                else:
                    print(f"{row['id']:6d} {row['session_id']} {row['frame_index']:7d} {row['reasons']:<28} "
                          f"{row['label']:<10} {row['confidence']:.3f} {row['file']}")
        else:
            where, params = _filters(args)
            count = export_tar(store, args.out, where, params)
            print(f"exported {count} samples to {args.out}")
    return 0
