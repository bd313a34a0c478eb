"""Augmentation semantics: the chapter's ImageDataGenerator options mean what they say."""

from __future__ import annotations

import numpy as np
import pytest

from edge.errors import UserError
from train.augment import AugmentConfig, augment_batch
from train.training.pipeline import eval_dataset, train_dataset

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, (16, 12, 12, 3), dtype=np.uint8)


def _aug(config: AugmentConfig, seed=(3, 4), images=IMAGES) -> np.ndarray:
    return augment_batch(images, list(seed), config).numpy()


def test_horizontal_flip_really_flips_about_half():
    out = _aug(AugmentConfig(horizontal_flip=True))
    flipped = [bool((o == i[:, ::-1]).all()) for o, i in zip(out, IMAGES, strict=True)]
    kept = [bool((o == i).all()) for o, i in zip(out, IMAGES, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 2 <= sum(flipped) <= 14


def test_vertical_flip():
    out = _aug(AugmentConfig(vertical_flip=True))
    assert all((o == i[::-1]).all() or (o == i).all() for o, i in zip(out, IMAGES, strict=True))
    assert any((o == i[::-1]).all() for o, i in zip(out, IMAGES, strict=True))


def test_shift_offsets_come_from_the_list():
    offsets = [-3, 2]
    out = _aug(AugmentConfig(width_shift_range=offsets, fill_mode="constant"), seed=(1, 1))
    seen = set()
    for o, i in zip(out, IMAGES, strict=True):
        matches = [d for d in offsets if (o[:, max(d, 0):12 + min(d, 0)] == i[:, max(-d, 0):12 - max(d, 0)]).all()]
        assert len(matches) == 1
        seen.add(matches[0])
    assert seen == set(offsets)
    down = _aug(AugmentConfig(height_shift_range=[2], fill_mode="constant"))
    assert (down[:, 2:] == IMAGES[:, :-2]).all() and (down[:, :2] == 0).all()


def test_brightness_factor_stays_in_range():
    flat = np.full((32, 4, 4, 3), 100, np.uint8)
    out = _aug(AugmentConfig(brightness_range=(0.5, 1.5)), images=flat)
    factors = out[:, 0, 0, 0] / 100
    assert factors.min() >= 0.5 - 0.01 and factors.max() <= 1.5 + 0.01
    assert factors.std() > 0.1  # a factor per image, not one for all
    assert (out == out[:, :1, :1, :1]).all(axis=(1, 2, 3)).all()  # uniform per image


def test_zoom_above_one_enlarges():
    image = np.zeros((1, 21, 21, 3), np.uint8)
    image[0, 8:13, 8:13] = 255  # a 5x5 square in the middle
    out = _aug(AugmentConfig(zoom_range=(2.0, 2.0), fill_mode="constant"), images=image)
    assert (out[0, :, :, 0] > 127).sum() > 4 * 25 * 0.8


def test_bad_options_are_user_errors():
    with pytest.raises(UserError, match="brightness_range"):
        AugmentConfig.from_dict({"brightness_range": [1.5]})
    with pytest.raises(UserError, match="unknown augmentation"):
        AugmentConfig.from_dict({"colour_shift": 3})
    with pytest.raises(UserError, match="cannot read augmentation"):
        AugmentConfig.parse("{not json")


def _epochs(ds, n=2):
    return [np.concatenate([batch[0].numpy() for batch in ds]) for _ in range(n)]


def test_training_split_changes_each_epoch_and_repeats_with_the_seed():
    labels = np.arange(16) % 4
    config = AugmentConfig(horizontal_flip=True, rotation_range=20)
    first, second = _epochs(train_dataset(IMAGES, labels, 4, 8, seed=5, augment=config))
    again, _ = _epochs(train_dataset(IMAGES, labels, 4, 8, seed=5, augment=config))
    assert not np.array_equal(first, second)  # fresh augmentation (and order) each epoch
    assert np.array_equal(first, again)  # same seed, same pictures
    assert len(first) == len(IMAGES)  # replaces samples, does not add any


def test_augmentation_only_on_the_training_split():
    labels = np.arange(16) % 4
    shown = np.concatenate([batch[0].numpy() for batch in eval_dataset(IMAGES, labels, 4, 8)])
    assert np.array_equal(shown, IMAGES.astype(np.float32))


def test_augment_preview_png(tmp_path):
    from edge.cli import main

    image = tmp_path / "a.png"
    import cv2

    cv2.imwrite(str(image), IMAGES[0])
    out = tmp_path / "preview.png"
    assert main(["augment-preview", "--images", str(image), str(image), "--size", "48", "--out", str(out)]) == 0
    picture = cv2.imread(str(out))
    assert picture is not None and picture.shape[0] > picture.shape[1]  # ten rows of two images


@pytest.mark.parametrize("fill_mode", ["nearest", "constant", "reflect", "wrap"])
def test_fast_flip_and_shift_match_the_projective_transform(fill_mode):
    options = dict(horizontal_flip=True, vertical_flip=True, width_shift_range=[-5, -1, 3],
                   height_shift_range=[-2, 4], fill_mode=fill_mode)
    fast = AugmentConfig(**options)
    resampled = AugmentConfig(**options, rotation_range=1e-7)  # forces the transform path
    assert not fast.needs_resampling and resampled.needs_resampling
    assert np.array_equal(_aug(fast, seed=(9, 9)), _aug(resampled, seed=(9, 9)))


def test_class_weights_become_per_sample_weights():
    labels = np.array([0, 0, 0, 1] * 4)
    ds = train_dataset(IMAGES, labels, 2, 16, seed=1, class_weight={0: 0.5, 1: 2.0})
    _, onehot, weights = next(iter(ds))
    assert np.allclose(weights.numpy(), np.where(onehot.numpy()[:, 1] == 1, 2.0, 0.5))


NP_PAD = {"constant": "constant", "nearest": "edge", "reflect": "symmetric", "wrap": "wrap"}


def _flip_then_shift(image: np.ndarray, flip: bool, dy: int, dx: int, fill_mode: str) -> np.ndarray:
    """numpy reference: flip left-right, then shift down dy and right dx, filling by fill_mode."""
    image = image[:, ::-1] if flip else image
    pad = 6
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode=NP_PAD[fill_mode])
    h, w = image.shape[:2]
    return padded[pad - dy:pad - dy + h, pad - dx:pad - dx + w]


@pytest.mark.parametrize("fill_mode", ["nearest", "constant", "reflect", "wrap"])
def test_fused_flip_and_shift_gather_equals_flip_then_shift(fill_mode):
    options = dict(horizontal_flip=True, width_shift_range=[-5, 3], height_shift_range=[-2, 4], fill_mode=fill_mode)
    out = _aug(AugmentConfig(**options), seed=(2, 7))
    assert out.dtype == np.float32
    seen = set()
    for o, i in zip(out, IMAGES, strict=True):
        matches = [(f, dy, dx) for f in (False, True) for dy in (-2, 4) for dx in (-5, 3)
                   if np.array_equal(o, _flip_then_shift(i, f, dy, dx, fill_mode))]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) >= 5  # the draws vary per image


def test_closed_form_transform_equals_the_composed_matrices():
    import tensorflow as tf

    from train.augment import _inverse_transforms

    rng = np.random.default_rng(1)
    n, w, h = 6, 20.0, 12.0
    dx, dy, angle, shear = rng.normal(size=n), rng.normal(size=n), rng.normal(size=n), rng.normal(size=n) * 0.5
    zoom, fx, fy = rng.uniform(0.5, 2, n), rng.choice([-1.0, 1.0], n), rng.choice([-1.0, 1.0], n)
    got = _inverse_transforms(tf, w, h, *(tf.constant(v, tf.float32) for v in (dx, dy, fx, fy, angle, shear, zoom)))
    cx, cy = (w - 1) / 2, (h - 1) / 2
    for k in range(n):  # forward = shift . rotate . shear . zoom . flip about the centre, inverted
        c, s = np.cos(angle[k]), np.sin(angle[k])
        forward = (np.array([[1, 0, cx + dx[k]], [0, 1, cy + dy[k]], [0, 0, 1]])
                   @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
                   @ np.array([[1, -np.sin(shear[k]), 0], [0, np.cos(shear[k]), 0], [0, 0, 1]])
                   @ np.diag([zoom[k], zoom[k], 1]) @ np.diag([fx[k], fy[k], 1])
                   @ np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]]))
        assert np.allclose(got.numpy()[k], np.linalg.inv(forward)[:2].ravel(), atol=1e-4)


def test_opencv_warp_matches_tensorflows_bilinear_transform():
    import tensorflow as tf

    from train.augment import _warp

    angle = np.deg2rad(20)
    transform = np.array([[np.cos(angle) / 1.5, np.sin(angle) / 1.5, 3.2, -np.sin(angle) / 1.5, np.cos(angle) / 1.5, 2.7]],
                         np.float32)  # zoomed in 1.5x, so every sample lands inside the image
    images = IMAGES[:4]
    ours = _warp(images, np.repeat(transform, 4, 0), "constant").astype(np.float32)
    reference = tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.cast(images, tf.float32), transforms=np.pad(np.repeat(transform, 4, 0), ((0, 0), (0, 2))),
        output_shape=[12, 12], fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT").numpy()
    assert np.abs(ours - reference).max() <= 1  # the same samples; OpenCV rounds to uint8


def test_augmented_batches_are_the_plain_batches_transformed():
    images = np.repeat(IMAGES, 2, axis=0)[:20]  # 20 images, batch 8: two full batches and one of 4
    labels = np.arange(20) % 4
    plain = list(train_dataset(images, labels, 4, 8, seed=3))
    augmented = list(train_dataset(images, labels, 4, 8, seed=3, augment=AugmentConfig(brightness_range=(1.0, 1.0))))
    assert [len(b[0]) for b in augmented] == [len(b[0]) for b in plain] == [8, 8, 4]
    for (x, y), (ax, ay) in zip(plain, augmented, strict=True):
        assert ax.dtype == x.dtype and np.array_equal(ay.numpy(), y.numpy()) and np.allclose(ax.numpy(), x.numpy())
