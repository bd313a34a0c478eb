"""Replay model inputs through the car's interpreter wrapper (edge.interpreter) and save the raw outputs.

Runs the same on the host and inside the emulated car, so outputs can be compared across
architectures: `python -m tests.car.replay MODEL INPUTS.npy OUTPUTS.npy` prints one JSON line
naming the interpreter and machine.
"""

from __future__ import annotations

import json
import platform
import sys

import numpy as np

from edge.interpreter import TFLiteModel


def main(model_path: str, inputs_path: str, outputs_path: str) -> None:
    model = TFLiteModel(model_path, num_threads=1)
    inputs = np.load(inputs_path, allow_pickle=False)
    outputs = np.stack([model.raw_invoke(x) for x in inputs])
    np.save(outputs_path, outputs, allow_pickle=False)
    print(json.dumps({"name": model.backend, "version": model.backend_version, "machine": platform.machine()}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
