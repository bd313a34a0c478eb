"""Sample images that carry their own metadata, so an orphan file can be indexed again.

The row's metadata (JSON) rides inside the image in a standard place: a JPEG
comment segment (COM) or a PNG `tEXt` chunk. Every decoder ignores it; edgekit
reads it back when it finds a file that has no row (a crash between the rename
and the insert).

Example:
    >>> data = encode_image(np.zeros((8, 8, 3), np.uint8), {"label": "red"}, "png")
    >>> read_metadata(data)["label"]
    'red'
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

import cv2
import numpy as np

FORMATS = {"jpeg": ".jpg", "png": ".png"}
_KEY = b"edgekit-sample"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def encode_image(image: np.ndarray, metadata: dict[str, Any], fmt: str = "jpeg",
                 quality: int = 90, order: str = "rgb") -> bytes:
    """Encode an image (RGB, or BGR with `order="bgr"`) as JPEG or PNG with `metadata` embedded as JSON."""
    bgr = image if order == "bgr" else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    payload = json.dumps(metadata, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    if fmt == "jpeg":
        ok, buffer = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        data = buffer.tobytes()
        segment = _KEY + b":" + payload
        if not ok or len(segment) > 65533:
            raise ValueError("could not encode the sample as JPEG (metadata too large?)")
        return data[:2] + b"\xff\xfe" + struct.pack(">H", len(segment) + 2) + segment + data[2:]
    if fmt == "png":
        ok, buffer = cv2.imencode(".png", bgr)
        data = buffer.tobytes()
        if not ok:
            raise ValueError("could not encode the sample as PNG")
        body = _KEY + b"\x00" + payload
        chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
        header_end = 8 + 8 + 13 + 4  # signature + IHDR (length, type, 13 bytes, CRC)
        return data[:header_end] + chunk + data[header_end:]
    raise ValueError(f"unknown image format {fmt!r}: use jpeg or png")


def read_metadata(data: bytes) -> dict[str, Any] | None:
    """The embedded metadata of an encoded sample, or None when it has none."""
    try:
        if data[:2] == b"\xff\xd8":
            return _jpeg_metadata(data)
        if data[:8] == _PNG_SIGNATURE:
            return _png_metadata(data)
    except (struct.error, ValueError):
        return None
    return None


def _jpeg_metadata(data: bytes) -> dict[str, Any] | None:
    offset = 2
    while offset + 4 <= len(data) and data[offset] == 0xFF:
        marker = data[offset + 1]
        if marker == 0xDA:  # start of scan: no more headers
            return None
        (length,) = struct.unpack(">H", data[offset + 2:offset + 4])
        body = data[offset + 4:offset + 2 + length]
        if marker == 0xFE and body.startswith(_KEY + b":"):
            return json.loads(body[len(_KEY) + 1:])
        offset += 2 + length
    return None


def _png_metadata(data: bytes) -> dict[str, Any] | None:
    offset = 8
    while offset + 8 <= len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        kind = data[offset + 4:offset + 8]
        body = data[offset + 8:offset + 8 + length]
        if kind == b"tEXt" and body.startswith(_KEY + b"\x00"):
            return json.loads(body[len(_KEY) + 1:])
        if kind == b"IEND":
            return None
        offset += 12 + length
    return None


def decode_image(data: bytes) -> np.ndarray:
    """Decode sample bytes to an RGB uint8 array."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("not a readable image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
