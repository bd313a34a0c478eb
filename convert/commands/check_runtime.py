"""`edgekit check-runtime BUNDLE --python PYTHON`: does a bundle load and match in another environment?"""

from __future__ import annotations

import argparse
import sys

NAME = "check-runtime"
HELP = "load and run a bundle's model in other Python environments (e.g. one built like the car's)"
NEEDS: tuple[str, ...] = ()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", help="bundle folder or .tar.gz archive")
    parser.add_argument("--python", action="append", default=[], metavar="PYTHON",
                        help="the environment's python (repeatable; default: this one)")
    parser.add_argument("--json", action="store_true", help="print the reports as JSON")


def run(args: argparse.Namespace) -> int:
    import json

    from convert.runtime_check import check_runtime, environment_ok, format_reports
    from edge.bundle import DEFAULT_FLOAT_ATOL, open_bundle

    bundle = open_bundle(args.bundle, verify=True)
    atol = float(bundle.manifest.get("golden", {}).get("atol") or DEFAULT_FLOAT_ATOL)
    made_by = bundle.manifest.get("tools", {}).get("interpreter", {})
    reports = check_runtime(bundle.model_path, bundle.golden_path, args.python or [sys.executable], atol,
                            made_by=made_by or None)
    if args.json:
        print(json.dumps(reports, indent=2))
    else:
        print(f"runtime check of {args.bundle} ({bundle.name} {bundle.version}, {bundle.manifest.get('mode', '?')}):")
        print(format_reports(reports))
    return 0 if all(environment_ok(r) for r in reports) else 1
