"""tf.data pipelines: uint8 images in, one-hot labels (+ sample weights) out.

Training: shuffle (reshuffled each epoch) -> batch -> augment to float32 (parallel map over blocks
of batches, fresh seeds each epoch) or cast to float32 -> prefetch, so augmentation overlaps with
training.
Evaluation: batch -> float32 -> prefetch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from train.augment import AugmentConfig, augment_batch

AUGMENT_BLOCK = 4  # batches augmented together
SMALL_IMAGE = 64 * 64 * 3  # values per image up to which blocks are used


def _options(tf: Any) -> Any:
    options = tf.data.Options()
    # in-memory arrays have no files to shard: shard by element under multi-worker training
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    options.deterministic = True
    return options


def train_dataset(images: np.ndarray, labels: np.ndarray, num_classes: int, batch_size: int, seed: int,
                  augment: AugmentConfig | None = None, class_weight: dict[int, float] | None = None) -> Any:
    """The training split as a tf.data.Dataset of (float32 0-255 images, one-hot labels[, weights]).

    Example:
        >>> ds = train_dataset(np.zeros((4, 8, 8, 3), np.uint8), np.arange(4), 4, 2, seed=1)
    """
    import tensorflow as tf

    onehot = np.eye(num_classes, dtype=np.float32)[labels]
    parts: tuple[Any, ...] = (images, onehot)
    if class_weight:
        weights = np.array([class_weight.get(int(c), 1.0) for c in range(num_classes)], np.float32)[labels]
        parts = (*parts, weights)
    ds = tf.data.Dataset.from_tensor_slices(parts)
    ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    if augment is None or not augment.enabled:
        return _finish(tf, ds.batch(batch_size))
    # small images: per-op overhead dominates, so augment several batches at once, then split them
    # again (rebatch keeps the same batches, the last one partial); augment_batch returns float32
    block = AUGMENT_BLOCK if np.prod(images.shape[1:]) <= SMALL_IMAGE else 1
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    ds = tf.data.Dataset.zip(ds.batch(batch_size * block), seeds).map(
        lambda batch, pair: (augment_batch(batch[0], pair, augment), *batch[1:]),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if block > 1:
        # rebatch hides the count from Keras, which then warns "Your input ran out of data" after
        # epoch 1; it is exactly ceil(n / batch) batches, so say so
        batches = -(-len(images) // batch_size)
        ds = ds.rebatch(batch_size).apply(tf.data.experimental.assert_cardinality(batches))
    return _finish(tf, ds, cast=False)


def _finish(tf: Any, ds: Any, cast: bool = True) -> Any:
    # float32 pixels (0-255; the model's Rescaling scales them): tf.distribute cannot reduce uint8 batches
    if cast:
        ds = ds.map(lambda x, *rest: (tf.cast(x, tf.float32), *rest), num_parallel_calls=tf.data.AUTOTUNE,
                    deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE).with_options(_options(tf))


def eval_dataset(images: np.ndarray, labels: np.ndarray, num_classes: int, batch_size: int) -> Any:
    """A validation/test split: never augmented, never shuffled."""
    import tensorflow as tf

    onehot = np.eye(num_classes, dtype=np.float32)[labels]
    return _finish(tf, tf.data.Dataset.from_tensor_slices((images, onehot)).batch(batch_size))
