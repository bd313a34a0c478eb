"""The inference loop: frames in, results out, parts told, stats kept, models swapped between frames."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO

import numpy as np

from edge.frame import Frame, Result
from edge.part_contract import Part
from edge.runtime.capture import END, Captured, CaptureThread
from edge.runtime.config import RuntimeConfig
from edge.runtime.hotswap import BundleWatcher
from edge.runtime.model import LoadedModel, load_model
from edge.runtime.part_loading import PartGuard, collect_stats, shutdown_all
from edge.runtime.stats import RuntimeStats, format_stats, peak_rss_mb
from edge.sources import Backoff, ResilientSource, SourceOptions, make_source

log = logging.getLogger("edge.runtime")


def make_result(probabilities: np.ndarray, labels: list[str], frame: Frame, top_k: int,
                inference_ms: float, version: str) -> Result:
    """A Result from dequantized probabilities; latency measured from capture to now."""
    order = np.argsort(probabilities)[::-1][:top_k]
    best = int(order[0])
    return Result(
        frame_index=frame.index, capture_time=frame.timestamp, label=labels[best],
        confidence=float(probabilities[best]), probabilities=probabilities,
        top_k=[(labels[int(i)], float(probabilities[int(i)])) for i in order],
        latency_ms=(time.monotonic() - frame.monotonic) * 1000, inference_ms=inference_ms,
        model_version=version,
        extra={key: value for key, value in (("truth", frame.truth), ("file", frame.file)) if value is not None},
    )


class Runtime:
    """Runs a bundle on a source. Iterate `results()` or call `run()`; both clean up on exit.

    Args:
        config: the settings (see RuntimeConfig).
        parts: consumers told about every result (edge.part_contract.Part); one that raises is logged,
            counted and, after repeated errors, switched off, while inference goes on.
        on_result: optional callback (frame, result) for an in-process driving loop.
        output: where JSON lines go (None: nowhere); `config.quiet` also silences them.
        stop: an event that ends the run between two frames (SIGINT/SIGTERM set it in `edgekit run`).

    Example:
        >>> runtime = Runtime(load_config(None, {"bundle": "current", "source": "synthetic"}))
        >>> for result in runtime.results():
        ...     steer(result.label)
    """

    def __init__(self, config: RuntimeConfig, parts: Sequence[Part] = (),
                 on_result: Callable[[Frame, Result], None] | None = None,
                 output: TextIO | None = sys.stdout, stop: threading.Event | None = None,
                 loaded: LoadedModel | None = None) -> None:
        self.config = config.validate()
        self.parts = list(parts)
        self.part_guard = PartGuard()
        self.on_result = on_result
        self.output = None if config.quiet else output
        self.stop_event = stop or threading.Event()
        self.stats = RuntimeStats()
        self.current = loaded or load_model(config.bundle, config.interpreter_threads, config.roi)
        backend, version = self.current.model.backend, self.current.model.backend_version
        log.info("model %s: %s %s, %d thread(s), input %s %s, labels %s", self.current.version, backend,
                 version, self.current.model.num_threads, self.current.model.input_dtype.name,
                 list(self.current.model.input_shape), ",".join(self.current.labels))
        self.watcher = BundleWatcher(config.bundle, self.current.identity, config.interpreter_threads, config.roi,
                                     config.watch_interval)
        self.source = ResilientSource(self._make_source(), Backoff(config.max_failures, config.backoff,
                                                                  config.backoff_max), self.stop_event)
        self.capture = CaptureThread(self.source, latest_only=self.source.live or config.realtime,
                                     spec=lambda: self.current.spec,
                                     pace=config.realtime and not self.source.live)
        self.view = None
        if config.view is not None:  # last: nothing above can fail with its port bound
            from edge.view.live import LiveView

            self.view = LiveView(config.view, counters=self.counters)
        self._started = False

    def _make_source(self):
        config = self.config
        options = SourceOptions(size=config.size, fps=config.fps, lores=config.lores,
                                lores_format=config.lores_format,
                                model_input_hw=self.current.spec.input_size, roi=self.current.spec.roi,
                                want_main=self._view_wants_main if config.view is not None else None,
                                open_timeout=config.open_timeout)
        return make_source(config.source, options)

    def _view_wants_main(self) -> bool:
        return self.view is not None and self.view.wants_main()

    def stop(self) -> None:
        """End the run after the frame in progress."""
        self.stop_event.set()

    def snapshot(self, reset_window: bool = True) -> dict[str, Any]:
        """Current stats: fps, latency p50/p99, inference p50, skipped, model version, part counters."""
        return self.stats.snapshot(reset_window=reset_window, **self.counters())

    def counters(self) -> dict[str, Any]:
        """The run's counters without the windowed figures (the live view reads them from its threads)."""
        view = {f"view.{key}": value for key, value in self.view.stats().items()} if self.view else {}
        return dict(frames=self.stats.frames, skipped=self.capture.skipped, reopens=self.source.reopens,
                    swaps=self.watcher.swaps, swaps_refused=self.watcher.rejected, model=self.current.version,
                    **getattr(self.source.source, "counters", dict)(),
                    peak_rss_mb=peak_rss_mb(), **collect_stats(self.parts), **self.part_guard.stats(self.parts),
                    **view)

    def _infer(self, item: Captured) -> tuple[Result, np.ndarray]:
        loaded, frame = self.current, item.frame
        model_input = item.model_input_for(loaded.spec)
        t0 = time.perf_counter()
        probabilities = loaded.model.predict(model_input)
        inference_ms = (time.perf_counter() - t0) * 1000
        return make_result(probabilities, loaded.labels, frame, self.config.top_k, inference_ms,
                           loaded.version), model_input

    def _emit(self, frame: Frame, model_input: np.ndarray, result: Result) -> None:
        self.part_guard.notify(self.parts, frame, model_input, result)
        if self.view is not None:
            self.view.observe(frame, result, self.current.spec.roi)
        if self.on_result is not None:
            self.on_result(frame, result)
        if self.output is not None:
            self.output.write(json.dumps(result.to_json_dict(), separators=(",", ":")) + "\n")
            self.output.flush()  # a reader on a pipe gets each result now, not a block later

    def results(self) -> Iterator[Result]:
        """Run until the source ends, a limit is reached or `stop()`; yield every result."""
        if self._started:
            raise RuntimeError("a Runtime runs once; make a new one")
        self._started = True
        config = self.config
        deadline = time.monotonic() + config.duration if config.duration else None
        min_interval = 1.0 / config.max_fps if config.max_fps else 0.0
        next_stats = time.monotonic() + config.stats_interval if config.stats_interval else None
        last_start = 0.0
        self.stats.start()
        self.capture.start()
        self.watcher.start()
        if self.view is not None:
            self.view.start(self.parts)
        log.info("running on %s (%s)", self.source.name,
                 "newest frame only" if self.capture.latest_only else "every frame")
        try:
            while not self.stop_event.is_set():
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    break
                if next_stats is not None and now >= next_stats:
                    log.info(format_stats(self.snapshot()))
                    next_stats = now + config.stats_interval
                if min_interval and now - last_start < min_interval:
                    self.stop_event.wait(min_interval - (now - last_start))
                    continue
                item = self.capture.get(timeout=0.1)
                if item is None:
                    continue
                if item is END:
                    break
                swapped = self.watcher.take()
                if swapped is not None:
                    log.info("model swapped: %s -> %s", self.current.version, swapped.version)
                    self.current = swapped
                last_start = time.monotonic()
                result, model_input = self._infer(item)
                self.stats.record(result.latency_ms, result.inference_ms)
                self._emit(item.frame, model_input, result)
                yield result
                if config.frames is not None and self.stats.frames >= config.frames:
                    break
        finally:
            self._finish()

    def _finish(self) -> None:
        self.stop_event.set()
        self.watcher.stop()
        self.capture.join()
        if self.view is not None:
            self.view.shutdown()
        shutdown_all(self.parts)
        if self.output is not None:
            self.output.flush()
        log.info(format_stats(self.snapshot(reset_window=False)))
        if self.stats.first_result_s is not None:
            log.info("first result %.3f s after the runtime started", self.stats.first_result_s)

    def run(self) -> dict[str, Any]:
        """Run to the end; the final stats."""
        for _ in self.results():
            pass
        return self.snapshot(reset_window=False)
