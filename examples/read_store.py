"""Read a pulled sample store (`edgekit pull`): count the labels, check the files, look at one image.

    python examples/read_store.py STORE_FOLDER
"""

import sys
from collections import Counter

from edge.samplelog import SampleStore


def main(folder: str) -> None:
    with SampleStore(folder, readonly=True) as store:  # reads only; a car's store is untrusted input
        report = store.check()  # every file's SHA-256 against the index, strays, leftovers
        print(f"{store.count()} samples, files intact: {report['ok']}")
        labels = Counter(row["label"] for row in store.rows())
        print("predicted labels:", dict(labels.most_common()))
        for session in store.sessions():
            print(f"session {session['session_id']}: model {session['model_version']}, {session['frames']} frames")
        damaged = set(report["missing"]) | set(report["corrupt"])
        for row in store.rows("confidence < ?", (0.6,), order="confidence", limit=3):
            if row["file"] in damaged:
                continue  # its bytes are not what the car stored
            image = store.read_image(row)  # RGB uint8; the path is checked to stay inside the store
            print(f"{row['file']}: {row['label']} {row['confidence']:.2f}, {image.shape[1]}x{image.shape[0]}")


if __name__ == "__main__":
    main(*sys.argv[1:])
