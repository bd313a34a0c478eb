"""Watch the bundle path; verify a changed bundle off the inference thread; hand it over between frames."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from edge.errors import UserError
from edge.runtime.model import LoadedModel, bundle_identity, load_model

log = logging.getLogger(__name__)


class BundleWatcher:
    """Polls `path` every `interval` s; a changed bundle is loaded and verified in this thread.

    The inference loop calls `take()` between two frames: it returns a fully
    verified LoadedModel once, or None. A bundle that fails verification is
    logged and not retried until the path changes again; the old model keeps running.

    Example:
        >>> watcher = BundleWatcher(Path("current"), current.identity, threads=2, roi=None)
        >>> watcher.start(); ...; new = watcher.take()
    """

    def __init__(self, path: Path, identity: tuple, threads: int | None,
                 roi: tuple[float, float, float, float] | None, interval: float = 1.0) -> None:
        self.path = path
        self.threads = threads
        self.roi = roi
        self.interval = interval
        self.swaps = 0
        self.rejected = 0
        self._seen = identity
        self._ready: LoadedModel | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="bundle-watcher", daemon=True)

    def start(self) -> None:
        if self.interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def take(self) -> LoadedModel | None:
        with self._lock:
            ready, self._ready = self._ready, None
        if ready is not None:
            self.swaps += 1
        return ready

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            identity = bundle_identity(self.path)
            if identity == self._seen:
                continue
            self._seen = identity
            self._stop.wait(min(self.interval, 0.2))  # let a copy in progress settle
            try:
                loaded = load_model(self.path, self.threads, self.roi)
            except UserError as error:
                self.rejected += 1
                log.warning("hot swap refused, keeping the running model: %s", error)
                continue
            except Exception as error:  # never let the watcher die on an unexpected bundle
                self.rejected += 1
                log.warning("hot swap refused, keeping the running model: %s: %s", type(error).__name__, error)
                continue
            self._seen = loaded.identity  # if it changed again while loading, the next poll sees it
            log.info("bundle %s verified (checksums + golden self-test): swapping in before the next frame",
                     loaded.version)
            with self._lock:
                self._ready = loaded
