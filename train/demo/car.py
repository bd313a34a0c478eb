"""The car of the demo: a folder with `releases/` and `current`, and `edgekit run` as a subprocess.

The runtime runs exactly as on a Raspberry Pi (`python -m edge.cli run` in its own
process, its settings in `edgekit.toml`, JSON lines on stdout); only the camera is
a synthetic drive. `swap_run` keeps one runtime going while a deploy switches
`current`, and checks from its JSON lines that the model changed between two
frames with none lost.

Example:
    >>> car = Car(Path("demo/car"), drive_size=(320, 240))
    >>> records = car.run("synthetic:seed=5,frames=800,fps=5", log_session="drive-1")
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.errors import UserError
from edge.synthetic import DRIVE_ROI

CONFIG = "edgekit.toml"


@dataclass
class SwapRun:
    """What one runtime process did while a new model was deployed under it."""

    records: list[dict[str, Any]]
    deploy_started_frame: int
    deploy_seconds: float
    stderr: str
    versions: list[str] = field(default_factory=list)

    @property
    def swap_frame(self) -> int | None:
        """Frame index of the first result from the new model (None: no swap)."""
        for before, after in zip(self.records, self.records[1:], strict=False):
            if after["model_version"] != before["model_version"]:
                return int(after["frame"])
        return None

    @property
    def lost_frames(self) -> int:
        """Frames of the source with no result (the source numbers every frame it produced)."""
        frames = [int(r["frame"]) for r in self.records]
        return (max(frames) + 1 - len(set(frames))) if frames else 0


class Car:
    """A local folder standing for the car: `releases/`, `current`, `edgekit.toml`, `samples/`, `logs/`.

    Args:
        root: the car's folder.
        drive_size: camera frame (width, height).
        python: the car's Python (default: this one) with edgekit installed.
    """

    def __init__(self, root: Path, drive_size: tuple[int, int] = (320, 240), python: str | None = None) -> None:
        self.root = Path(root)
        self.python = python or sys.executable
        self.logs = self.root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        roi = ", ".join(f"{v:g}" for v in DRIVE_ROI)
        width, height = drive_size
        (self.root / CONFIG).write_text(
            "# The car's runtime settings (edgekit run --config edgekit.toml); see docs/edge.md\n"
            'bundle = "current"          # hot-swapped when `edgekit deploy` switches the link\n'
            f"roi = [{roi}]   # where the camera sees the traffic light\n"
            f'size = "{width}x{height}"\n'
            "stats_interval = 0\n", encoding="utf-8")

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    def _command(self, source: str, extra: list[str]) -> list[str]:
        return [self.python, "-m", "edge.cli", "run", "--config", CONFIG, "--source", source, *extra]

    def _env(self) -> dict[str, str]:
        return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}

    def run(self, source: str, name: str, log_session: str | None = None,
            log_options: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """Run `edgekit run` to the end of `source`; its JSON lines (also kept in logs/NAME.jsonl)."""
        extra = ["--log-dir", "samples", "--log-session", log_session, *log_options] if log_session else []
        out, err = self.logs / f"{name}.jsonl", self.logs / f"{name}.log"
        with open(out, "w") as stdout, open(err, "w") as stderr:
            code = subprocess.run(self._command(source, extra), cwd=self.root, stdout=stdout, stderr=stderr,
                                  env=self._env(), check=False).returncode
        if code != 0:
            raise UserError(f"edgekit run failed on the car (exit {code}): see {err}")
        return read_records(out)

    def stat(self, name: str, key: str) -> int:
        """A counter from the last stats line `edgekit run` wrote to logs/NAME.log (0 if absent)."""
        found = re.findall(rf"\b{re.escape(key)}=(\d+)", (self.logs / f"{name}.log").read_text())
        return int(found[-1]) if found else 0

    def swap_run(self, source: str, name: str, deploy: Callable[[], Any], after_frames: int,
                 max_fps: float, view: str | None = None, on_view: Callable[[str], None] | None = None) -> SwapRun:
        """Run `source` paced at `max_fps`; once `after_frames` results are out, call `deploy` (in a thread).

        `view`: `--view [HOST:]PORT` for the runtime; `on_view(url)` is called once its live view is up.
        """
        out, err = self.logs / f"{name}.jsonl", self.logs / f"{name}.log"
        records: list[dict[str, Any]] = []
        outcome: dict[str, Any] = {}

        def deploy_in_background() -> None:
            start = time.perf_counter()
            try:
                outcome["result"] = deploy()
            except BaseException as error:  # reported after the run
                outcome["error"] = error
            outcome["seconds"] = time.perf_counter() - start

        worker = threading.Thread(target=deploy_in_background, name="demo-deploy")
        started_at = -1
        with open(out, "w") as copy, open(err, "w") as stderr:
            extra = ["--max-fps", f"{max_fps:g}", *(["--view", view] if view else [])]
            process = subprocess.Popen(self._command(source, extra), cwd=self.root,
                                       stdout=subprocess.PIPE, stderr=stderr, text=True, env=self._env())
            assert process.stdout is not None
            if view and on_view is not None:
                threading.Thread(target=_announce_view, args=(err, process, on_view), daemon=True).start()
            for line in process.stdout:
                copy.write(line)
                records.append(json.loads(line))
                if started_at < 0 and len(records) >= after_frames:
                    started_at = int(records[-1]["frame"])
                    worker.start()
            code = process.wait()
        if worker.is_alive():
            worker.join()
        if code != 0:
            raise UserError(f"edgekit run failed on the car (exit {code}): see {err}")
        if "error" in outcome:
            raise outcome["error"]
        if started_at < 0:
            raise UserError(f"the drive ended after {len(records)} frames, before the deploy could start")
        versions = list(dict.fromkeys(r["model_version"] for r in records))
        return SwapRun(records, started_at, outcome.get("seconds", 0.0), err.read_text(), versions)


def _announce_view(log: Path, process: subprocess.Popen, on_view: Callable[[str], None]) -> None:
    """Call `on_view` with the live view's address once the runtime has written it to its log."""
    while process.poll() is None:
        found = re.search(r"live view on (http://\S+)", log.read_text(errors="replace"))
        if found:
            on_view(found.group(1))
            return
        time.sleep(0.1)


def read_records(path: Path) -> list[dict[str, Any]]:
    """The JSON lines `edgekit run` printed (one result per frame)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]
