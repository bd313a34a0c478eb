"""Can a bundle's golden set tell models apart? The old choice (the first 8 images of the split) vs
the converter's (convert/golden.py), on a demo folder's two releases.

For each golden set, two attacks under a re-hashed manifest (the same as tests/faults/test_bundle.py):
the other release's model, and 16 flipped weight bytes. Reported: the largest output difference in
quantization steps, top-1 agreement, and the verdicts of the exact rule and of the
other-interpreter rule (edge.bundle.agreement_rule).

    edgekit demo --quick --out /tmp/demo
    .venv/bin/python bench/golden_sets.py /tmp/demo      # writes bench/results/golden-sets.md
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from convert.data import load_split_data  # noqa: E402
from edge.bundle import INTEGER_STEPS_OTHER_INTERPRETER, BundleError, open_bundle, verify_bundle  # noqa: E402
from edge.interpreter import TFLiteModel  # noqa: E402
from tests.faults.test_bundle import flip_weights, rehash  # noqa: E402


def _copy(release: Path, folder: Path, model: TFLiteModel, inputs: np.ndarray | None) -> Path:
    shutil.copytree(release, folder)
    (folder / ".accepted-digest").unlink(missing_ok=True)
    if inputs is not None:  # the old choice, with this model's outputs
        np.savez(folder / "golden.npz", inputs=inputs, outputs=np.stack([model.raw_invoke(x) for x in inputs]))
        rehash(folder)
    return folder


def main(demo: Path) -> str:
    releases = demo / "car" / "releases"
    mine, other = releases / "v0001", releases / "v0002"
    bundle = open_bundle(mine, verify=False)
    lineage = bundle.manifest["lineage"]
    data = load_split_data(lineage["dataset"], Path(lineage["split_file"]), bundle.labels)
    first8 = data.images("val", bundle.preprocess)[:8]
    model = TFLiteModel(mine / "model.tflite", num_threads=1)
    rows = ["| golden set | its top outputs | predicted classes | attack | max diff (steps) | top-1 agreement "
            f"| exact rule | other-interpreter rule ({INTEGER_STEPS_OTHER_INTERPRETER} steps) |",
            "|---|---|---|---|---:|---:|---|---|"]
    with tempfile.TemporaryDirectory() as scratch:
        for name, inputs in (("first 8 of val (old)", first8), ("converter's selection (new)", None)):
            for attack in ("v0002's model", "16 flipped weight bytes"):
                folder = _copy(mine, Path(scratch) / f"{len(rows)}", model, inputs)
                flatbuffer = (folder / "model.tflite").read_bytes()
                replaced = (other / "model.tflite").read_bytes() if attack.startswith("v0002") else flip_weights(flatbuffer)
                (folder / "model.tflite").write_bytes(replaced)
                rehash(folder)
                with np.load(folder / "golden.npz", allow_pickle=False) as golden:
                    gi, go = golden["inputs"], golden["outputs"]
                actual = np.stack([TFLiteModel(folder / "model.tflite", num_threads=1).raw_invoke(x) for x in gi])
                diff = int(np.abs(actual.astype(int) - go.astype(int)).max())
                top1 = float((actual.argmax(1) == go.argmax(1)).mean())
                try:
                    verify_bundle(folder, num_threads=1)
                    exact = "passes (not caught)"
                except BundleError:
                    exact = "fails (caught)"
                loose = ("passes (not caught)" if diff <= INTEGER_STEPS_OTHER_INTERPRETER and top1 == 1.0
                         else "fails (caught)")
                rows.append(f"| {name} | {sorted(go.max(1).tolist())} | {sorted(set(go.argmax(1).tolist()))} | "
                            f"{attack} | {diff} | {top1:.0%} | {exact} | {loose} |")
    return "\n".join(rows)


if __name__ == "__main__":
    table = main(Path(sys.argv[1]))
    out = ROOT / "bench" / "results" / "golden-sets.md"
    out.write_text(f"# Golden sets: old vs new (`bench/golden_sets.py {Path(sys.argv[1]).name}`)\n\n{table}\n", encoding="utf-8")
    print(table)
