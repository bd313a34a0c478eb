"""The car default's recipe, sized from the data: what a TrainConfig left open (None) is chosen here,
once the training split is known, and every choice is recorded with its reason (run.json "recipe").

Why each rule (docs/training.md, "The car default"):

- batch size: about 1% of the training images, a power of two in [16, 128], so that a small set
  still gives dozens of steps an epoch (car-small at batch 128 on 1,000 images had 8);
- schedule in steps: at least `MIN_STEPS` optimizer steps and at least `MIN_EPOCHS` epochs,
  at most `MAX_EPOCHS` epochs; BatchNorm, Adam's moments and the warm-up all count steps, not epochs;
- learning rate: 0.003 at batch 128 (the CIFAR-10 recipe), scaled by sqrt(batch / 128);
  one-cycle: linear warm-up over the first 30% of the steps, then cosine decay to ~0;
- BatchNorm momentum 0.9 (PyTorch's default; Keras' 0.99 averages over ~100 steps, so after the
  ~110 steps of a small set the moving statistics still carry a third of their initial values
  and the model is right in training mode but wrong at inference);
- class weights when the rarest class has less than a third of the most common one's images
  (square-root-balanced: a 1:30 set is not turned into 30x noisy gradients), fully balanced when the
  rarest class has fewer than `FEW_FOR_FULL_WEIGHTS` images (under square-root weights such a class
  carries so little of the loss that never answering it costs the model almost nothing: on the bench's
  300-image 10-class 1:20 row, with 4 and 6 images of its rarest classes, one of them was found 0
  times in 1 of 3 seeds, and in none under full weights, at 1.8 points of accuracy);
- augmentation: horizontal flips and shifts of up to 1/8 of the image, in whole pixels;
- checkpoint: the last epoch when the validation split has fewer than `MIN_VAL_TO_RANK` images
  (one-cycle ends at a learning rate near 0, so the last epoch is the settled model, while the
  loss of ~90 images swings more from epoch to epoch than the model does: on the bench's 300-image
  rows the lowest-val-loss epoch was 7-51 of 53, often still in the warm-up), else the epoch of
  lowest validation loss.

Example:
    >>> choices, why = auto_choices(300, [236, 53, 12], (32, 32))
    >>> choices["batch_size"], choices["class_weights"]
    (16, 'sqrt')
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

MIN_STEPS = 1000
MIN_VAL_TO_RANK = 200
MIN_EPOCHS = 15
MAX_EPOCHS = 100
BASE_LR, BASE_BATCH = 0.003, 128
BN_MOMENTUM = 0.9
IMBALANCE_FOR_WEIGHTS = 3.0
FEW_FOR_FULL_WEIGHTS = 10
AUTO_FIELDS = ("batch_size", "epochs", "learning_rate", "bn_momentum", "class_weights", "augment", "checkpoint")


def auto_choices(n_train: int, class_counts: list[int], image_size: tuple[int, int],
                 n_val: int | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """Every field the car default sizes from the data (n_val: validation images, None if unknown), and why."""
    why: dict[str, str] = {}
    batch = int(min(128, max(16, 2 ** round(math.log2(max(1, n_train) / 100)))))
    why["batch_size"] = (f"{n_train} training images: about 1% of them, a power of two in [16, 128] "
                         f"-> {math.ceil(n_train / batch)} steps an epoch")
    steps_per_epoch = max(1, math.ceil(n_train / batch))
    epochs = int(min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(MIN_STEPS / steps_per_epoch))))
    why["epochs"] = (f"at least {MIN_STEPS} steps and {MIN_EPOCHS} epochs (at most {MAX_EPOCHS}): "
                     f"{epochs} epochs x {steps_per_epoch} steps = {epochs * steps_per_epoch} steps")
    lr = round(BASE_LR * math.sqrt(batch / BASE_BATCH), 6)
    why["learning_rate"] = f"{BASE_LR:g} at batch {BASE_BATCH}, scaled by sqrt({batch}/{BASE_BATCH}); one-cycle warm-up over the first 30% of the steps"
    why["bn_momentum"] = (f"{BN_MOMENTUM}: BatchNorm's moving statistics average over ~10 steps, so they match the "
                          "final weights even on a short schedule (Keras' 0.99 needs hundreds of steps)")
    present = [c for c in class_counts if c > 0]
    ratio = max(present) / min(present) if present else 1.0
    rarest = min(present) if present else 0
    weights: bool | str
    if ratio < IMBALANCE_FOR_WEIGHTS:
        weights, reason = False, f"< {IMBALANCE_FOR_WEIGHTS:g}: no weights"
    elif rarest < FEW_FOR_FULL_WEIGHTS:
        weights, reason = True, (f">= {IMBALANCE_FOR_WEIGHTS:g}, rarest class {rarest} images < "
                                 f"{FEW_FOR_FULL_WEIGHTS}: fully balanced weights")
    else:
        weights, reason = "sqrt", f">= {IMBALANCE_FOR_WEIGHTS:g}: square-root-balanced weights"
    why["class_weights"] = f"most common : rarest class = {ratio:.1f} : 1 {reason}"
    shift = max(1, round(min(image_size) / 8))
    offsets = sorted({-shift, -max(1, shift // 2), 0, max(1, shift // 2), shift})
    augment = {"horizontal_flip": True, "width_shift_range": offsets, "height_shift_range": offsets}
    why["augment"] = f"horizontal flips and whole-pixel shifts up to {shift} px (1/8 of {min(image_size)} px)"
    small_val = n_val is not None and n_val < MIN_VAL_TO_RANK
    checkpoint = "last" if small_val else "best"
    why["checkpoint"] = (f"{n_val} validation images < {MIN_VAL_TO_RANK}: too few to rank epochs by their loss; "
                         "the last epoch (one-cycle ends at a learning rate near 0)" if small_val
                         else "the epoch of lowest validation loss")
    return ({"batch_size": batch, "epochs": epochs, "learning_rate": lr, "bn_momentum": BN_MOMENTUM,
             "class_weights": weights, "augment": augment, "checkpoint": checkpoint}, why)


def resolve(config: Any, n_train: int, class_counts: list[int], image_size: tuple[int, int],
            n_val: int | None = None) -> tuple[Any, dict[str, Any]]:
    """Fill the config's open (None) fields; returns (config, the record for run.json)."""
    open_fields = [f for f in AUTO_FIELDS if getattr(config, f) is None]
    if not open_fields:
        return config, {"source": "given", "chosen": {}, "why": {}}
    choices, why = auto_choices(n_train, class_counts, image_size, n_val)
    chosen = {f: choices[f] for f in open_fields}
    return replace(config, **chosen), {"source": "auto (sized from the training split)",
                                       "chosen": chosen, "why": {f: why[f] for f in open_fields},
                                       "given": [f for f in AUTO_FIELDS if f not in open_fields]}
