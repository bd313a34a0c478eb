"""`edgekit label export|import|serve|auto|status`: a person decides the labels of field samples."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

NAME = "label"
HELP = "label pulled samples: sort folders (export/import), a keyboard web page (serve), or auto-accept"
NEEDS: tuple[str, ...] = ()


def _classes(text: str | None) -> list[str] | None:
    return [c.strip() for c in text.split(",") if c.strip()] if text else None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="label_command", metavar="ACTION", required=True)

    p = sub.add_parser("export", help="copy undecided samples to OUT/<predicted class>/ for a file manager")
    p.add_argument("store", type=Path, help="the host-side sample store (pulled from the car)")
    p.add_argument("--out", type=Path, required=True, help="a new folder")
    export = p
    p.add_argument("--all", action="store_true", help="also samples that already have a decision")

    p = sub.add_parser("import", help="read sorted folders back: folder = label, `discard` drops")
    p.add_argument("folder", type=Path, help="the folder `label export` made")
    p.add_argument("--store", type=Path, help="the sample store (default: the one exported from)")
    p.add_argument("--moved-only", action="store_true",
                   help="only files moved to another folder count; unmoved ones stay undecided")

    p = sub.add_parser("serve", help="a local web page: 1-9 label, x discard, u undo, arrows move")
    p.add_argument("store", type=Path)
    serve = p
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8321)
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="a name the page may be opened by besides localhost and IP addresses "
                        "(DNS-rebinding check; repeat for several)")

    p = sub.add_parser("auto", help="accept predictions above a confidence (or the recorded truth, for demos)")
    p.add_argument("store", type=Path)
    p.add_argument("--min-confidence", type=float, default=None,
                   help="accept the model's prediction when its confidence is at least this")
    p.add_argument("--from-truth", action="store_true",
                   help="use the ground truth recorded with synthetic frames (demo stand-in for a person)")

    p = sub.add_parser("status", help="how many samples are decided, per label")
    p.add_argument("store", type=Path)

    from edge.cli_options import add_shared_option

    add_shared_option(parser, [export, serve], "--classes",
                      help="class names a,b,c (default: the model's labels in the store)")


def run(args: argparse.Namespace) -> int:
    from train.labeling.samples import open_samples

    command = args.label_command
    if command == "import":
        return _import(args)
    source = open_samples(args.store)
    if command == "export":
        from train.labeling.folders import export_folders

        count = export_folders(source, args.out, _classes(args.classes), include_decided=args.all)
        print(f"exported {count} samples to {args.out}/<predicted class>/; move wrong ones to the right "
              f"folder or to discard/, then run: edgekit label import {args.out}")
    elif command == "serve":
        return _serve(source, args)
    elif command == "auto":
        return _auto(source, args)
    elif command == "status":
        _status(source)
    return 0


def _import(args: argparse.Namespace) -> int:
    from train.labeling.folders import import_folders

    report = import_folders(args.folder, store=args.store, moved_only=args.moved_only)
    print(f"imported: {report.confirmed} confirmed, {report.relabeled} relabeled, "
          f"{report.discarded} discarded")
    if report.missing:
        print(f"  {len(report.missing)} exported files were not found (left undecided)")
    if report.unknown_files:
        print(f"  {len(report.unknown_files)} files were not exported by edgekit (ignored), "
              f"e.g. {report.unknown_files[0]}")
    return 0


def _serve(source, args: argparse.Namespace) -> int:
    import importlib.util

    from edge.errors import MissingExtraError

    if importlib.util.find_spec("flask") is None:
        raise MissingExtraError("label serve", "flask")
    from train.labeling.web import create_app

    app = create_app(source, _classes(args.classes), allowed_hosts=args.allow_host)
    print(f"labeling {len(source.samples())} samples of {source.root}: open http://{args.host}:{args.port}/ "
          f"(decisions go to {source.labels_db}; Ctrl-C to stop)")
    app.run(host=args.host, port=args.port, debug=False, use_reloader=False)
    return 0


def _auto(source, args: argparse.Namespace) -> int:
    from edge.errors import UserError
    from train.labeling.decisions import LabelDB

    if args.from_truth == (args.min_confidence is not None):
        raise UserError("give either --min-confidence P or --from-truth")
    db = LabelDB(source.labels_db)
    decided = db.all()
    accepted = left = 0
    for sample in source.samples():
        if sample.sample_id in decided:
            continue
        if args.from_truth:
            label, source_name = sample.truth, "truth"
        else:
            ok = sample.confidence is not None and sample.confidence >= args.min_confidence
            label, source_name = (sample.predicted if ok else None), "auto"
        if label:
            db.decide(sample.sample_id, label, source=source_name)
            accepted += 1
        else:
            left += 1
    print(f"auto-labeled {accepted} samples; {left} left for a person")
    return 0


def _status(source) -> None:
    from train.labeling.decisions import LabelDB

    decisions = LabelDB(source.labels_db).all()
    samples = source.samples()
    labels = Counter(d.label for d in decisions.values() if not d.discarded)
    discarded = sum(d.discarded for d in decisions.values())
    undecided = sum(s.sample_id not in decisions for s in samples)
    print(f"{source.root}: {len(samples)} samples, {len(samples) - undecided} decided "
          f"({discarded} discarded), {undecided} undecided")
    for label, count in sorted(labels.items()):
        print(f"  {label}: {count}")
