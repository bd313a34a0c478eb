"""`edgekit models list|show|register|promote|rollback`: the model registry (no TensorFlow needed)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "models"
HELP = "the model registry: list, show, register, promote or roll back versions"
NEEDS: tuple[str, ...] = ()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--registry", type=Path, default=None,
                        help="registry folder (default ./models or $EDGEKIT_MODELS)")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    p = sub.add_parser("list", help="every version of every model (* = production)")
    p.add_argument("--name", help="only this model")

    p = sub.add_parser("show", help="one version: metrics, lineage, bundle manifest")
    p.add_argument("version", nargs="?", default="production",
                   help="v0003, NAME:v0003, production or latest (default production)")
    p.add_argument("--name", help="model name (needed when the registry holds several)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("register", help="copy a bundle in as the next version")
    p.add_argument("bundle", type=Path, help="bundle directory")
    p.add_argument("--name", required=True, help="model name")
    p.add_argument("--keras", type=Path, help="the model.keras it came from")
    p.add_argument("--run", type=Path, help="run folder (its run.json/summary.json become lineage/metrics)")
    p.add_argument("--parent", help="parent version (default: current production)")
    p.add_argument("--promote", action="store_true", help="also make it production")

    p = sub.add_parser("promote", help="make a version production")
    p.add_argument("version")
    p.add_argument("--name")
    p.add_argument("--reason", default="manual")

    p = sub.add_parser("rollback", help="production goes back to the version before")
    p.add_argument("--name")
    p.add_argument("--to", help="a specific version instead of the previous one")
    p.add_argument("--reason", default="manual")


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
    if action == "promote":
        version = args.version.partition(":")[2] or args.version
        entry = registry.promote(name, version, reason=args.reason)
        print(f"{name}: production is now {entry.version}")
    elif action == "rollback":
        entry = registry.rollback(name, to=args.to, reason=args.reason)
        print(f"{name}: rolled back, production is now {entry.version}")
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
        print(f"{model}  (production: {production.version if production else 'none'})")
        for entry in registry.versions(model):
            mark = "*" if production and entry.version == production.version else " "
            created = entry.lineage.get("registered_at", "")
            parent = entry.parent or "-"
            print(f"  {mark} {entry.version}  {created:24}  parent {parent:6}  bundle {entry.bundle_version}  "
                  f"{_headline(entry.metrics)}".rstrip())
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
    }
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True, default=str))
        return 0
    print(f"{entry.name} {entry.version}{'  (production)' if data['production'] else ''}")
    print(f"  bundle_version: {data['bundle_version']}  (the bundle's own name:version, reported by the car "
          "as model_version; the registry does not rewrite it)")
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
            "preprocess", "model_name", "preset", "seed") if k in run_info})
        lineage["run_dir"] = str(args.run.resolve())
        spec = _read_optional(args.run / "spec.json")
        if spec:
            lineage["spec"] = spec
        metrics.update(_read_optional(args.run / "summary.json"))
        if args.keras is None and (args.run / "model.keras").is_file():
            args.keras = args.run / "model.keras"
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
