"""`edgekit models list|show|register|promote|rollback|history`: the model registry (no TensorFlow needed)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "models"
HELP = "the model registry: list, show, register, promote or roll back versions"
NEEDS: tuple[str, ...] = ()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from edge.cli_options import add_shared_option

    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = sub.add_parser("list", help="every version of every model (* = production, damaged ones marked)")

    show = sub.add_parser("show", help="one version: metrics, lineage, bundle manifest, problems")
    show.add_argument("version", nargs="?", default="production",
                      help="v0003, NAME:v0003, production or latest (default production)")
    show.add_argument("--json", action="store_true", help="print JSON")

    register = sub.add_parser("register", help="copy a bundle in as the next version")
    register.add_argument("bundle", type=Path, help="bundle directory")
    register.add_argument("--keras", type=Path, help="the model.keras it came from")
    register.add_argument("--run", type=Path, help="run folder (its run.json/summary.json become lineage/metrics)")
    register.add_argument("--parent", help="parent version (default: current production)")
    register.add_argument("--promote", action="store_true", help="also make it production")

    promote = sub.add_parser("promote", help="make a version production (verified first; a version the "
                                             "retrain gate rejected needs --force)")
    promote.add_argument("version")
    promote.add_argument("--reason", default="manual")
    promote.add_argument("--force", action="store_true",
                         help="promote a version the retrain gate rejected (recorded as forced)")

    rollback = sub.add_parser("rollback", help="production goes back to the distinct version before it; "
                                               "again walks further back")
    rollback.add_argument("--to", help="a specific version instead of the previous one")
    rollback.add_argument("--reason", default="manual")

    history = sub.add_parser("history", help="every promote, rollback and deploy, oldest first")
    history.add_argument("--json", action="store_true", help="one JSON object per line")

    actions = [listing, show, register, promote, rollback, history]
    add_shared_option(parser, actions, "--registry", type=Path, default=None,
                      help="registry folder (default ./models or $EDGEKIT_MODELS)")
    add_shared_option(parser, actions, "--name", default=None,
                      help="model name (register: required; others: needed when the registry holds several)")


def run(args: argparse.Namespace) -> int:
    from train.registry import Registry

    registry = Registry(args.registry)
    action = args.action
    if action == "list":
        return _list(registry, args.name)
    if action == "show":
        return _show(registry, args)
    if action == "register":
        return _register(registry, args)
    name = registry.default_name(getattr(args, "name", None))
    if action == "history":
        return _history(registry, name, args.json)
    if action == "promote":
        version = args.version.partition(":")[2] or args.version
        before = registry.production(name)
        entry = registry.promote(name, version, reason=args.reason, force=args.force)
        if before is not None and before.version == entry.version:
            print(f"{name}: {entry.version} is already production; nothing changed")
        elif args.force and entry.gate_rejection:
            print(f"{name}: production is now {entry.version} (FORCED past the gate's rejection: "
                  f"{entry.gate_rejection})")
        else:
            print(f"{name}: production is now {entry.version}"
                  + (f" (was {before.version})" if before is not None else ""))
    elif action == "rollback":
        before = registry.production(name)
        entry = registry.rollback(name, to=args.to, reason=args.reason)
        if before is not None and before.version == entry.version:
            print(f"{name}: {entry.version} is already production; nothing changed")
        else:
            print(f"{name}: rolled back from {before.version if before else '-'}, "
                  f"production is now {entry.version}")
    return 0


def _history(registry, name: str, as_json: bool) -> int:
    records = registry.history(name)
    if as_json:
        for record in records:
            print(json.dumps(record, sort_keys=True, default=str))
        return 0
    if not records:
        print(f"{name}: no history yet")
        return 0
    for record in records:
        forced = "  FORCED" if record.get("forced") else ""
        previous = record.get("previous") or "-"
        print(f"{record.get('time', ''):24}  {record.get('action', '?'):8}  {record.get('version', '?')}  "
              f"(was {previous})  {record.get('reason', '')}{forced}".rstrip())
    trail = registry.production_trail(name)
    if trail:
        print(f"production trail (rollback walks back along it): {' -> '.join(trail)}")
    return 0


def _headline(metrics: dict) -> str:
    for key in ("test_accuracy", "val_accuracy", "int8_accuracy", "accuracy"):
        value = metrics.get(key)
        if isinstance(value, int | float):
            return f"{key}={value:.4f}"
    return ""


def _list(registry, name: str | None) -> int:
    names = [registry.default_name(name)] if name else registry.names()
    if not names:
        print(f"no models in {registry.root}")
        return 0
    for model in names:
        production = registry.production(model)
        problem = registry.production_problem(model)
        state = f"BROKEN: {problem}" if problem else (production.version if production else "none")
        print(f"{model}  (production: {state})")
        for entry in registry.versions(model):
            mark = "*" if production and entry.version == production.version else " "
            created = entry.lineage.get("registered_at", "")
            parent = entry.parent or "-"
            flags = "  REJECTED by the gate" if entry.gate_rejection else ""
            if entry.problems:
                print(f"  {mark} {entry.version}  DAMAGED: {entry.problems[0]}")
                continue
            print(f"  {mark} {entry.version}  {created:24}  parent {parent:6}  bundle {entry.bundle_version}  "
                  f"{_headline(entry.metrics)}{flags}".rstrip())
    return 0


def _show(registry, args: argparse.Namespace) -> int:
    ref = args.version
    if args.name and ":" not in ref:
        ref = f"{args.name}:{ref}"
    entry = registry.resolve(ref)
    production = registry.production(entry.name)
    manifest = entry.manifest()
    data = {
        "name": entry.name,
        "version": entry.version,
        "production": bool(production and production.version == entry.version),
        "path": str(entry.path),
        "bundle": str(entry.bundle_path),
        "bundle_version": entry.bundle_version,
        "keras_model": str(entry.keras_path) if entry.keras_path else None,
        "labels": manifest.get("labels"),
        "metrics": entry.metrics,
        "lineage": entry.lineage,
        "gate_rejection": entry.gate_rejection,
        "problems": list(entry.problems),
    }
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True, default=str))
        return 0
    print(f"{entry.name} {entry.version}{'  (production)' if data['production'] else ''}")
    print(f"  bundle_version: {data['bundle_version']}  (the bundle's own name:version, reported by the car "
          "as model_version; the registry does not rewrite it)")
    for problem in entry.problems:
        print(f"  DAMAGED: {problem}")
    if entry.gate_rejection:
        print(f"  REJECTED by the retrain gate: {entry.gate_rejection}")
    for key in ("path", "bundle", "keras_model", "labels"):
        print(f"  {key}: {data[key]}")
    for section in ("metrics", "lineage"):
        print(f"  {section}:")
        for key, value in sorted(data[section].items()):
            text = json.dumps(value, default=str) if isinstance(value, dict | list) else value
            print(f"    {key}: {text}")
    return 0


def _register(registry, args: argparse.Namespace) -> int:
    from train.registry import RegistryError

    lineage: dict = {}
    metrics: dict = {}
    if args.run is not None:
        if not args.run.is_dir():
            raise RegistryError(f"run folder {args.run} does not exist")
        run_info = _read_optional(args.run / "run.json")
        lineage.update({k: run_info.get(k) for k in (
            "dataset", "dataset_sha256", "split_file", "split_sha256", "class_names",
            "preprocess", "model_name", "preset", "seed", "recipe") if k in run_info})
        if isinstance(run_info.get("config"), dict):  # the training recipe a retrain inherits (issue 12)
            lineage["train_config"] = run_info["config"]
        lineage["run_dir"] = str(args.run.resolve())
        spec = _read_optional(args.run / "spec.json")
        if spec:
            lineage["spec"] = spec
        metrics.update(_read_optional(args.run / "summary.json"))
        if args.keras is None and (args.run / "model.keras").is_file():
            args.keras = args.run / "model.keras"
    if not args.name:
        raise RegistryError("models register needs --name NAME (the model the bundle is a version of)")
    entry = registry.register(args.name, args.bundle, keras_model=args.keras,
                              metrics=metrics, lineage=lineage, parent=args.parent)
    print(f"{entry.name}: registered {entry.version} (bundle {entry.bundle_version}) at {entry.path}")
    if args.promote:
        registry.promote(entry.name, entry.version, reason="registered with --promote")
        print(f"{entry.name}: production is now {entry.version}")
    return 0


def _read_optional(path: Path) -> dict:
    from train.registry import RegistryError

    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise RegistryError(f"{path} is not readable JSON ({error})") from error
    return data if isinstance(data, dict) else {}
