"""Bundle reading and verification: every bad bundle is a one-line BundleError."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from convert.bundle_writer import seal
from edge.bundle import BundleError, open_bundle, self_test, verify_bundle
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
    other = {"name": "tflite_runtime", "version": "2.14.0"}
    bundle, model = _rewrite_golden(_copy(bundles["int8"], tmp_path / "a"),
                                    lambda o: _nudge_runner_up(o, 2), made_by=other)
    report = self_test(bundle, model)
    assert report["max_abs_diff"] > 0 and "within 8 steps" in report["rule"]

    bundle, model = _rewrite_golden(_copy(bundles["int8"], tmp_path / "b"),
                                    lambda o: _nudge_runner_up(o, 40), made_by=other)
    with pytest.raises(BundleError, match="within 8 steps"):
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
