"""Every use of Keras' private internals in edgekit, in one place.

Checked against Keras 3.15.1 with TensorFlow's backend (the versions in .venv when this was
written). A Keras upgrade may move or rename these: `tests/test_train_distributed.py` (the
multi-worker run) is the test that fails when it does.
"""

from __future__ import annotations

from typing import Any


def prepare_multi_worker(model: Any, strategy: Any, train_ds: Any) -> None:
    """Work around Keras 3 + MultiWorkerMirroredStrategy: Keras' symbolic build reduces a whole
    distributed (x, y) batch with one collective call, which the collective strategy rejects.
    Build optimizer and metrics here from one local batch instead, then let fit() skip that step
    (fit still runs under the strategy's scope, so training stays distributed). Keras also
    reduces the logged scalar metrics with axis=0, which this strategy rejects: those are
    averaged over workers here instead."""
    batch = next(iter(train_ds))
    with strategy.scope():
        model._symbolic_build(data_batch=batch)  # private: Model._symbolic_build
    model._distribute_strategy = None  # private: fit() then skips its own build under the strategy
    from keras.src.backend.tensorflow import trainer as tf_trainer  # private module

    if not getattr(tf_trainer.reduce_per_replica, "edgekit_patched", False):
        import tensorflow as tf

        def reduce_scalars_too(values: Any, strategy: Any, reduction: str) -> Any:
            # Keras reduces with axis=0, which fails for the scalar losses/metrics it logs
            if reduction == "auto" and isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
                return tf.nest.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
            return original(values, strategy, reduction)

        original = tf_trainer.reduce_per_replica
        reduce_scalars_too.edgekit_patched = True  # type: ignore[attr-defined]
        tf_trainer.reduce_per_replica = reduce_scalars_too
