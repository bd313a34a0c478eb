"""Frame buffers that OpenCV decodes into again once nothing holds them.

Decoding every frame into a new 900 KB array makes the allocator hand out fresh
pages, and the kernel zero and map them: about 10% of a capture thread's CPU at
640x480. `cv2.VideoCapture.read(buffer)` decodes into an array of the right size
instead, so the capture thread reuses an array once no frame, queue, part or
view refers to it any more.
"""

from __future__ import annotations

import sys

import numpy as np

# Enough for the replay queue, the sample log's queue and the frames being worked on.
DEFAULT_LIMIT = 24


def _references_when_only_a_list_holds_it() -> int:
    """What sys.getrefcount reports for an array held by one list alone (2 on CPython 3.11)."""
    held = [np.empty(0)]
    return sys.getrefcount(held[0])


_ALONE = _references_when_only_a_list_holds_it()


class BufferPool:
    """Arrays to decode into, each reused once only the pool holds it.

    Args:
        limit: how many arrays the pool keeps at most; beyond that, reads allocate as usual.

    Example:
        >>> pool = BufferPool()
        >>> buffer = pool.free()            # None until an array has been kept
        >>> ok, image = capture.read(buffer) if buffer is not None else capture.read()
        >>> pool.keep(image, buffer)
    """

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self._arrays: list[np.ndarray] = []

    def free(self) -> np.ndarray | None:
        """An array nothing outside the pool refers to (no frame, queue or view), or None."""
        for index in range(len(self._arrays)):
            if sys.getrefcount(self._arrays[index]) == _ALONE:  # a view counts too: it holds its base
                return self._arrays[index]
        return None

    def keep(self, image: np.ndarray | None, offered: np.ndarray | None) -> None:
        """After a read: `image` is what it returned, `offered` the buffer it was given (or None).

        A buffer the reader did not use (the frame size changed) is forgotten; a new array
        is kept while there is room.
        """
        if offered is not None and image is not offered:
            self._arrays = [array for array in self._arrays if array is not offered]
        if image is not None and image is not offered and len(self._arrays) < self.limit:
            self._arrays.append(image)
