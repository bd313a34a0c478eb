"""`edgekit pull SRC DEST`: bring a car's new field samples into a host-side store."""

from __future__ import annotations

import argparse
import json

NAME = "pull"
HELP = "copy new field samples from a car's store (folder, .tar, user@host:path) into a host store"
NEEDS = ()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", help="the car's store: a mounted folder, an exported .tar, or user@host:path "
                                    "(rsync over ssh; $EDGEKIT_SSH names the ssh command, e.g. 'ssh -F car.conf')")
    parser.add_argument("dest", help="host-side store folder (created if missing)")
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")


def run(args: argparse.Namespace) -> int:
    from edge.samplelog.pull import pull, refused_line

    counts = pull(args.src, args.dest, progress=not args.json)
    if args.json:
        print(json.dumps(counts))
    else:
        print(f"pulled {counts['new']} new samples ({counts['duplicates']} already there, "
              f"{counts['missing_in_source']} missing in the source); {args.dest} holds {counts['dest_rows']}")
        if counts["refused"]:
            print(refused_line(counts))
    return 0
