"""tf.data pipelines: uint8 images in, one-hot labels (+ sample weights) out.

Training: shuffle (reshuffled each epoch) -> batch -> augment to float32 (parallel map over blocks
of batches, fresh seeds each epoch) or cast to float32 -> prefetch, so augmentation overlaps with
training.
Evaluation: batch -> float32 -> prefetch.

Shard sets (train.data.shards) stream instead: the shard files holding the split are interleaved
(file order reshuffled each epoch), records outside the split are filtered out by their record
number, encoded images go through a shuffle buffer, are decoded in parallel, batched, augmented
and prefetched; memory holds the buffer and a few batches, whatever the set's size. Under the
multi-worker strategy workers share the files (AutoShardPolicy.FILE), or the records when there
are fewer files than workers (DATA).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from train.augment import AugmentConfig, augment_batch
from train.data.shards import ShardImages

SHUFFLE_BUFFER = 8192  # encoded records (a few KB each) shuffled before decoding
CYCLE_LENGTH = 16  # shard files read at once
PARSE_BLOCK = 256  # records parsed and filtered together (per-record ops cost more than the work)

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

    `images` may be a shard set's images (train.data.shards.ShardImages): then it streams.

    Example:
        >>> ds = train_dataset(np.zeros((4, 8, 8, 3), np.uint8), np.arange(4), 4, 2, seed=1)
    """
    import tensorflow as tf

    if isinstance(images, ShardImages):
        return stream_train_dataset(images, num_classes, batch_size, seed, augment, class_weight)

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
    """A validation/test split: never augmented, never shuffled (a shard set's images stream)."""
    import tensorflow as tf

    if isinstance(images, ShardImages):
        return stream_eval_dataset(images, num_classes, batch_size)

    onehot = np.eye(num_classes, dtype=np.float32)[labels]
    return _finish(tf, tf.data.Dataset.from_tensor_slices((images, onehot)).batch(batch_size))


def cluster_workers() -> int:
    """Workers (and chief) named by TF_CONFIG; 1 without it."""
    import json
    import os

    try:
        cluster = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster", {})
    except (ValueError, AttributeError):
        return 1
    return max(1, len(cluster.get("worker", [])) + len(cluster.get("chief", [])))


def _shard_options(tf: Any, files: int, deterministic: bool = True) -> Any:
    options = tf.data.Options()
    policy = tf.data.experimental.AutoShardPolicy
    options.experimental_distribute.auto_shard_policy = policy.FILE if files >= cluster_workers() else policy.DATA
    options.deterministic = deterministic
    return options


def shard_records(images: ShardImages, shuffle: bool, seed: int = 0) -> tuple[Any, int]:
    """(tf.data.Dataset of (uint8 image, int64 label) for the records of `images`, number of files read).

    Reads only the shard files that hold those records (each checked against its SHA-256 first);
    a record outside them is dropped by its number before its image is decoded. Without
    shuffling, records come in record order (files one after another; decoding stays parallel).
    """
    import tensorflow as tf

    from train.data.shards import decode

    shards, indices = images.shard_set, images.indices
    holding = shards.shards_holding(indices)
    shards.verify(holding)
    mask = np.zeros(len(shards), bool)
    mask[indices] = True
    wanted = tf.constant(mask)
    files = tf.data.Dataset.from_tensor_slices([str(s.path) for s in holding])
    if shuffle:
        files = files.shuffle(len(holding), seed=seed, reshuffle_each_iteration=True)
    records = files.interleave(lambda f: tf.data.TFRecordDataset(f, buffer_size=256 << 10),
                               cycle_length=max(1, min(len(holding), CYCLE_LENGTH)) if shuffle else 1,
                               num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    spec = {"image": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.int64),
            "index": tf.io.FixedLenFeature([], tf.int64)}

    def kept(serialized: Any) -> dict[str, Any]:  # a block of records parsed at once, those outside dropped
        features = tf.io.parse_example(serialized, spec)
        keep = tf.gather(wanted, features["index"])
        return {key: tf.boolean_mask(value, keep) for key, value in features.items()}

    parsed = records.batch(PARSE_BLOCK).map(kept, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).unbatch()
    if shuffle:
        parsed = parsed.shuffle(min(SHUFFLE_BUFFER, len(indices)), seed=seed, reshuffle_each_iteration=True)
    h, w = shards.image_size

    def decoded(features: Any) -> tuple[Any, Any]:
        image = decode(features["image"])
        return tf.ensure_shape(image, (h, w, 3)), features["label"]

    return parsed.map(decoded, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True), len(holding)


def stream_train_dataset(images: ShardImages, num_classes: int, batch_size: int, seed: int,
                         augment: AugmentConfig | None = None, class_weight: dict[int, float] | None = None) -> Any:
    """train_dataset for a shard set: streamed, shuffled by file order and a buffer, augmented per batch."""
    import tensorflow as tf

    records, files = shard_records(images, shuffle=True, seed=seed)
    table = tf.constant(np.array([(class_weight or {}).get(c, 1.0) for c in range(num_classes)], np.float32))

    def labelled(x: Any, label: Any) -> tuple[Any, ...]:
        onehot = tf.one_hot(label, num_classes, dtype=tf.float32)
        return (x, onehot, tf.gather(table, label)) if class_weight else (x, onehot)

    ds = records.map(labelled, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).batch(batch_size)
    if augment is not None and augment.enabled:
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip(ds, seeds).map(lambda batch, pair: (augment_batch(batch[0], pair, augment), *batch[1:]),
                                                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    else:
        ds = ds.map(lambda x, *rest: (tf.cast(x, tf.float32), *rest), num_parallel_calls=tf.data.AUTOTUNE,
                    deterministic=True)
    if cluster_workers() == 1:  # the count is known from the index: Keras shows progress, and no warning
        ds = ds.apply(tf.data.experimental.assert_cardinality(-(-len(images) // batch_size)))
    return ds.prefetch(tf.data.AUTOTUNE).with_options(_shard_options(tf, files))


def stream_eval_dataset(images: ShardImages, num_classes: int, batch_size: int) -> Any:
    """eval_dataset for a shard set: the split's records in file order, batched, as float32."""
    import tensorflow as tf

    records, files = shard_records(images, shuffle=False)
    ds = records.batch(batch_size).map(lambda x, label: (tf.cast(x, tf.float32), tf.one_hot(label, num_classes)),
                                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if cluster_workers() == 1:
        ds = ds.apply(tf.data.experimental.assert_cardinality(-(-len(images) // batch_size)))
    return ds.prefetch(tf.data.AUTOTUNE).with_options(_shard_options(tf, files))
