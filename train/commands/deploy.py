"""`edgekit deploy VERSION --to PATH|user@host:PATH`: copy, verify on the target, swap `current`."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

NAME = "deploy"
HELP = "copy a registered version (or a bundle) to the car, verify it there, switch `current` atomically"
NEEDS: tuple[str, ...] = ()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("version", nargs="?",
                        help="v0003, NAME:v0003, production, latest, or a bundle folder / .tar.gz")
    parser.add_argument("--to", required=True, metavar="PATH|USER@HOST:PATH",
                        help="the car's edgekit folder (holds releases/ and the `current` link)")
    parser.add_argument("--keep", type=int, default=3, help="releases kept on the target (default 3)")
    parser.add_argument("--rollback", action="store_true", help="switch `current` back to `previous`")
    parser.add_argument("--status", action="store_true", help="only show what the target holds")
    parser.add_argument("--registry", type=Path, default=None, help="registry folder (default ./models)")
    parser.add_argument("--name", help="model name in the registry (when it holds several)")
    parser.add_argument("--release", help="release name on the target (default: the version)")
    parser.add_argument("--target-edgekit", metavar="CMD",
                        help="the target's edgekit command, e.g. '/home/pi/venv/bin/edgekit' "
                             "(default: `edgekit` over ssh; this Python locally)")
    parser.add_argument("--ssh", metavar="CMD",
                        help="ssh command, e.g. 'ssh -F ~/car/ssh_config' (default: $EDGEKIT_SSH, else ssh; "
                             "BatchMode=yes and StrictHostKeyChecking=yes always come first)")
    parser.add_argument("--verify-timeout", type=float, default=300.0, help="seconds (default 300)")
    parser.add_argument("--lock-wait", type=float, default=10.0,
                        help="seconds to wait for another deploy to the same car to finish (default 10)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    from edge.bundle import read_manifest, reported_version
    from train.deploy import DeployError, deploy, open_target, registered_digest, rollback, status

    target = open_target(args.to, edgekit=args.target_edgekit, ssh=args.ssh,
                         verify_timeout=args.verify_timeout, lock_wait=args.lock_wait)
    if args.status:
        print(json.dumps(status(target), indent=2))
        return 0
    if args.rollback:
        if args.version:
            raise DeployError("--rollback switches to the target's previous release: give no VERSION")
        result = rollback(target)
        print(f"rollback: {target.describe()} current -> {result.release} (was {result.previous})")
        return 0
    if not args.version:
        raise DeployError("give the VERSION to deploy (e.g. production or v0003), or --rollback")
    with tempfile.TemporaryDirectory(prefix="edgekit-deploy-") as scratch:
        bundle_dir, release, registry_entry = _resolve(args, Path(scratch))
        expected = registered_digest(registry_entry[1]) if registry_entry is not None else None
        result = deploy(bundle_dir, release, target, keep=args.keep, expected_digest=expected)
        bundle_version = reported_version(read_manifest(bundle_dir))
    if registry_entry is not None:
        registry, entry = registry_entry
        registry.log_event(entry.name, "deploy", entry.version, result.previous, f"to {target.describe()}")
    if args.json:
        print(json.dumps({**result.__dict__, "bundle_version": bundle_version}, indent=2, default=str))
        return 0
    report = result.verify_report
    print(f"copy: {'copied' if result.copied else 'already on the target'} "
          f"{target.describe()}/releases/{release}")
    print(f"verify: ok on the target ({report.get('interpreter', '?')}, self-test {report.get('self_test', '?')}, "
          f"signature {report.get('signature', '?')}, digest {str(report.get('digest', '?'))[:16]}...)")
    print(f"model: release {release} holds bundle {bundle_version} (the runtime reports this as model_version)")
    print(f"switch: current -> {release} (previous: {result.previous or 'none'})")
    print(f"health: {report.get('health_check', '?')}")
    if result.removed:
        print(f"removed old releases: {', '.join(result.removed)}")
    return 0


def _resolve(args: argparse.Namespace, scratch: Path):
    """(bundle folder, release name, (registry, entry) or None) for the VERSION argument."""
    from edge.bundle import open_bundle
    from train.deploy import DeployError
    from train.registry import Registry

    path = Path(args.version)
    if path.exists():
        bundle = open_bundle(path, verify=True, extract_to=scratch / "bundle")
        release = args.release or bundle.version or path.name.split(".")[0]
        return bundle.root, release, None
    if "/" in args.version or args.version.endswith((".tar.gz", ".tgz")):
        raise DeployError(f"bundle {args.version} does not exist: check the path")
    registry = Registry(args.registry)
    ref = f"{args.name}:{args.version}" if args.name and ":" not in args.version else args.version
    entry = registry.resolve(ref)
    open_bundle(entry.bundle_path, verify=True)  # checksums on this side before copying
    return entry.bundle_path, args.release or entry.version, (registry, entry)
