"""Standalone: load a TFLite model with every interpreter in THIS Python and replay golden inputs.

Run by `edgekit check-runtime` / `edgekit convert --check-runtime` in another
environment (e.g. one built like the car's). It needs only numpy and one of
ai_edge_litert, tflite_runtime or tensorflow; it must not import edgekit.

    python runtime_probe.py MODEL.tflite GOLDEN.npz   -> one JSON report on stdout

It only measures (max difference, top-1 agreement, bit-exactness, this machine's architecture);
convert/runtime_check.py judges the figures with edge.bundle.agreement_rule, the rule the car uses.
"""

import importlib
import importlib.util
import json
import platform
import sys

import numpy as np

BACKENDS = (
    ("ai_edge_litert", "ai_edge_litert.interpreter", "ai-edge-litert"),
    ("tflite_runtime", "tflite_runtime.interpreter", "tflite-runtime"),
    ("tensorflow.lite", "tensorflow", "tensorflow"),
)


def _version(distribution, module):
    # edge.packages.installed_version, repeated: this file must not import edgekit
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover
        return str(getattr(module, "__version__", "unknown"))
    for name in (distribution, distribution + "-cpu"):
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return str(getattr(module, "__version__", "unknown"))


def _to_input(x, detail):
    dtype = np.dtype(detail["dtype"])
    if x.dtype == dtype:
        tensor = x
    elif np.issubdtype(dtype, np.integer):
        scale, zero_point = detail.get("quantization", (0.0, 0))
        values = x.astype(np.float32)
        if scale > 0 and (scale, zero_point) != (1.0, 0):
            values = np.round(values / scale) + zero_point
        info = np.iinfo(dtype)
        tensor = np.clip(values, info.min, info.max).astype(dtype)
    else:
        tensor = x.astype(dtype)
    return tensor.reshape(detail["shape"])


def probe(name, module_name, distribution, model_path, inputs, expected):
    report = {"interpreter": name, "version": None, "machine": platform.machine(), "loads": False,
              "error": None, "outputs_match": None}
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # not installed, or broken against this numpy
        report["error"] = f"not importable: {type(error).__name__}: {(str(error).splitlines() or [''])[0]}"
        return report
    report["version"] = _version(distribution, module)
    cls = module.lite.Interpreter if name == "tensorflow.lite" else module.Interpreter
    try:
        interpreter = cls(model_path=model_path, num_threads=1)
        interpreter.allocate_tensors()
    except Exception as error:
        report["error"] = " ".join(str(error).split())[:500] or type(error).__name__
        return report
    report["loads"] = True
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    try:
        actual = []
        for x in inputs:
            interpreter.set_tensor(inp["index"], _to_input(x, inp))
            interpreter.invoke()
            actual.append(interpreter.get_tensor(out["index"])[0].copy())
        actual = np.stack(actual)
    except Exception as error:
        report["error"] = "runs badly: " + " ".join(str(error).split())[:500]
        report["outputs_match"] = False
        return report
    report["integer"] = bool(np.issubdtype(expected.dtype, np.integer) and np.issubdtype(actual.dtype, np.integer))
    diff = float(np.abs(actual.astype(np.float64) - expected.astype(np.float64)).max()) if actual.shape == expected.shape else float("inf")
    report["max_abs_diff"] = diff
    if actual.shape == expected.shape:
        report["top1_agreement"] = float((actual.argmax(-1) == expected.argmax(-1)).mean())
    report["bit_exact"] = bool(diff == 0)
    return report


def main(argv):
    model_path, golden_path = argv[0], argv[1]
    with np.load(golden_path, allow_pickle=False) as data:
        inputs, expected = data["inputs"], data["outputs"]
    reports = []
    for name, module_name, distribution in BACKENDS:
        if importlib.util.find_spec(module_name.split(".")[0]) is None:
            continue
        reports.append(probe(name, module_name, distribution, model_path, inputs, expected))
    print(json.dumps({"python": sys.executable, "python_version": platform.python_version(),
                      "numpy": np.__version__, "interpreters": reports}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
