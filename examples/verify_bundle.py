"""Verify and load a bundle by hand: what `load_model` does, one step at a time.

    python examples/verify_bundle.py BUNDLE [IMAGE.png]
"""

import sys

import cv2
import numpy as np

from edge.bundle import open_bundle, self_test
from edge.interpreter import TFLiteModel
from edge.preprocess import preprocess


def main(path: str, image: str | None = None) -> None:
    bundle = open_bundle(path)  # digests, signature if a key is trusted, every file's SHA-256, fields
    model = TFLiteModel(bundle.model_path, num_threads=1)  # only files just checked
    report = self_test(bundle, model)  # golden outputs reproduced on this machine's interpreter
    print(f"{bundle.version}: verified, golden self-test {report}")
    if image:
        pixels = cv2.imread(image)  # OpenCV reads B,G,R
        order = "bgr"
    else:
        pixels, order = np.full((480, 640, 3), 128, np.uint8), "rgb"
    probabilities = model.predict(preprocess(pixels, bundle.preprocess, order=order))
    best = int(np.argmax(probabilities))
    print(f"{bundle.labels[best]} {probabilities[best]:.2f}")


if __name__ == "__main__":
    main(*sys.argv[1:])
