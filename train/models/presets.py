"""Named model specs: every CIFAR-10 variant of the chapter
(docs/training.md#the-chapter), and edgekit's car default.

Counts are on 32x32x3 input with 10 classes (classifier Dense + softmax added by
the builder). `CHAPTER_PARAMS` holds the chapter's printed totals; a test checks them.
"""

from __future__ import annotations

from typing import Any


def _conv(filters: int, kernel: int = 3, padding: str = "valid", **more: Any) -> dict[str, Any]:
    return {"type": "conv", "filters": filters, "kernel": kernel, "padding": padding, "activation": "relu", **more}


def _dense(units: int) -> dict[str, Any]:
    return {"type": "dense", "units": units, "activation": "relu"}


POOL = {"type": "maxpool"}
FLAT = {"type": "flatten"}


def _chapter(description: str, *layers: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "layers": list(layers)}


def _bn_conv(filters: int, separable: bool = False) -> dict[str, Any]:
    return _conv(filters, 3, "same", batchnorm=True, separable=separable)


PRESETS: dict[str, dict[str, Any]] = {
    "baseline": _chapter("chapter start: conv 8 3x3, max-pool, dense 256",
                         _conv(8), POOL, FLAT, _dense(256)),
    "conv32": _chapter("conv layer with 32 channels", _conv(32), POOL, FLAT, _dense(256)),
    "four-conv-same": _chapter("four conv 8 layers, the last three 'same'",
                               _conv(8), _conv(8, padding="same"), _conv(8, padding="same"),
                               _conv(8, padding="same"), POOL, FLAT, _dense(256)),
    "four-conv-valid": _chapter("four conv 8 layers, all 'valid'",
                                _conv(8), _conv(8), _conv(8), _conv(8), POOL, FLAT, _dense(256)),
    "same-padding": _chapter("baseline with 'same' padding", _conv(8, padding="same"), POOL, FLAT, _dense(256)),
    "kernel7": _chapter("7x7 kernel, 'same' padding", _conv(8, 7, "same"), POOL, FLAT, _dense(256)),
    "no-maxpool": _chapter("baseline without max-pooling", _conv(8), FLAT, _dense(256)),
    "two-maxpool": _chapter("two blocks of two convs, each with max-pooling",
                            _conv(8), _conv(8, padding="same"), POOL,
                            _conv(8, padding="same"), _conv(8, padding="same"), POOL, FLAT, _dense(256)),
    "dense1024": _chapter("dense layer with 1,024 units", _conv(8), POOL, FLAT, _dense(1024)),
    "three-dense": _chapter("three dense layers 512/256/128",
                            _conv(8), POOL, FLAT, _dense(512), _dense(256), _dense(128)),
    "car-small": {
        "description": "edgekit's car default: BN + depthwise-separable convs, int8-friendly, <150K params",
        "layers": [
            _bn_conv(32), _bn_conv(32), POOL,
            _bn_conv(64), _bn_conv(64, separable=True), POOL,
            _bn_conv(128, separable=True), _bn_conv(128, separable=True), POOL,
            _bn_conv(256, separable=True), {"type": "gap"},
            {"type": "dropout", "rate": 0.2},
        ],
        # the recipe `edgekit train` uses unless told otherwise; None: sized from the training split
        # by train.training.recipe (batch, epochs in steps, learning rate, BatchNorm momentum,
        # class weights, augmentation, which epoch to keep); on CIFAR-10's 50,000 images that is batch 128, 15 epochs, lr 0.003
        "recipe": {"epochs": None, "batch_size": None, "optimizer": "adam", "learning_rate": None,
                   "lr_schedule": "onecycle", "label_smoothing": 0.1, "weight_decay": 0.0,
                   "augment": None, "bn_momentum": None, "class_weights": None, "checkpoint": None},
    },
    "car-resnet8": {
        "description": "MLPerf Tiny's ResNet-8 shape (issue 17): conv 16, residual blocks 16/32/64, global pool",
        "layers": [
            _bn_conv(16),
            {"type": "residual", "filters": 16},
            {"type": "residual", "filters": 32, "strides": 2},
            {"type": "residual", "filters": 64, "strides": 2},
            {"type": "gap"},
        ],
        "recipe": {"epochs": None, "batch_size": None, "optimizer": "adam", "learning_rate": None,
                   "lr_schedule": "onecycle", "label_smoothing": 0.1, "weight_decay": 0.0,
                   "augment": None, "bn_momentum": None, "class_weights": None, "checkpoint": None},
    },
}

CAR_PRESETS = ("car-small", "car-resnet8")
CHAPTER_PRESETS = [name for name in PRESETS if name not in CAR_PRESETS]

# The totals the chapter prints for each variant (32x32x3 input, 10 classes).
CHAPTER_PARAMS = {
    "baseline": 463_850, "conv32": 1_846_922, "four-conv-same": 465_602, "four-conv-valid": 299_714,
    "same-padding": 527_338, "kernel7": 528_298, "no-maxpool": 1_846_250, "two-maxpool": 105_154,
    "dense1024": 1_854_698, "three-dense": 1_087_850,
}

# The chapter's figures (5 epochs, batch 32, Adam, CIFAR-10 test split as validation).
CHAPTER_RESULTS: dict[str, dict[str, float]] = {
    "baseline": {"training_time_s": 90.96, "min_loss": 0.8852, "min_val_loss": 1.1421, "max_accuracy": 0.6871, "max_val_accuracy": 0.6069},
    "conv32": {"training_time_s": 124.37, "min_loss": 0.6111, "min_val_loss": 1.0291, "max_accuracy": 0.7849, "max_val_accuracy": 0.6569},
    "four-conv-same": {"training_time_s": 117.05, "min_loss": 0.6015, "min_val_loss": 1.0269, "max_accuracy": 0.7864, "max_val_accuracy": 0.6520},
    "four-conv-valid": {"training_time_s": 109.74, "min_loss": 0.8019, "min_val_loss": 1.0898, "max_accuracy": 0.7166, "max_val_accuracy": 0.6320},
    "same-padding": {"training_time_s": 91.44, "min_loss": 0.7654, "min_val_loss": 1.0724, "max_accuracy": 0.7313, "max_val_accuracy": 0.6325},
    "kernel7": {"training_time_s": 94.85, "min_loss": 0.7787, "min_val_loss": 1.1565, "max_accuracy": 0.7267, "max_val_accuracy": 0.6091},
    "no-maxpool": {"training_time_s": 121.02, "min_loss": 0.8000, "min_val_loss": 1.2464, "max_accuracy": 0.7174, "max_val_accuracy": 0.5711},
    "two-maxpool": {"training_time_s": 105.31, "min_loss": 0.8419, "min_val_loss": 0.9395, "max_accuracy": 0.7032, "max_val_accuracy": 0.6687},
    "dense1024": {"training_time_s": 122.06, "min_loss": 0.6534, "min_val_loss": 1.0936, "max_accuracy": 0.7722, "max_val_accuracy": 0.6303},
    "three-dense": {"training_time_s": 111.73, "min_loss": 0.7528, "min_val_loss": 1.1094, "max_accuracy": 0.7332, "max_val_accuracy": 0.6115},
}
