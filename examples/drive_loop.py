"""Drive a car loop: the runtime reads the camera and infers; you steer on each result's label.

    python examples/drive_loop.py BUNDLE [SOURCE]     # SOURCE: picamera2 on the Pi; default synthetic
"""

import sys

from edge.runtime import Runtime, load_config

SPEED = {"red": 0.0, "yellow": 0.3, "green": 1.0}  # throttle for each label; others keep the last one


def main(bundle: str, source: str = "synthetic") -> None:
    config = load_config(None, {"bundle": bundle, "source": source, "frames": 30, "quiet": True})
    runtime = Runtime(config, output=None)  # output=None: no JSON lines, the results come to this loop
    throttle = 0.0
    for result in runtime.results():  # stops after `frames`, or call runtime.stop()
        if result.confidence >= 0.6:  # an unsure answer changes nothing
            throttle = SPEED.get(result.label, throttle)
        print(f"frame {result.frame_index}: {result.label} {result.confidence:.2f} -> throttle {throttle}")


if __name__ == "__main__":
    main(*sys.argv[1:])
