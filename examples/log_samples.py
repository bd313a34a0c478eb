"""Log field samples from your own loop: SampleLogger is a part you hand every result to.

    python examples/log_samples.py BUNDLE STORE_FOLDER
"""

import sys
from pathlib import Path

from edge.preprocess import preprocess_frame
from edge.runtime.loop import make_result
from edge.runtime.model import load_model
from edge.samplelog import LogPolicy, SampleLogger, SampleStore
from edge.sources import make_source


def main(bundle: str, store: str) -> None:
    loaded = load_model(Path(bundle))  # checksums and golden self-test first
    policy = LogPolicy(low_confidence=0.6, random_rate=0.1, seed=0)  # unsure frames, and 10% at random
    logger = SampleLogger(store, policy, loaded.labels, model_version=loaded.version)
    source = make_source("synthetic:seed=1")  # or "picamera2", "/dev/video0", "drive.mp4"
    source.open()
    try:
        for _ in range(50):
            frame = source.read()
            model_input = preprocess_frame(frame, loaded.spec)
            probabilities = loaded.model.predict(model_input)
            result = make_result(probabilities, loaded.labels, frame, 3, 0.0, loaded.version)
            logger.on_result(frame, model_input, result)  # returns at once; a thread writes
    finally:
        source.close()
        logger.shutdown()  # waits for the queued samples
    with SampleStore(store) as samples:
        print(f"{samples.count()} samples in {store}")


if __name__ == "__main__":
    main(*sys.argv[1:])
