"""`edgekit bundle verify|show PATH`: check or describe a model bundle (car command, no TensorFlow)."""

from __future__ import annotations

import argparse
import json
from typing import Any

NAME = "bundle"
HELP = "verify a model bundle (checksums, labels, golden self-test) or show its manifest"
NEEDS: tuple[str, ...] = ()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bundle_command", metavar="ACTION", required=True)
    verify = sub.add_parser("verify", help="check format version, checksums, labels and the golden self-test")
    verify.add_argument("path", help="bundle folder or .tar.gz archive")
    verify.add_argument("--threads", type=int, default=None, help="interpreter threads (default: all cores)")
    verify.add_argument("--expect-digest", metavar="SHA256",
                        help="refuse the bundle unless its digest (SHA-256 of manifest.json) is this "
                             "(deploy passes the one it sent)")
    show = sub.add_parser("show", help="print the manifest readably")
    show.add_argument("path", help="bundle folder or .tar.gz archive")
    from edge.cli_options import add_shared_option

    add_shared_option(parser, [verify, show], "--json", action="store_true",
                      help="verify: the report as JSON; show: the raw manifest JSON")


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list) and len(value) > 12:
        return f"[{', '.join(map(str, value[:12]))}, ... ({len(value)} items)]"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(", ", ": "))
    return str(value)


def _print_tree(data: dict[str, Any], indent: int = 0) -> None:
    for key, value in data.items():
        if isinstance(value, dict) and value and any(isinstance(v, (dict, list)) for v in value.values()):
            print(f"{' ' * indent}{key}:")
            _print_tree(value, indent + 2)
        elif isinstance(value, dict) and value and indent < 4:
            print(f"{' ' * indent}{key}:")
            for sub_key, sub_value in value.items():
                print(f"{' ' * (indent + 2)}{sub_key}: {_format_value(sub_value)}")
        else:
            print(f"{' ' * indent}{key}: {_format_value(value)}")


def run(args: argparse.Namespace) -> int:
    from edge.bundle import open_bundle, verify_bundle

    if args.bundle_command == "verify":
        report = verify_bundle(args.path, num_threads=args.threads, expected_digest=args.expect_digest)
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            print(f"bundle {report['path']}: OK")
            for key, value in report.items():
                if key != "path":
                    print(f"  {key}: {_format_value(value)}")
        return 0
    bundle = open_bundle(args.path, verify=False)
    if args.json:
        print(json.dumps(bundle.manifest, indent=2))
    else:
        print(f"bundle {bundle.source} ({bundle.name} {bundle.version}); not verified: run `edgekit bundle verify`")
        _print_tree(bundle.manifest)
    return 0
