"""Synthetic driving scenes: traffic-light states rendered with OpenCV.

The embedded default dataset of edgekit, and the car's synthetic camera. Each
*scene* is one traffic light seen for a while (like one video clip); its frames
are near-copies that move a little. Scenes carry the chapter's (docs/training.md#the-chapter) "problem
images" (bad light, strong shadows, occluders, lights partly out of frame,
rotation) and, switched off by default, conditions the default training set
never shows (night, fog) so that a first model meets something new in the field.

Example:
    >>> images, labels, scenes = generate(100, size=(32, 32), seed=0)
    >>> images.shape, CLASS_NAMES[labels[0]], scenes[0]
    ((100, 32, 32, 3), ..., 's0-000000')
    >>> frame, truth = next(drive(frame_size=(480, 640), seed=1))
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields, replace

import cv2
import numpy as np

from edge.errors import UserError

CLASS_NAMES: list[str] = ["green", "none", "red", "yellow"]
GREEN, NONE, RED, YELLOW = range(4)
# Lamps from top to bottom and their lit colours (RGB).
_LAMP_ORDER = (RED, YELLOW, GREEN)
_LIT = {RED: (235, 35, 30), YELLOW: (250, 190, 25), GREEN: (40, 225, 120)}
_NIGHT_CORE = {RED: (255, 170, 150), YELLOW: (255, 235, 170), GREEN: (190, 255, 215)}
# Where the traffic light appears in a drive() frame: (x, y, w, h) as frame fractions.
# Use it as the PreprocessSpec roi so the model sees what generate() makes.
DRIVE_ROI: tuple[float, float, float, float] = (0.55, 0.05, 0.3, 0.5)

_SHIFT = 4  # sub-pixel bits for cv2 drawing
_ONE = 1 << _SHIFT


@dataclass(frozen=True)
class Conditions:
    """How often each problem condition appears, per scene (probabilities 0..1).

    Args:
        exposure: bad light, over- or under-exposed.
        shadow: a strong hard-edged shadow across the view.
        occlusion: an object in front of part of the light.
        out_of_frame: the light partly outside the view.
        rotation: the light tilted by up to `max_rotation_deg`.
        night: darkness, glowing lamps, street lamps and brake lights
            (not in the default training set).
        fog: washed-out low contrast (not in the default training set).
        noise: sensor noise, standard deviation in grey levels.
        jitter: frame-to-frame motion inside a scene, as a fraction of the view.

    Example:
        >>> Conditions.parse("night=1,shadow=0.5").night
        1.0
    """

    exposure: float = 0.15
    shadow: float = 0.2
    occlusion: float = 0.15
    out_of_frame: float = 0.15
    rotation: float = 0.3
    max_rotation_deg: float = 25.0
    night: float = 0.0
    fog: float = 0.0
    noise: float = 4.0
    jitter: float = 0.01

    def __post_init__(self) -> None:
        for name in ("exposure", "shadow", "occlusion", "out_of_frame", "rotation", "night", "fog"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise UserError(f"condition {name}={value} is not a probability: give a value in 0..1")
        if self.noise < 0 or self.jitter < 0 or self.max_rotation_deg < 0:
            raise UserError("noise, jitter and max_rotation_deg must not be negative")

    @classmethod
    def preset(cls, name: str) -> Conditions:
        """Named condition sets: "default" (training), "clean", "night", "fog", "field"."""
        presets = {
            "default": cls(),
            "clean": cls(exposure=0, shadow=0, occlusion=0, out_of_frame=0, rotation=0, noise=2, jitter=0.01),
            "night": cls(night=1.0),
            "fog": cls(fog=1.0),
            "field": cls(night=0.5, fog=0.1),
        }
        if name not in presets:
            raise UserError(f"unknown conditions preset {name!r}: use one of {', '.join(presets)}")
        return presets[name]

    @classmethod
    def parse(cls, text: str) -> Conditions:
        """A preset name and/or `key=value` pairs, e.g. "night", "default,night=0.3"."""
        result = cls()
        known = {f.name for f in fields(cls)}
        for part in filter(None, (p.strip() for p in text.replace(";", ",").split(","))):
            if "=" not in part:
                result = cls.preset(part)
                continue
            key, value = (s.strip() for s in part.split("=", 1))
            if key not in known:
                raise UserError(f"unknown condition {key!r}: known are {', '.join(sorted(known))}")
            try:
                result = replace(result, **{key: float(value)})
            except ValueError:
                raise UserError(f"condition {key}={value!r} is not a number") from None
        return result

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class _Scene:
    """Everything fixed for one scene; frames add small motion and noise."""

    label: int
    has_light: bool
    sky_top: np.ndarray
    sky_bottom: np.ndarray
    ground: np.ndarray
    horizon: float
    buildings: list[tuple[float, float, float, tuple[int, int, int]]]
    cx: float
    cy: float
    height: float  # housing height as a fraction of the view height
    angle: float
    housing: tuple[int, int, int]
    gain: float
    offset: float
    shadow: np.ndarray | None  # polygon in view fractions
    shadow_strength: float
    occluder: tuple[str, float, float, float, float, tuple[int, int, int]] | None
    night: bool
    night_gain: float
    distractors: list[tuple[float, float, float, tuple[int, int, int]]]
    fog: float
    noise: float


def _scene_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, index, 0x7E1C]))


def _sample_scene(rng: np.random.Generator, conditions: Conditions, label: int) -> _Scene:
    c = conditions
    has_light = label != NONE or rng.random() < 0.6
    height = rng.uniform(0.5, 0.85)
    half_w = height * 0.19
    cx, cy = rng.uniform(0.5 - 0.25 + half_w, 0.5 + 0.25 - half_w + 1e-6), rng.uniform(0.42, 0.58)
    if rng.random() < c.out_of_frame:
        if rng.random() < 0.75:  # cut at the left or right edge, never the whole lamp
            cut = rng.uniform(0.2, 0.45) * 2 * half_w
            cx = (half_w - cut) if rng.random() < 0.5 else (1 - half_w + cut)
        else:  # cut at the top
            cy = height / 2 - rng.uniform(0.05, 0.15) * height
    angle = rng.uniform(-c.max_rotation_deg, c.max_rotation_deg) if rng.random() < c.rotation else rng.uniform(-3, 3)
    gain, offset = rng.uniform(0.85, 1.15), rng.uniform(-10, 10)
    if rng.random() < c.exposure:
        if rng.random() < 0.5:
            gain, offset = rng.uniform(0.25, 0.5), rng.uniform(-10, 0)
        else:
            gain, offset = rng.uniform(1.6, 2.6), rng.uniform(20, 60)
    shadow = None
    if rng.random() < c.shadow:
        # a quadrilateral from one side across part of the view
        x0, x1 = rng.uniform(-0.2, 0.5), rng.uniform(0.5, 1.2)
        shadow = np.array([[x0, -0.1], [x1, -0.1], [x1 + rng.uniform(-0.4, 0.4), 1.1],
                           [x0 + rng.uniform(-0.4, 0.4), 1.1]])
    occluder = None
    if rng.random() < c.occlusion:
        side = -1 if rng.random() < 0.5 else 1
        cover = rng.uniform(0.3, 0.5) * 2 * half_w  # never the whole width of the housing
        ow = rng.uniform(0.3, 0.6)
        ox = cx + side * (half_w - cover + ow / 2)
        colour = tuple(int(v) for v in rng.integers(20, 200, 3))
        kind = "ellipse" if rng.random() < 0.5 else "rect"
        occluder = (kind, ox, cy + rng.uniform(-0.2, 0.2) * height, ow, rng.uniform(0.3, 0.7) * height, colour)
    night = rng.random() < c.night
    distractors = []
    if night:
        for _ in range(rng.integers(1, 4)):  # street lamps (orange/white) and brake lights (red)
            kind = rng.random()
            colour = (255, 150, 50) if kind < 0.4 else (255, 245, 220) if kind < 0.6 else (230, 20, 20)
            y = rng.uniform(0.05, 0.35) if kind < 0.6 else rng.uniform(0.75, 0.95)
            x = rng.uniform(0.05, 0.95)
            if abs(x - cx) < 0.25:
                x = (x + 0.5) % 1.0
            distractors.append((x, y, rng.uniform(0.02, 0.05), colour))
    buildings = [(rng.uniform(-0.1, 1.0), rng.uniform(0.1, 0.5), rng.uniform(0.1, 0.6),
                  tuple(int(v) for v in rng.integers(60, 200, 3))) for _ in range(rng.integers(0, 4))]
    return _Scene(
        label=label, has_light=has_light,
        sky_top=rng.uniform([60, 110, 170], [150, 190, 250]), sky_bottom=rng.uniform([150, 170, 190], [235, 235, 250]),
        ground=rng.uniform([60, 60, 60], [140, 140, 130]), horizon=rng.uniform(0.55, 1.05), buildings=buildings,
        cx=cx, cy=cy, height=height, angle=angle,
        housing=tuple(int(v) for v in rng.integers(15, 70, 3)) if rng.random() < 0.85 else (150, 130, 20),
        gain=gain, offset=offset, shadow=shadow, shadow_strength=rng.uniform(0.35, 0.6),
        occluder=occluder, night=night, night_gain=rng.uniform(0.08, 0.2), distractors=distractors,
        fog=rng.uniform(0.45, 0.75) if rng.random() < c.fog else 0.0,
        noise=c.noise * (2.5 if night else 1.0),
    )


def _pt(x: float, y: float) -> tuple[int, int]:
    return int(round(x * _ONE)), int(round(y * _ONE))


def _background(scene: _Scene, h: int, w: int, view: tuple[int, int, int, int]) -> np.ndarray:
    """Sky gradient, buildings and road for the whole canvas; geometry is in view units."""
    vx, vy, vw, vh = view
    horizon_px = int(np.clip(vy + scene.horizon * vh, 0, h))
    t = np.linspace(0.0, 1.0, max(horizon_px, 1), dtype=np.float32)[:, None]
    canvas = np.empty((h, w, 3), np.uint8)
    canvas[:horizon_px] = ((1 - t) * scene.sky_top + t * scene.sky_bottom)[:horizon_px, None, :].astype(np.uint8)
    canvas[horizon_px:] = scene.ground.astype(np.uint8)
    for bx, bw, bh, colour in scene.buildings:
        x0, x1 = vx + bx * vw, vx + (bx + bw) * vw
        cv2.rectangle(canvas, _pt(x0, horizon_px - bh * vh), _pt(x1, horizon_px), colour, -1, cv2.LINE_AA, _SHIFT)
    if scene.night:
        canvas = cv2.convertScaleAbs(canvas, alpha=scene.night_gain)
        canvas[..., 2] = cv2.add(canvas[..., 2], 12)  # a blue cast
    return canvas


def _draw_light(canvas: np.ndarray, scene: _Scene, view: tuple[int, int, int, int],
                dx: float, dy: float, scale: float) -> None:
    vx, vy, vw, vh = view
    cx, cy = vx + (scene.cx + dx) * vw, vy + (scene.cy + dy) * vh
    hh = scene.height * scale * vh
    hw = hh * 0.38
    rad = math.radians(scene.angle)
    axis = (-math.sin(rad), math.cos(rad))  # "down" along the housing
    # pole below the housing
    pole_w = max(1, int(round(hw * 0.18)))
    top = (cx + axis[0] * hh / 2, cy + axis[1] * hh / 2)
    pole_colour = (40, 40, 40) if not scene.night else (8, 8, 10)
    cv2.line(canvas, _pt(*top), _pt(top[0] + axis[0] * canvas.shape[0], top[1] + axis[1] * canvas.shape[0]),
             pole_colour, pole_w, cv2.LINE_AA, _SHIFT)
    if not scene.has_light:
        return
    box = cv2.boxPoints(((cx, cy), (hw, hh), scene.angle))
    housing = scene.housing if not scene.night else tuple(int(v * 0.2) for v in scene.housing)
    cv2.fillConvexPoly(canvas, np.round(box * _ONE).astype(np.int32), housing, cv2.LINE_AA, _SHIFT)
    radius = hw * 0.36
    lit_colour = None
    for position, lamp in zip((-0.32, 0.0, 0.32), _LAMP_ORDER, strict=True):
        centre = (cx + axis[0] * position * hh, cy + axis[1] * position * hh)
        if lamp == scene.label:
            lit_colour = (centre, _NIGHT_CORE[lamp] if scene.night else _LIT[lamp], _LIT[lamp])
            continue
        dim = tuple(int(0.2 * v + 0.5 * h_) for v, h_ in zip(_LIT[lamp], housing, strict=True))
        if scene.night:
            dim = tuple(int(v * 0.3) for v in dim)
        cv2.circle(canvas, _pt(*centre), int(radius * _ONE), dim, -1, cv2.LINE_AA, _SHIFT)
    if lit_colour is not None:
        centre, core, glow = lit_colour
        if scene.night:
            _glow(canvas, centre, radius, glow)
        cv2.circle(canvas, _pt(*centre), int(radius * _ONE), core, -1, cv2.LINE_AA, _SHIFT)


def _glow(canvas: np.ndarray, centre: tuple[float, float], radius: float, colour: tuple[int, int, int]) -> None:
    """Add a soft halo around a bright lamp (night)."""
    h, w = canvas.shape[:2]
    reach = int(radius * 4) + 2
    x0, y0 = max(int(centre[0]) - reach, 0), max(int(centre[1]) - reach, 0)
    x1, y1 = min(int(centre[0]) + reach + 1, w), min(int(centre[1]) + reach + 1, h)
    if x1 <= x0 or y1 <= y0:
        return
    layer = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)
    cv2.circle(layer, _pt(centre[0] - x0, centre[1] - y0), int(radius * 1.8 * _ONE), colour, -1, cv2.LINE_AA, _SHIFT)
    layer = cv2.GaussianBlur(layer, (0, 0), max(radius * 1.1, 0.6))
    canvas[y0:y1, x0:x1] = cv2.add(canvas[y0:y1, x0:x1], layer)


def _draw_front(canvas: np.ndarray, scene: _Scene, view: tuple[int, int, int, int], dx: float, dy: float) -> None:
    """Occluders and night light sources, in front of the traffic light."""
    vx, vy, vw, vh = view
    if scene.occluder is not None:
        kind, ox, oy, ow, oh, colour = scene.occluder
        colour = colour if not scene.night else tuple(int(v * 0.15) for v in colour)
        centre = (vx + (ox + dx) * vw, vy + (oy + dy) * vh)
        if kind == "ellipse":
            cv2.ellipse(canvas, _pt(*centre), _pt(ow * vw / 2, oh * vh / 2), 0, 0, 360, colour, -1, cv2.LINE_AA, _SHIFT)
        else:
            cv2.rectangle(canvas, _pt(centre[0] - ow * vw / 2, centre[1] - oh * vh / 2),
                          _pt(centre[0] + ow * vw / 2, centre[1] + oh * vh / 2), colour, -1, cv2.LINE_AA, _SHIFT)
    for x, y, r, colour in scene.distractors:
        centre, radius = (vx + (x + dx) * vw, vy + (y + dy) * vh), max(r * vh, 0.7)
        _glow(canvas, centre, radius, colour)
        cv2.circle(canvas, _pt(*centre), int(radius * _ONE), colour, -1, cv2.LINE_AA, _SHIFT)


def _camera(canvas: np.ndarray, scene: _Scene, view: tuple[int, int, int, int],
            shadow_mask: np.ndarray | None, noise: np.ndarray | None, gain_jitter: float) -> np.ndarray:
    """Light, shadow, fog and sensor noise: what the camera does to the scene."""
    if shadow_mask is not None:
        canvas = cv2.multiply(canvas, shadow_mask, scale=1 / 255)
    if scene.fog:
        canvas = cv2.addWeighted(canvas, 1 - scene.fog, np.full_like(canvas, 190), scene.fog, 0)
    canvas = cv2.convertScaleAbs(canvas, alpha=scene.gain * gain_jitter, beta=scene.offset)
    if noise is not None:
        canvas = cv2.addWeighted(canvas, 1.0, noise, 1.0, -128.0)
    return canvas


def _shadow_mask(scene: _Scene, h: int, w: int, view: tuple[int, int, int, int]) -> np.ndarray | None:
    if scene.shadow is None:
        return None
    vx, vy, vw, vh = view
    mask = np.full((h, w, 3), 255, np.uint8)
    poly = np.round((scene.shadow * [vw, vh] + [vx, vy]) * _ONE).astype(np.int32)
    level = int(255 * scene.shadow_strength)
    cv2.fillConvexPoly(mask, poly, (level, level, level), cv2.LINE_AA, _SHIFT)
    return mask


def _noise(rng: np.random.Generator, scene: _Scene, h: int, w: int, grain: np.ndarray | None = None,
           frame_share: float = 0.3) -> np.ndarray | None:
    """Noise around 128: the scene's fixed grain (surface texture) plus a little fresh sensor noise."""
    if scene.noise <= 0:
        return None
    fresh = rng.normal(0.0, scene.noise * frame_share, (h, w, 3))
    return np.clip(128.0 + fresh + (grain if grain is not None else 0.0), 0, 255).astype(np.uint8)


def _labels_for(seed: int, n_scenes: int, class_probs: np.ndarray | None) -> np.ndarray:
    """Scene labels: balanced blocks (a shuffled 0..K-1 per block) unless probabilities are given."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 0x1ABE1]))
    k = len(CLASS_NAMES)
    if class_probs is not None:
        return rng.choice(k, size=n_scenes, p=class_probs)
    blocks = -(-n_scenes // k)
    return np.concatenate([rng.permutation(k) for _ in range(blocks)])[:n_scenes] if n_scenes else np.zeros(0, int)


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    h, w = (int(v) for v in size)
    if h < 8 or w < 8:
        raise UserError(f"synthetic image size {h}x{w} is too small: use at least 8x8")
    return h, w


def generate(
    n: int,
    size: tuple[int, int] = (32, 32),
    seed: int = 0,
    conditions: Conditions | None = None,
    frames_per_scene: int = 20,
    class_probs: tuple[float, ...] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render `n` traffic-light images, `frames_per_scene` near-copies per scene.

    Args:
        n: number of images.
        size: (height, width) of each image; the whole image is the view a
            model sees (the ROI of a drive frame).
        seed: the same seed gives the same images; generate(m) is a prefix of generate(n>m).
        conditions: problem-image probabilities (default: `Conditions()`, no night or fog).
        frames_per_scene: frames per scene (the group size).
        class_probs: probability per class in CLASS_NAMES order (default: balanced).

    Returns:
        images uint8 (n, h, w, 3) RGB, labels int64 (n,), scene ids (n,) str like "s0-000012".

    Example:
        >>> images, labels, scenes = generate(40, size=(32, 32), seed=3, frames_per_scene=10)
        >>> len(set(scenes))
        4
    """
    if n < 0 or frames_per_scene < 1:
        raise UserError("n must be >= 0 and frames_per_scene >= 1")
    h, w = _check_size(size)
    conditions = conditions or Conditions()
    probs = None
    if class_probs is not None:
        probs = np.asarray(class_probs, float)
        if probs.shape != (len(CLASS_NAMES),) or probs.min() < 0 or probs.sum() <= 0:
            raise UserError(f"class_probs needs {len(CLASS_NAMES)} non-negative numbers ({', '.join(CLASS_NAMES)})")
        probs = probs / probs.sum()
    n_scenes = -(-n // frames_per_scene)
    scene_labels = _labels_for(seed, n_scenes, probs)
    images = np.empty((n, h, w, 3), np.uint8)
    labels = np.empty(n, np.int64)
    scene_ids = np.empty(n, dtype=f"<U{len(str(seed)) + 9}")
    view = (0, 0, w, h)
    jitter = conditions.jitter
    for s in range(n_scenes):
        rng = _scene_rng(seed, s)
        scene = _sample_scene(rng, conditions, int(scene_labels[s]))
        background = _background(scene, h, w, view)
        mask = _shadow_mask(scene, h, w, view)
        start, stop = s * frames_per_scene, min((s + 1) * frames_per_scene, n)
        moves = rng.normal(0.0, jitter, (stop - start, 3))
        grain = rng.normal(0.0, scene.noise, (h, w, 3)) if scene.noise > 0 else None
        for i, (dx, dy, ds) in zip(range(start, stop), moves, strict=True):
            canvas = background.copy()
            _draw_light(canvas, scene, view, dx, dy, 1.0 + ds)
            _draw_front(canvas, scene, view, dx * 0.5, dy * 0.5)
            images[i] = _camera(canvas, scene, view, mask, _noise(rng, scene, h, w, grain), 1.0 + ds)
        labels[start:stop] = scene.label
        scene_ids[start:stop] = f"s{seed}-{s:06d}"
    return images, labels, scene_ids


def drive(
    frame_size: tuple[int, int] = (480, 640),
    seed: int = 0,
    fps: float = 30.0,
    conditions: Conditions | None = None,
    scene_seconds: tuple[float, float] = (1.5, 4.0),
    n_frames: int | None = None,
) -> Iterator[tuple[np.ndarray, str]]:
    """A car's camera view: endless (or `n_frames`) RGB frames and the true state.

    Each scene lasts `scene_seconds` (a random length in that range); within it
    the light slowly grows (the car approaches) and drifts. The light stays in
    DRIVE_ROI, so `PreprocessSpec(roi=DRIVE_ROI)` gives what `generate()` gives.

    Example:
        >>> frames = drive(seed=2, conditions=Conditions.preset("night"), n_frames=3)
        >>> [truth for _, truth in frames] in (["red"] * 3, ["green"] * 3, ["yellow"] * 3, ["none"] * 3)
        True
    """
    h, w = _check_size(frame_size)
    conditions = conditions or Conditions()
    if fps <= 0 or not 0 < scene_seconds[0] <= scene_seconds[1]:
        raise UserError("fps must be positive and scene_seconds a (min, max) range of positive seconds")
    x, y, vw, vh = DRIVE_ROI
    view = (x * w, y * h, vw * w, vh * h)
    road_view = (0, 0, w, h)
    produced = 0
    for rng, scene, length in _drive_scenes(seed, fps, conditions, scene_seconds):
        if n_frames is not None and produced >= n_frames:
            return
        background = _background(scene, h, w, road_view)
        # lane markings for a road-like view
        cv2.line(background, (w // 2, h), (int(w * 0.45), int(h * 0.6)), (200, 200, 190) if not scene.night else (25, 25, 25), 6)
        mask = _shadow_mask(scene, h, w, view)
        noise_bank = [_noise(rng, scene, h, w, frame_share=1.0) for _ in range(3)]
        drift = rng.normal(0.0, 0.04, 2)
        for f in range(length):
            if n_frames is not None and produced >= n_frames:
                return
            t = f / max(length - 1, 1)
            wobble = rng.normal(0.0, conditions.jitter * 0.3, 2)
            dx, dy = drift[0] * t + wobble[0], drift[1] * t + wobble[1]
            canvas = background.copy()
            _draw_light(canvas, scene, view, dx, dy, 0.9 + 0.2 * t)
            _draw_front(canvas, scene, view, dx * 0.5, dy * 0.5)
            frame = _camera(canvas, scene, view, mask, noise_bank[f % 3], 1.0)
            produced += 1
            yield frame, CLASS_NAMES[scene.label]


def _drive_scenes(seed: int, fps: float, conditions: Conditions,
                  scene_seconds: tuple[float, float]) -> Iterator[tuple[np.random.Generator, _Scene, int]]:
    """The scenes of a drive in order: (the scene's rng, to draw its frames with; scene; frames)."""
    s = 0
    while True:
        rng = _scene_rng(seed, s)
        label = int(_labels_for(seed + 7919 * (s // 64), 64, None)[s % 64])
        scene = _sample_scene(rng, conditions, label)
        yield rng, scene, max(1, int(round(rng.uniform(*scene_seconds) * fps)))
        s += 1


def drive_conditions(
    n_frames: int,
    seed: int = 0,
    fps: float = 30.0,
    conditions: Conditions | None = None,
    scene_seconds: tuple[float, float] = (1.5, 4.0),
) -> list[str]:
    """The condition of each frame of `drive(...)` with the same arguments, without rendering.

    Returns "day", "night", "fog" or "night+fog" per frame: what to score a model by.

    Example:
        >>> drive_conditions(3, seed=2, conditions=Conditions.preset("fog"))
        ['fog', 'fog', 'fog']
    """
    tags: list[str] = []
    for _, scene, length in _drive_scenes(seed, fps, conditions or Conditions(), scene_seconds):
        if len(tags) >= n_frames:
            break
        tag = "+".join(name for name, on in (("night", scene.night), ("fog", scene.fog > 0)) if on) or "day"
        tags.extend([tag] * length)
    return tags[:n_frames]
