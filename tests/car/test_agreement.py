"""Cross-architecture agreement as a checked figure, and a wrong kernel path that verify must catch.

The same int8 model replays a few hundred images on x86 (the converter's machine) and on the
emulated Pi 4 and Pi 5, under both interpreters. For every (golden maker, runner) pair, the
largest output difference in quantization steps must stay inside edge.bundle.agreement_rule(),
and top-1 must agree wherever the top two outputs are further apart than the rule lets either
move. `python -m tests.car.test_agreement` prints the table (docs/edge.md quotes it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge.bundle import agreement_rule, read_manifest
from tests.car.conftest import skip_or_fail
from tests.car.rootfs import CPUINFO, CPUS, INTERPRETERS, REPO, run_in_car

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]  # emulated, and the first one trains car_bundle
REPLAY_IMAGES = 200
HOST_PYTHONS = {"litert": REPO / ".venv" / "bin" / "python", "tflite": REPO / ".venv-pi214" / "bin" / "python"}


def replay_inputs(data: Path, count: int = REPLAY_IMAGES) -> np.ndarray:
    """Held-out images of the bundle's dataset (the model's input size already): test groups first,
    then validation, by the split file the training run wrote beside it."""
    assignments = json.loads((data.parent / "run" / "split.json").read_text())["assignments"]
    with np.load(data, allow_pickle=False) as d:
        images, groups = d["images"], d["groups"]
    split = np.array([assignments.get(str(group), "") for group in groups])
    order = np.concatenate([np.flatnonzero(split == "test"), np.flatnonzero(split == "val")])
    assert len(order) >= count, f"only {len(order)} held-out images in {data}"
    return images[order[:count]]


def _meta(stdout: str) -> dict[str, str]:
    return json.loads([line for line in stdout.splitlines() if line.startswith("{")][-1])


def replay(where: str, interpreter: str, folder: Path, cpu: str = "", cpuinfo: Path | None = None) -> tuple[dict, np.ndarray]:
    """(interpreter meta, raw outputs) for model.tflite on inputs.npy in `folder`, on the host or in the car."""
    out = f"out-{where}-{interpreter}-{cpu or 'x86'}.npy"
    if where == "host":
        python = HOST_PYTHONS[interpreter]
        if not python.exists():
            skip_or_fail(f"{python} missing (make pi-env / make env builds it)")
        done = subprocess.run([str(python), "-m", "tests.car.replay", str(folder / "model.tflite"),
                               str(folder / "inputs.npy"), str(folder / out)], capture_output=True, text=True,
                              cwd=REPO, timeout=600, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    else:
        done = run_in_car(["python", "-m", "tests.car.replay", "/data/model.tflite", "/data/inputs.npy",
                           f"/data/{out}"], cpu=cpu, interpreter=interpreter, binds={folder: "/data"},
                          cpuinfo=cpuinfo, timeout=900)
    assert done.returncode == 0, f"replay {where} {interpreter} {cpu}: {done.stderr[-2000:]}"
    return _meta(done.stdout), np.load(folder / out, allow_pickle=False)


def margins(outputs: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 output, in quantization steps."""
    top = np.sort(outputs.astype(np.int64), axis=-1)
    return top[:, -1] - top[:, -2]


def compare(maker: tuple[dict, np.ndarray], runner: tuple[dict, np.ndarray]) -> dict[str, Any]:
    """One pair's figures under the rule edge.bundle would apply to golden outputs made by `maker`."""
    (made_by, expected), (ran, actual) = maker, runner
    rule = agreement_rule(made_by, (ran["name"], ran["version"], ran["machine"]), integer=True)
    steps = np.abs(actual.astype(np.int64) - expected.astype(np.int64))
    flips = actual.argmax(-1) != expected.argmax(-1)
    apart = margins(expected) > 2 * rule.max_diff
    return {"rule": rule.text, "allowed_steps": rule.max_diff, "max_steps": int(steps.max()),
            "outputs_off": int((steps > 0).sum()), "outputs": int(steps.size), "top1_flips": int(flips.sum()),
            "flips_where_apart": int((flips & apart).sum()), "apart": int(apart.sum())}


def agreement_table(bundle: Path, data: Path, folder: Path) -> dict[str, dict[str, Any]]:
    """Replay everywhere and compare every ordered pair of (interpreter, machine/CPU) configurations."""
    shutil.copy2(bundle / "model.tflite", folder / "model.tflite")
    np.save(folder / "inputs.npy", replay_inputs(data), allow_pickle=False)
    runs: dict[str, tuple[dict, np.ndarray]] = {}
    for interpreter in sorted(INTERPRETERS):
        runs[f"{interpreter}/x86_64"] = replay("host", interpreter, folder)
        for pi, cpu in sorted(CPUS.items()):
            runs[f"{interpreter}/{pi}"] = replay("car", interpreter, folder, cpu)
    return {f"{a} -> {b}": compare(runs[a], runs[b]) for a in runs for b in runs if a != b}


def test_cross_architecture_agreement_stays_inside_the_rule(car_root, car_bundle, tmp_path):
    manifest = read_manifest(car_bundle["bundle"])
    made_by = manifest["tools"]["interpreter"]
    assert made_by["machine"] == "x86_64", "the converter must record the golden outputs' architecture"
    table = agreement_table(car_bundle["bundle"], car_bundle["data"], tmp_path)
    print(json.dumps(table, indent=1))
    for pair, row in table.items():
        assert row["max_steps"] <= row["allowed_steps"], f"{pair}: {row}"
        assert row["flips_where_apart"] == 0, f"{pair}: {row}"
        assert row["apart"] >= REPLAY_IMAGES // 2, f"{pair}: too few inputs with a clear top-1 to judge: {row}"


def test_a_wrong_kernel_path_fails_verify(car_root, car_bundle, tmp_path):
    """QEMU's default CPU model ('max') took LiteRT down a kernel path with wrong outputs on the
    field data (94% -> 26%). Where that reproduces, the golden self-test must refuse the model."""
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copytree(car_bundle["bundle"], folder / "bundle")
    done = run_in_car(["edgekit", "bundle", "verify", "/data/bundle"], cpu="max", cpuinfo=CPUINFO[CPUS["pi4"]],
                      binds={folder: "/data"})
    if done.returncode != 0:
        assert "self-test failed" in done.stderr, done.stderr
        return
    # verify passed: fine only if this QEMU's 'max' model does not take the wrong path (replay to see)
    shutil.copy2(car_bundle["bundle"] / "model.tflite", folder / "model.tflite")
    np.save(folder / "inputs.npy", replay_inputs(car_bundle["data"]), allow_pickle=False)
    _, right = replay("host", "litert", folder)  # the Pi CPU models agree with it (the test above)
    _, wrong = replay("car", "litert", folder, "max", cpuinfo=CPUINFO[CPUS["pi4"]])
    changed = float((right.argmax(-1) != wrong.argmax(-1)).mean())
    assert changed < 0.05, f"verify passed on a kernel path that changed {changed:.0%} of answers"
    pytest.skip(f"QEMU's 'max' CPU model changed only {changed:.0%} of top-1 answers here: the wrong "
                "kernel path did not reproduce")


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(agreement_table(Path(sys.argv[1]), Path(sys.argv[2]), Path(tmp)), indent=1))
