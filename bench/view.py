"""`make bench-edge`'s live-view rows: what `edgekit run --view` costs the car, watched or not.

    python -m bench.view --bundle BUNDLE [--seconds 20] [--rounds 3] [--fps 30]

On a generated 640x480 video replayed at camera rate (`--realtime`: paced, newest frame
only, as a camera), four variants of `edgekit run`, interleaved `rounds` times:

  (0) without the view;
  (1) with `--view` and no client;
  (2) with one client reading the MJPEG stream as fast as it comes;
  (3) with three such clients.

Each run's CPU time (all its threads, from wait4) minus a one-frame run's (start-up), per
frame answered, and its frames/s. The ratios to (0) are taken within each round (the
shared host's speed drifts between rounds) and their median is reported, with the goals:
no client costs under 2%, one client under 15%. Clients run in this process, so their
own CPU is not counted. Writes bench/results/view.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

RESULTS = Path("bench/results/view.md")
GOALS = {"no_client": 1.02, "one_client": 1.15}
VARIANTS = {"off": "(0) no view", "idle": "(1) view, no client", "one": "(2) view, 1 client",
            "three": "(3) view, 3 clients"}
CLIENTS = {"off": 0, "idle": 0, "one": 1, "three": 3}


@dataclass
class Measured:
    frames: int
    uptime_s: float
    cpu_s: float
    client_frames: list[int] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.uptime_s


class StreamClient(threading.Thread):
    """Reads /stream.mjpg and counts the JPEGs (by their boundary), discarding the bytes."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.frames = 0
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
                sock.sendall(f"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n\r\n".encode())
                tail = b""
                while not self.stop.is_set():
                    chunk = sock.recv(1 << 16)
                    if not chunk:
                        break
                    data = tail + chunk
                    self.frames += data.count(b"--edgekit-frame\r\n")
                    tail = data[-20:]
        except OSError:
            pass


def run_variant(bundle: Path, video: Path, variant: str, seconds: float | None, frames: int | None = None) -> Measured:
    """One `edgekit run` on the video at camera rate; clients attach as soon as the view is up."""
    command = [sys.executable, "-m", "edge.cli", "run", "--bundle", str(bundle), "--source", str(video),
               "--realtime", "--quiet", "--stats-interval", "0"]
    command += ["--duration", f"{seconds:g}"] if seconds else ["--frames", str(frames)]
    if variant != "off":
        command += ["--view", "127.0.0.1:0"]
    with tempfile.TemporaryFile("w+") as err_copy:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
        clients: list[StreamClient] = []
        assert process.stderr is not None
        for line in process.stderr:
            err_copy.write(line)
            match = re.search(r"live view on http://127\.0\.0\.1:(\d+)/", line)
            if match:
                clients = [StreamClient(int(match.group(1))) for _ in range(CLIENTS[variant])]
                for client in clients:
                    client.start()
        _, status, usage = os.wait4(process.pid, 0)
        for client in clients:
            client.stop.set()
            client.join(timeout=5)
        err_copy.seek(0)
        stderr = err_copy.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {stderr.strip().splitlines()[-1:]}")
    stats = dict(re.findall(r"(\w[\w.]*)=(\S+)", [s for s in stderr.splitlines() if s.startswith("stats ")][-1]))
    return Measured(int(stats["frames"]), float(stats["uptime_s"]), usage.ru_utime + usage.ru_stime,
                    [c.frames for c in clients])


def bench(bundle: Path, video: Path, seconds: float, rounds: int) -> dict:
    per_round: list[dict[str, tuple[float, float]]] = []  # variant -> (fps, cpu ms per frame)
    received: dict[str, list[float]] = {v: [] for v in VARIANTS}
    load = [os.getloadavg()[0]]
    for number in range(rounds):
        startup = {kind: run_variant(bundle, video, kind, None, frames=1).cpu_s for kind in ("off", "idle")}
        row = {}
        for variant in VARIANTS:
            measured = run_variant(bundle, video, variant, seconds)
            own_startup = startup["off" if variant == "off" else "idle"]
            row[variant] = (measured.fps, (measured.cpu_s - own_startup) * 1000 / max(1, measured.frames - 1))
            if measured.client_frames:
                received[variant].append(statistics.mean(measured.client_frames) / measured.uptime_s)
            print(f"round {number + 1}/{rounds} {VARIANTS[variant]}: {measured.fps:.1f} fps, "
                  f"{row[variant][1]:.2f} CPU ms/frame", flush=True)
        per_round.append(row)
        load.append(os.getloadavg()[0])
    return {"rounds": per_round, "received": received, "load": load}


def report(result: dict, seconds: float, rounds: int, command: str) -> str:
    rows = result["rounds"]
    lines = [
        "# Live view benchmark",
        "",
        f"`{command}` on {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}. "
        f"`edgekit run` on a 640x480 mp4v video replayed at camera rate (`--realtime`, 30 fps, newest frame "
        f"only), {seconds:g} s per run, {rounds} interleaved rounds. CPU: the run's own (all threads, wait4) "
        "minus a one-frame run's start-up, per frame answered. View defaults: 10 frames/s, 480 px wide, "
        "JPEG quality 70; clients read the MJPEG stream in the benchmark's process (not counted).",
        "",
        "| variant | fps (median) | CPU ms/frame (median) | CPU vs (0) per round | median | goal | stream fps per client |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant, name in VARIANTS.items():
        fps = statistics.median(r[variant][0] for r in rows)
        cpu = statistics.median(r[variant][1] for r in rows)
        ratios = [r[variant][1] / r["off"][1] for r in rows]
        median = statistics.median(ratios)
        goal = {"idle": GOALS["no_client"], "one": GOALS["one_client"]}.get(variant)
        verdict = "" if goal is None else f"<= {goal:.2f} ({'yes' if median <= goal else '**no**'})"
        received = result["received"].get(variant)
        stream = f"{statistics.median(received):.1f}" if received else "-"
        lines.append(f"| {name} | {fps:.1f} | {cpu:.2f} | {', '.join(f'{v:.3f}' for v in ratios)} | {median:.3f} "
                     f"| {verdict} | {stream} |")
    load = result["load"]
    lines += ["", f"Load average (1 min) at the start and after each round: {', '.join(f'{v:.1f}' for v in load)} "
              f"on {os.cpu_count()} CPUs (the host is shared; a round's ratios compare runs made minutes apart "
              "at most).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.view", description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, action="append", required=True,
                        help="bundle (the first is used; repeatable so that bench-edge's ARGS fit)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each run (default 20)")
    parser.add_argument("--view-rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    from edge.bench import make_video

    with tempfile.TemporaryDirectory(prefix="edgekit-bench-view-") as tmp:
        frames = int(args.seconds * 30) + 60
        print(f"writing a {frames}-frame 640x480 video ...", flush=True)
        video = make_video(Path(tmp) / "drive.mp4", frames)
        result = bench(args.bundle[0], video, args.seconds, args.view_rounds)
    text = report(result, args.seconds, args.view_rounds,
                  "python -m bench.view " + " ".join(sys.argv[1:] if argv is None else argv))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
