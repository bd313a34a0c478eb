"""Bundle reading and verification: every bad bundle is a one-line BundleError."""

from __future__ import annotations

import io
import json
import platform
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from convert.bundle_writer import seal
from edge.bundle import BundleError, file_sha256, open_bundle, self_test, verify_bundle
from edge.interpreter import TFLiteModel
from tests.conftest import DEVICE_PYTHON, run_edgekit
from tests.tiny_bundles import rewrite_golden


def _copy(bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(bundle, tmp_path / "b"))


def _edit_manifest(folder: Path, **changes) -> None:
    """Change manifest fields and redo the digest (as an attacker could): only later checks can catch it."""
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest))
    seal(folder)


def test_verify_folder_and_archive(bundles):
    for path in (bundles["int8"], bundles["int8_archive"], bundles["float16"]):
        report = verify_bundle(path, num_threads=1)
        assert report["self_test"] == "ok" and report["checksums"] == "ok"
    assert verify_bundle(bundles["int8"])["rule"] == "exact"
    assert verify_bundle(bundles["float16"])["rule"].startswith("atol=")


def test_open_bundle_fields(bundles):
    bundle = open_bundle(bundles["int8"])
    assert bundle.labels == ["red", "green", "blue", "yellow"]
    assert bundle.preprocess.input_size == (16, 16)
    assert bundle.input_dtype == "uint8" and bundle.version == "1"
    assert abs(sum(bundle.training_distribution.values()) - 1) < 1e-3


def test_changed_byte_in_model(bundles, tmp_path):
    folder = _copy(bundles["int8"], tmp_path)
    data = bytearray((folder / "model.tflite").read_bytes())
    data[len(data) // 2] ^= 0x01
    (folder / "model.tflite").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="model.tflite .* does not match its checksum"):
        verify_bundle(folder)


def test_unknown_format_version(bundles, tmp_path):
    folder = _copy(bundles["int8"], tmp_path)
    _edit_manifest(folder, format_version=99)
    with pytest.raises(BundleError, match="format version 99"):
        open_bundle(folder)


def test_labels_do_not_match_output_size(bundles, tmp_path):
    folder = _copy(bundles["int8"], tmp_path)
    _edit_manifest(folder, labels=["red", "green", "blue"])
    with pytest.raises(BundleError, match="3 labels but the model gives 4 outputs"):
        verify_bundle(folder)


def _rewrite_golden(folder, change_outputs, made_by=None):
    rewrite_golden(folder, change_outputs, None if made_by is None else lambda m: m["tools"].update(interpreter=made_by))
    bundle = open_bundle(folder)
    return bundle, TFLiteModel(bundle.model_path, num_threads=1)


def _nudge_runner_up(outputs, steps):
    """Move each golden output's second-best class by `steps`, never changing the top-1."""
    outputs = outputs.astype(np.int64)
    for row in outputs:
        order = np.argsort(row)
        row[order[-2]] = max(row[order[-2]] - steps, 0)
    return outputs.astype(np.uint8)


def test_golden_mismatch_fails_self_test(bundles, tmp_path):
    def flip_one_bit(outputs):
        outputs[0, 0] ^= 1
        return outputs

    bundle, model = _rewrite_golden(_copy(bundles["int8"], tmp_path), flip_one_bit)
    with pytest.raises(BundleError, match=r"does not reproduce the golden outputs \(exact;"):
        self_test(bundle, model)


def test_other_interpreter_allows_a_few_steps_but_not_a_different_label(bundles, tmp_path):
    from edge.bundle import INTEGER_STEPS_OTHER_INTERPRETER

    other = {"name": "tflite_runtime", "version": "2.14.0"}
    bundle, model = _rewrite_golden(_copy(bundles["int8"], tmp_path / "a"),
                                    lambda o: _nudge_runner_up(o, 2), made_by=other)
    report = self_test(bundle, model)
    steps = f"within {INTEGER_STEPS_OTHER_INTERPRETER} steps"
    assert report["max_abs_diff"] > 0 and steps in report["rule"]

    bundle, model = _rewrite_golden(_copy(bundles["int8"], tmp_path / "b"),
                                    lambda o: _nudge_runner_up(o, 40), made_by=other)
    with pytest.raises(BundleError, match=steps):
        self_test(bundle, model)

    def swap_top_two(outputs):
        for row in outputs:
            order = np.argsort(row)
            row[order[-1]], row[order[-2]] = row[order[-2]], row[order[-1]]
        return outputs

    bundle, model = _rewrite_golden(_copy(bundles["int8"], tmp_path / "c"), swap_top_two, made_by=other)
    with pytest.raises(BundleError, match="top-1 agreement"):
        self_test(bundle, model)


def test_unlisted_file_rejected(bundles, tmp_path):
    folder = _copy(bundles["int8"], tmp_path)
    (folder / "extra.bin").write_bytes(b"x")
    with pytest.raises(BundleError, match="does not list"):
        open_bundle(folder)


def test_truncated_archive(bundles, tmp_path):
    data = bundles["int8_archive"].read_bytes()
    truncated = tmp_path / "cut.tar.gz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError, match="truncated"):
        open_bundle(truncated)


def _archive_with(tmp_path: Path, member: tarfile.TarInfo, payload: bytes = b"x") -> Path:
    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        member.size = len(payload) if member.isfile() else 0
        tar.addfile(member, io.BytesIO(payload) if member.isfile() else None)
    return path


def test_path_traversal_entry(tmp_path):
    archive = _archive_with(tmp_path, tarfile.TarInfo("../x"))
    target = tmp_path / "extract"
    with pytest.raises(BundleError, match="leaving the bundle"):
        open_bundle(archive, extract_to=target)
    assert not (tmp_path / "x").exists() and not target.exists()


def test_absolute_and_link_entries(tmp_path):
    with pytest.raises(BundleError, match="absolute path"):
        open_bundle(_archive_with(tmp_path, tarfile.TarInfo("/etc/evil")))
    link = tarfile.TarInfo("b/model.tflite")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    with pytest.raises(BundleError, match="link or special file"):
        open_bundle(_archive_with(tmp_path, link))


def test_missing_bundle_and_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="does not exist"):
        open_bundle(tmp_path / "nope")
    with pytest.raises(BundleError, match="no manifest.json"):
        open_bundle(tmp_path)


@pytest.mark.skipif(not DEVICE_PYTHON.exists(), reason=".venv-device missing: run `make device-env`")
def test_bundle_verify_in_device_venv_without_tensorflow(bundles, tmp_path):
    result = run_edgekit("bundle", "verify", str(bundles["int8_archive"]), python=DEVICE_PYTHON, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "self_test: ok" in result.stdout
    no_tf = run_edgekit("bundle", "show", str(bundles["int8"]), python=DEVICE_PYTHON, timeout=120)
    assert no_tf.returncode == 0 and "quantization" in no_tf.stdout
    folder = _copy(bundles["int8"], tmp_path)
    (folder / "golden.npz").write_bytes(b"corrupt")
    bad = run_edgekit("bundle", "verify", str(folder), python=DEVICE_PYTHON, timeout=120)
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr and "golden.npz" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


# --- golden inputs that tell models apart (issue 14 item 3, issue 15 item 4) -----------------

def test_golden_inputs_span_the_classes_with_unsaturated_outputs(bundles):
    from convert.golden import SATURATED_PROBABILITY

    for mode in ("int8", "float32"):
        bundle = open_bundle(bundles[mode])
        selection = bundle.manifest["golden"]["selection"]
        with np.load(bundle.golden_path, allow_pickle=False) as golden:
            inputs, outputs = golden["inputs"], golden["outputs"]
        probabilities = TFLiteModel(bundle.model_path, num_threads=1).dequantize(outputs)
        ranked = np.sort(probabilities, axis=1)
        assert selection["true_classes"] == [0, 1, 2, 3], selection  # one per class of the data at least
        assert len(set(probabilities.argmax(1).tolist())) >= 2  # the outputs differ in their top-1
        saturated = int((ranked[:, -1] >= SATURATED_PROBABILITY).sum())
        assert selection["saturated"] == saturated  # the manifest tells the truth about it
        # saturated only where a predicted class had nothing else to represent it
        assert saturated <= len(selection["predicted_classes"]) and saturated <= len(inputs) // 4
        assert (ranked[:, -1] - ranked[:, -2]).min() > selection["clear_margin"]  # no legit interpreter flips one
        assert len({x.tobytes() for x in inputs}) == len(inputs) >= 4  # no repeated input
        if mode == "int8":
            assert outputs.max() < 255  # not at the uint8 clamp
    assert open_bundle(bundles["int8"]).manifest["tools"]["interpreter"]["machine"] == platform.machine()


def _fake_outputs(rows: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    probabilities = np.asarray(rows, np.float32)
    return np.round(probabilities * 256).clip(0, 255).astype(np.uint8), probabilities


def test_select_golden_prefers_unsaturated_clear_inputs_per_class_and_near_boundaries():
    from convert.golden import select_golden

    saturated = [[0.99, 0.01, 0, 0]] * 50 + [[0, 0.99, 0.01, 0]] * 50
    per_class = [[0.7, 0.1, 0.1, 0.1], [0.1, 0.6, 0.2, 0.1], [0.1, 0.1, 0.8, 0.0], [0.2, 0.1, 0.0, 0.7]]
    boundary = [[0.45, 0.35, 0.1, 0.1], [0.1, 0.1, 0.44, 0.36]]
    too_close = [[0.40, 0.39, 0.11, 0.1]]  # a 1-point lead: another interpreter could flip it
    raw, probabilities = _fake_outputs(saturated + per_class + boundary + too_close)
    chosen, stats = select_golden(raw, probabilities, 8, margin=0.05, clamp=255)
    assert set(range(100, 106)) <= set(chosen.tolist())  # every class, and both boundary inputs
    assert 106 not in chosen and stats["saturated"] == len(chosen) - 6  # saturated only to fill up
    assert stats["predicted_classes"] == [0, 1, 2, 3] and stats["min_top1_margin"] > 0.05

    all_saturated, probabilities = _fake_outputs([[0.99, 0.01, 0, 0]] * 10)  # random inputs, say
    chosen, stats = select_golden(all_saturated, probabilities, 4, margin=0.05, clamp=255)
    assert len(chosen) == 4 and stats["saturated"] == 4  # falls back instead of failing

    labels = np.array([0] * 50 + [1] * 50 + [0, 1, 2, 3, 0, 2, 1])
    raw, probabilities = _fake_outputs(saturated + per_class + boundary + too_close)
    chosen, stats = select_golden(raw, probabilities, 4, margin=0.05, labels=labels, clamp=255)
    assert stats["true_classes"] == [0, 1, 2, 3] and len(chosen) == 4


def test_agreement_rule_per_interpreter_and_machine():
    from edge.bundle import (
        INTEGER_STEPS_OTHER_INTERPRETER,
        INTEGER_STEPS_OTHER_MACHINE,
        agreement_rule,
    )

    made = {"name": "ai_edge_litert", "version": "2.3.0", "machine": "x86_64"}
    same = agreement_rule(made, ("ai_edge_litert", "2.3.0", "x86_64"), integer=True)
    arm = agreement_rule(made, ("ai_edge_litert", "2.3.0", "aarch64"), integer=True)
    other = agreement_rule(made, ("tflite_runtime", "2.14.0", "aarch64"), integer=True)
    unknown = agreement_rule({}, ("tflite_runtime", "2.14.0", "aarch64"), integer=True)
    floats = agreement_rule(made, ("tflite_runtime", "2.14.0", "aarch64"), integer=False, atol=1e-3)
    assert (same.max_diff, same.text) == (0, "exact") and (unknown.max_diff, unknown.text) == (0, "exact")
    assert arm.max_diff == INTEGER_STEPS_OTHER_MACHINE and arm.top1_equal and "aarch64" in arm.text
    assert other.max_diff == INTEGER_STEPS_OTHER_INTERPRETER and other.top1_equal
    assert floats.max_diff == 1e-3 and not floats.top1_equal


def test_golden_made_on_another_machine_allows_one_step(bundles, tmp_path):
    def arm(manifest):
        manifest["tools"]["interpreter"]["machine"] = "aarch64"

    bundle, model = _rewrite_golden_edit(_copy(bundles["int8"], tmp_path / "a"), lambda o: _nudge_runner_up(o, 1), arm)
    assert "within 1 step" in self_test(bundle, model)["rule"]
    bundle, model = _rewrite_golden_edit(_copy(bundles["int8"], tmp_path / "b"), lambda o: _nudge_runner_up(o, 3), arm)
    with pytest.raises(BundleError, match="within 1 step"):
        self_test(bundle, model)


def _rewrite_golden_edit(folder, change_outputs, edit):
    rewrite_golden(folder, change_outputs, edit)
    bundle = open_bundle(folder)
    return bundle, TFLiteModel(bundle.model_path, num_threads=1)


def test_convert_without_data_falls_back_to_random_golden_inputs_and_signs(tiny, tmp_path, monkeypatch):
    from convert.pipeline import ConvertOptions, convert
    from edge.signing import init_keys
    from tests.convert_helpers import CLASS_NAMES

    keys = tmp_path / "keys"
    init_keys(keys)
    monkeypatch.setenv("EDGEKIT_CONFIG_DIR", str(keys))  # the workstation's key: convert signs with it
    [result] = convert(ConvertOptions(source=tiny["model"], labels=CLASS_NAMES, modes=["float32"],
                                      accuracy_check=False, out=tmp_path / "b", latency_runs=5))
    bundle = open_bundle(result.bundle)
    assert bundle.manifest["golden"]["selection"]["source"] == "random inputs (no data)"
    assert (result.bundle / "manifest.sig").is_file() and (result.bundle / "manifest.sha256").is_file()
    (keys / "trusted.pub").write_text((keys / "signing.pub").read_text())  # now a car trusting that key
    assert verify_bundle(result.bundle)["signature"].startswith("ok (key ")


@pytest.mark.slow
def test_keys_commands_from_init_to_a_car_that_refuses_unsigned_bundles(bundles, tmp_path):
    workstation, car = tmp_path / "workstation", tmp_path / "car"
    out = run_edgekit("keys", "init", "--dir", str(workstation), check=True).stdout
    assert "signing.pub" in out and oct((workstation / "signing.key").stat().st_mode & 0o777) == "0o600"
    again = run_edgekit("keys", "init", "--dir", str(workstation))
    assert again.returncode == 1 and "already exists" in again.stderr and "Traceback" not in again.stderr
    unsigned = _copy(bundles["int8"], tmp_path / "u")
    signed = _copy(bundles["int8"], tmp_path / "s")
    run_edgekit("keys", "sign", str(signed), "--dir", str(workstation), check=True)
    run_edgekit("keys", "trust", str(workstation / "signing.pub"), "--dir", str(car), check=True)
    env = {"EDGEKIT_CONFIG_DIR": str(car)}
    assert "signature: ok (key" in run_edgekit("bundle", "verify", str(signed), env=env, check=True).stdout
    refused = run_edgekit("bundle", "verify", str(unsigned), env=env)
    assert refused.returncode == 1 and "is not signed" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    shown = json.loads(run_edgekit("keys", "show", "--dir", str(car), check=True).stdout)
    assert len(shown["trusted_keys"]) == 1 and shown["signing_key"] is None


def test_model_that_does_not_match_its_manifest_or_golden_data_is_refused(bundles, tmp_path):
    folder = _copy(bundles["int8"], tmp_path / "dtype")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["model"]["input"]["dtype"] = "float32"  # the car would feed floats to a uint8 model
    _edit_manifest(folder, model=manifest["model"])
    with pytest.raises(BundleError, match="the manifest says the model's input is float32, the model's is uint8"):
        verify_bundle(folder)

    def wrong_shape(folder):
        with np.load(folder / "golden.npz", allow_pickle=False) as golden:
            return golden["inputs"][:, :8], golden["outputs"]

    folder = _copy(bundles["int8"], tmp_path / "golden")
    inputs, outputs = wrong_shape(folder)
    np.savez(folder / "golden.npz", inputs=inputs, outputs=outputs)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["golden.npz"] = file_sha256(folder / "golden.npz")
    _edit_manifest(folder, files=manifest["files"])
    with pytest.raises(BundleError, match="not 1-1024 uint8 images of"):
        verify_bundle(folder)
