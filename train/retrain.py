"""Retrain and decide: fine-tune from production, convert to int8 with the converter's gates,
compare candidate and production as TFLite on the same splits, gate, register, report.

Example:
    >>> result = retrain(RetrainOptions(data="data/field.npz", split_file="splits/field.json",
    ...                                 registry="models", name="signals", critical=["red"]))
    >>> result.decision.promote, result.report
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge.bundle import open_bundle
from edge.errors import UserError
from train.gate import Evaluation, GateDecision, GateRules, decide, evaluate_bundle
from train.registry import Registry, format_version, write_json_atomic

log = logging.getLogger(__name__)
EVAL_SPLITS = ("val", "fresh_test")


# The recipe a retrain inherits from production's training run; each RetrainOptions field of the
# same name (not None) overrides one of them. Fine-tuning scales the inherited learning rate.
RECIPE_FIELDS = ("model", "image_size", "epochs", "batch_size", "optimizer", "learning_rate", "lr_schedule",
                 "weight_decay", "label_smoothing", "class_weights", "bn_momentum", "augment", "patience",
                 "restore_best", "checkpoint")
FINE_TUNE_LR_SCALE = 0.3  # fine-tuning starts from trained weights: 0.3 x the parent's rate (1e-3 -> 3e-4)


@dataclass
class RetrainOptions:
    """What `edgekit retrain` can be told (see its --help). Recipe fields left None come from the
    production model's training run (see `inherited_recipe`)."""

    data: str
    split_file: str
    name: str | None = None
    registry: str | None = None
    out: str | None = None
    from_scratch: bool = False
    model: str | None = None
    image_size: tuple[int, int] | None = None
    epochs: int | None = None
    batch_size: int | None = None
    optimizer: str | None = None
    learning_rate: float | None = None
    lr_schedule: str | None = None
    weight_decay: float | None = None
    label_smoothing: float | None = None
    class_weights: bool | str | None = None
    bn_momentum: float | None = None
    augment: dict[str, Any] | None = None  # AugmentConfig options, e.g. {"horizontal_flip": True}
    patience: int | None = None
    restore_best: bool | None = None
    checkpoint: str | None = None
    seed: int = 1
    rules: GateRules = field(default_factory=GateRules)
    promote: bool = True
    max_convert_drop: float = 1.0
    max_convert_class_drop: float = 3.0
    rep_size: int = 300
    verbose: int = 0


def parent_recipe(production: Any) -> tuple[dict[str, Any], str]:
    """The training config production was made with, and where it was found ({} and why not)."""
    if production is None:
        return {}, "no production model: edgekit's training defaults"
    config = production.lineage.get("train_config")
    if isinstance(config, dict):
        return config, f"{production.version}'s registry lineage"
    run_dir = production.lineage.get("run_dir")
    if run_dir and (Path(run_dir) / "run.json").is_file():
        try:
            config = json.loads((Path(run_dir) / "run.json").read_text()).get("config")
        except ValueError:
            config = None
        if isinstance(config, dict):
            return config, f"{Path(run_dir) / 'run.json'}"
    return {}, f"{production.version} records no training recipe: edgekit's training defaults"


def inherited_recipe(options: RetrainOptions, parent: dict[str, Any], fine_tune: bool) -> dict[str, Any]:
    """The TrainConfig recipe fields: the parent's, each overridden by an option that is not None."""
    recipe = {k: parent[k] for k in RECIPE_FIELDS if parent.get(k) is not None}
    if "image_size" in recipe:
        recipe["image_size"] = tuple(recipe["image_size"])
    if fine_tune and "learning_rate" in recipe:
        recipe["learning_rate"] = round(float(recipe["learning_rate"]) * FINE_TUNE_LR_SCALE, 8)
    elif fine_tune:
        recipe["learning_rate"] = 3e-4
    for key in RECIPE_FIELDS:
        value = getattr(options, key)
        if value is not None:
            recipe[key] = dict(value) if key == "augment" else value
    return recipe


@dataclass
class RetrainResult:
    run_dir: Path
    version: str
    decision: GateDecision
    evaluations: dict[str, dict[str, Any]]
    promoted: bool
    report: Path


def retrain(options: RetrainOptions) -> RetrainResult:
    """Train a candidate, convert it, evaluate it against production, gate, register, report."""
    from convert.data import load_split_data
    from convert.pipeline import ConvertOptions, convert
    from train.training import TrainConfig, train

    registry = Registry(options.registry)
    name = options.name or registry.default_name(None)
    production = registry.production(name)
    parent_keras = production.keras_path if production else None
    if not options.from_scratch and production is not None and parent_keras is None:
        raise UserError(f"production {name} {production.version} has no model.keras to fine-tune from: "
                        "use --from-scratch")
    fine_tune = not options.from_scratch and parent_keras is not None
    out = Path(options.out or f"runs/retrain-{time.strftime('%Y%m%d-%H%M%S')}")
    version = format_version((registry.latest(name).number if registry.latest(name) else 0) + 1)

    parent, found_in = parent_recipe(production)
    recipe = inherited_recipe(options, parent, fine_tune)
    overridden = sorted(k for k in RECIPE_FIELDS if getattr(options, k) is not None)
    log.info("train: %s from %s; recipe from %s%s", "fine-tune" if fine_tune else "from scratch",
             production.version if fine_tune else recipe.get("model", "baseline"), found_in,
             f", overridden: {', '.join(overridden)}" if overridden else "")
    run = train(TrainConfig(
        dataset=options.data, split_file=options.split_file, out=str(out), seed=options.seed,
        init_model=str(parent_keras) if fine_tune else None, verbose=options.verbose, **recipe,
    ))
    _record_inheritance(out / "run.json", found_in, parent, overridden, fine_tune)
    if run.status not in ("completed", "early-stopped"):
        raise UserError(f"training {run.status}: {run.message or 'see ' + str(out)}")

    log.info("convert: int8 with the converter's gates")
    data = load_split_data(options.data, Path(options.split_file), None)
    converted = convert(ConvertOptions(
        source=out, modes=["int8"], out=out / "bundle", overwrite=True, name=name, version=version,
        rep_size=max(1, min(options.rep_size, len(data.labels("train")))),
        max_drop=options.max_convert_drop, max_class_drop=options.max_convert_class_drop,
        force=options.rules.force, min_class_images=options.rules.min_class_images,
    ))[0]
    if not converted.ok or converted.bundle is None:
        raise UserError("the int8 conversion failed its gates: " + "; ".join(converted.gate_failures))
    candidate_bundle = Path(converted.bundle)

    spec = open_bundle(candidate_bundle).preprocess
    evaluations: dict[str, dict[str, Any]] = {}
    results: dict[str, tuple[Evaluation, Evaluation | None]] = {}
    for split in EVAL_SPLITS:
        if split not in data.indices or len(data.indices[split]) == 0:
            continue
        images, labels = data.images(split, spec), data.labels(split)
        cand = evaluate_bundle(candidate_bundle, images, labels)
        prod = evaluate_bundle(production.bundle_path, images, labels) if production else None
        results[split] = (cand, prod)
        evaluations[split] = {"candidate": cand.to_dict(), "production": prod.to_dict() if prod else None}
    if not results:
        raise UserError(f"{options.split_file} has no val or fresh_test samples to evaluate on")
    decision = decide(results, options.rules)

    run_info = json.loads((out / "run.json").read_text())
    entry = registry.register(
        name, candidate_bundle, keras_model=out / "model.keras",
        metrics={**run.summary, "evaluations": evaluations, "gate": decision.to_dict(),
                 "val_accuracy": results.get("val", next(iter(results.values())))[0].accuracy / 100},
        lineage={"dataset": options.data, "dataset_sha256": run_info.get("dataset_sha256"),
                 "split_file": options.split_file, "split_sha256": run_info.get("split_sha256"),
                 "run_dir": str(out.resolve()), "fine_tuned": fine_tune,
                 "train_config": run_info.get("config"), "recipe": run_info.get("recipe"),
                 "spec": _read_json(out / "spec.json")},
        parent=production.version if production else "",
    )
    promoted = False
    if decision.promote and options.promote:
        registry.promote(name, entry.version, reason="retrain gate passed")
        promoted = True
    report = write_report(out / "report", entry.version, production.version if production else None,
                          results, decision, promoted, data, out)
    return RetrainResult(out, entry.version, decision, evaluations, promoted, report)


def _record_inheritance(run_json: Path, found_in: str, parent: dict[str, Any], overridden: list[str],
                        fine_tune: bool) -> None:
    """run.json "inherited": where the recipe came from and which fields the options changed."""
    info = json.loads(run_json.read_text())
    info["inherited"] = {"from": found_in, "parent_config": parent, "overridden": overridden,
                         "fine_tune_lr_scale": FINE_TUNE_LR_SCALE if fine_tune and "learning_rate" not in overridden
                         else None}
    write_json_atomic(run_json, info)


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _pct(value: float | None) -> str:
    """A percentage as the report prints every figure: one decimal, '-' when there is none."""
    return "-" if value is None else f"{value:.1f}"


def write_report(folder: Path, version: str, production: str | None,
                 results: dict[str, tuple[Evaluation, Evaluation | None]], decision: GateDecision,
                 promoted: bool, data: Any, run_dir: Path) -> Path:
    """report.md + confusion/delta PNGs; returns the Markdown path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    names = list(data.class_names)
    lines = [f"# Retrain report: candidate {version} vs production {production or 'none'}", ""]
    verdict = "PROMOTED" if promoted else ("passed the gate (not promoted)" if decision.promote else "REJECTED")
    lines += [f"**Decision: {verdict}**", ""]
    lines += [f"- {r}" for r in decision.reasons] or ["- every split within the margins"]
    lines += ["", "## Data", "", "| split | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for split, idx in data.indices.items():
        counts = np.bincount(data.labels(split), minlength=len(names)) if len(idx) else np.zeros(len(names), int)
        lines.append(f"| {split} | " + " | ".join(str(int(c)) for c in counts) + " |")
    groups = data.dataset.groups
    sources = data.dataset.sources
    field_mask = np.char.startswith(sources.astype(str), "store:")
    if field_mask.any():
        lines += ["", "Field samples per session:", ""]
        for session in sorted(set(groups[field_mask].tolist())):
            sel = field_mask & (groups == session)
            counts = np.bincount(data.dataset.labels[sel], minlength=len(names))
            lines.append(f"- {session}: " + ", ".join(f"{n} {int(c)}" for n, c in zip(names, counts, strict=True) if c))
    for split, (cand, prod) in results.items():
        overall = decision.deltas[split]["overall"] if prod else None
        lines += ["", f"## {split}", "",
                  f"Accuracy: {_pct(prod.accuracy) if prod else '-'} -> {_pct(cand.accuracy)} % "
                  f"(production -> candidate{'' if overall is None else f', {overall:+.1f} pt'}).", "",
                  "Per class, in percent, production -> candidate. The gate judges critical classes on recall "
                  "and the others on F1 (delta column, points).", "",
                  "| class | recall % | F1 % | gate delta (pt) |", "|---|---|---|---|"]
        for cls in names:
            delta = decision.deltas[split]["per_class"].get(cls) if prod else None
            measure = decision.deltas[split].get("measure", {}).get(cls, "")
            lines.append(f"| {cls} | {_pct(prod.per_class.get(cls)) if prod else '-'} -> {_pct(cand.per_class[cls])} "
                         f"| {_pct(prod.per_class_f1.get(cls)) if prod else '-'} -> {_pct(cand.per_class_f1.get(cls))} "
                         f"| {'-' if delta is None else f'{delta:+.1f} ({measure})'} |")
        figure, axes = plt.subplots(1, 3 if prod else 1, figsize=(15 if prod else 5, 4.5), squeeze=False)
        panels = [("candidate " + version, cand)] + ([("production " + (production or ""), prod)] if prod else [])
        for ax, (title, ev) in zip(axes[0], panels, strict=False):
            ax.imshow(np.asarray(ev.confusion), cmap="Blues")
            ax.set_title(f"{title}: {ev.accuracy:.1f}%")
            ax.set_xticks(range(len(names)), names, rotation=45)
            ax.set_yticks(range(len(names)), names)
            ax.set_xlabel("predicted")
            ax.set_ylabel("true")
            for (i, j), value in np.ndenumerate(np.asarray(ev.confusion)):
                ax.text(j, i, str(value), ha="center", va="center", fontsize=8)
        if prod:
            deltas = [decision.deltas[split]["per_class"].get(c) or 0.0 for c in names]
            axes[0][2].bar(names, deltas, color=["tab:green" if d >= 0 else "tab:red" for d in deltas])
            axes[0][2].axhline(0, color="black", linewidth=0.8)
            axes[0][2].set_title("per-class gate delta (pt; F1, critical: recall)")
        figure.tight_layout()
        figure.savefig(folder / f"{split}.png", dpi=90)
        plt.close(figure)
        lines += ["", f"![{split}]({split}.png)"]
    if (run_dir / "curves.png").is_file():
        lines += ["", "## Training curves", "", "![curves](../curves.png)"]
    path = folder / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "decision.json").write_text(json.dumps({"version": version, "production": production,
                                                      "promoted": promoted, **decision.to_dict()}, indent=2))
    return path
