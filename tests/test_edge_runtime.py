"""The runtime: results, JSON lines, stats, parts, hot swap, refusal of bad bundles, config."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import pytest

from edge.bundle import BundleError
from edge.errors import UserError
from edge.runtime import Runtime, load_config
from edge.runtime.jpeg_part import JpegWriter
from edge.runtime.part_loading import MAX_ERRORS_IN_A_ROW
from tests.tiny_bundles import corrupt_model, int8_tflite, point, write_bundle, wrong_golden


@pytest.fixture(scope="module")
def flatbuffer(pytestconfig) -> bytes:
    return int8_tflite(pytestconfig.cache.mkdir("edge-runtime"))


@pytest.fixture
def bundle(tmp_path, flatbuffer) -> Path:
    return write_bundle(tmp_path / "v0001", flatbuffer, version="v0001")


def _config(bundle: Path, **settings):
    return load_config(None, {"bundle": bundle, "source": "synthetic:seed=1", "size": "160x120",
                              "stats_interval": 0, **settings})


def test_results_json_lines_and_stats(bundle):
    out = io.StringIO()
    runtime = Runtime(_config(bundle, frames=20, threads=1), output=out)
    results = list(runtime.results())
    assert [r.frame_index for r in results] == list(range(20))
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 20
    first = lines[0]
    assert set(first) >= {"frame", "capture_time", "label", "confidence", "top_k", "latency_ms", "model_version"}
    assert first["model_version"] == "lights:v0001" and first["label"] in {"green", "none", "red", "yellow"}
    assert len(first["top_k"]) == 3 and first["top_k"][0][0] == first["label"]
    assert first["truth"]  # the synthetic drive knows the truth
    stats = runtime.snapshot(reset_window=False)
    assert stats["frames"] == 20 and stats["skipped"] == 0 and stats["model"] == "lights:v0001"
    assert stats["latency_p50_ms"] > 0 and stats["latency_p99_ms"] >= stats["latency_p50_ms"]


def test_quiet_callback_and_part_counters(bundle, tmp_path):
    out = io.StringIO()
    seen = []
    part = JpegWriter(tmp_path / "frames", every=5)
    runtime = Runtime(_config(bundle, frames=20, quiet=True), parts=[part], output=out,
                      on_result=lambda frame, result: seen.append((frame.index, result.label)))
    runtime.run()
    assert out.getvalue() == ""
    assert [index for index, _ in seen] == list(range(20))
    assert sorted(p.name[:8] for p in (tmp_path / "frames").iterdir()) == [f"{i:08d}" for i in (0, 5, 10, 15)]
    stats = runtime.snapshot()
    assert stats["jpeg.written"] == 4 and stats["jpeg.dropped"] == 0


class FailingPart:
    """Raises on the frames `fails` says; counts the results it took."""

    def __init__(self, name: str, fails) -> None:
        self.name, self.fails, self.taken = name, fails, 0

    def on_result(self, frame, model_input, result) -> None:
        if self.fails(frame.index):
            raise OSError(f"disk full at frame {frame.index}")
        self.taken += 1

    def stats(self):
        return {"taken": self.taken}

    def shutdown(self) -> None:
        self.shut = True


def test_a_failing_part_is_logged_once_counted_and_switched_off_while_inference_goes_on(bundle, caplog):
    always = FailingPart("always", lambda index: True)
    odd = FailingPart("odd", lambda index: index % 2 == 1)
    healthy = FailingPart("healthy", lambda index: False)
    runtime = Runtime(_config(bundle, frames=30, quiet=True), parts=[always, odd, healthy])
    with caplog.at_level("ERROR", logger="edge.runtime"):
        stats = runtime.run()
    assert stats["frames"] == 30 and healthy.taken == 30 and healthy.shut and always.shut
    assert stats["always.errors"] == MAX_ERRORS_IN_A_ROW and stats["always.disabled"] is True
    assert stats["odd.errors"] == 15 and odd.taken == 15 and "odd.disabled" not in stats
    assert "healthy.errors" not in stats and stats["healthy.taken"] == 30
    lines = [r.getMessage() for r in caplog.records]
    assert [m for m in lines if m.startswith("part always failed")] == [
        "part always failed on frame 0: OSError: disk full at frame 0 "
        "(inference goes on; errors are counted in always.errors)"]
    assert len([m for m in lines if m.startswith("part odd failed")]) == 1
    assert [m for m in lines if "switched off" in m] == [
        f"part always switched off after {MAX_ERRORS_IN_A_ROW} errors in a row (last: OSError: disk full at frame 9)"]


def test_hot_swap_to_a_good_bundle_and_refusal_of_a_bad_one(tmp_path, flatbuffer):
    v1 = write_bundle(tmp_path / "v0001", flatbuffer, version="v0001")
    v2 = write_bundle(tmp_path / "v0002", flatbuffer, version="v0002")
    bad = wrong_golden(write_bundle(tmp_path / "v0003", flatbuffer, version="v0003"))
    current = tmp_path / "current"
    point(current, v1)
    refused_seen = threading.Event()
    versions: list[tuple[int, str]] = []
    runtime: Runtime

    def drive(frame, result):
        versions.append((frame.index, result.model_version))
        if frame.index == 5:
            point(current, bad)
        if frame.index > 5 and runtime.watcher.rejected and not refused_seen.is_set():
            refused_seen.set()
            point(current, v2)
        if result.model_version.endswith("v0002") and len(versions) > 2 and versions[-2][1].endswith("v0002"):
            runtime.stop()

    runtime = Runtime(_config(current, max_fps=100, duration=20, watch_interval=0.05), on_result=drive,
                      output=None)
    runtime.run()
    indices = [index for index, _ in versions]
    assert indices == list(range(len(indices)))  # no frame lost during the swaps
    names = [version for _, version in versions]
    switch = names.index("lights:v0002")
    assert set(names[:switch]) == {"lights:v0001"} and set(names[switch:]) == {"lights:v0002"}
    assert "lights:v0003" not in names
    assert runtime.watcher.rejected == 1 and runtime.watcher.swaps == 1


def test_corrupt_or_unverifiable_bundle_refuses_to_start(tmp_path, flatbuffer):
    corrupt = corrupt_model(write_bundle(tmp_path / "corrupt", flatbuffer))
    with pytest.raises(BundleError, match="checksum"):
        Runtime(_config(corrupt))
    wrong = wrong_golden(write_bundle(tmp_path / "wrong", flatbuffer))
    with pytest.raises(BundleError, match="self-test failed"):
        Runtime(_config(wrong))


def test_toml_config_and_command_line_overrides(tmp_path):
    path = tmp_path / "edgekit.toml"
    path.write_text('bundle = "current"\nsource = "picamera2"\nroi = [0.5, 0, 0.5, 0.5]\nmax-fps = 15\n'
                    'quiet = true\nthreads = 2\n[parts.jpeg]\nfolder = "frames"\nevery = 10\n')
    config = load_config(path, {"max_fps": 5.0, "quiet": None})
    assert config.bundle == Path("current") and config.source == "picamera2"
    assert config.roi == (0.5, 0.0, 0.5, 0.5) and config.max_fps == 5.0 and config.quiet is True
    assert config.threads == 2 and config.parts == {"jpeg": {"folder": "frames", "every": 10}}
    path.write_text('bundle = "current"\nsource = "x"\nmax_fsp = 3\n')
    with pytest.raises(UserError, match="unknown setting 'max_fsp'"):
        load_config(path)
    with pytest.raises(UserError, match="either duration or frames"):
        load_config(None, {"bundle": "b", "source": "s", "duration": 1, "frames": 2})


def test_realtime_paces_a_file_source_to_its_frame_rate(bundle):
    import time

    started = time.monotonic()
    runtime = Runtime(_config(bundle, source="synthetic:seed=1,frames=12,fps=20", realtime=True), output=None)
    results = list(runtime.results())
    assert time.monotonic() - started >= 11 / 20  # paced: 12 frames at 20 fps take at least 0.55 s
    assert results and runtime.capture.latest_only
    assert len(results) + runtime.capture.skipped == 12  # every frame either processed or counted


def test_runtime_on_the_pi_camera_uses_the_lores_stream(bundle, monkeypatch):
    import sys

    monkeypatch.syspath_prepend(str(Path(__file__).parent / "fakes"))
    monkeypatch.delitem(sys.modules, "picamera2", raising=False)
    import picamera2

    picamera2.reset()
    runtime = Runtime(_config(bundle, source="picamera2", size="640x480", frames=5), output=None)
    results = list(runtime.results())
    assert len(results) == 5 and runtime.capture.latest_only
    config = next(event[1] for event in picamera2.EVENTS if event[0] == "configure")
    assert config["lores"]["size"][0] < 640  # the ISP scales, not the CPU
    assert ("capture_array", "lores") in picamera2.EVENTS
    assert picamera2.EVENTS[-1] == ("close",)  # closed when the run ends
    picamera2.reset()


def test_a_part_thread_steps_below_the_level_the_car_was_started_at():
    """Writer and encoder threads keep their gap to inference even when the car runs under `nice`."""
    import os
    import threading

    from edge.part_contract import yield_cpu_to_inference

    levels: dict[str, int] = {}

    def part() -> None:
        me = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, me, 5)  # as if started with `nice -n 5`
        yield_cpu_to_inference(10)
        levels["after"] = os.getpriority(os.PRIO_PROCESS, me)

    thread = threading.Thread(target=part)
    thread.start()
    thread.join()
    assert levels["after"] == 15
