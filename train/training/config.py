"""TrainConfig (everything `edgekit train` takes) and RunResult (what a run gives back)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from edge.errors import UserError, reject_unknown_keys

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
LR_SCHEDULES = ("constant", "cosine", "onecycle")
STRATEGIES = ("default", "mirrored", "multi-worker")
VALIDATION_SOURCES = ("val", "test")
CHECKPOINTS = ("best", "last")


@dataclass
class TrainConfig:
    """One training run. Round-trips through `to_dict` / `from_dict` (stored in run.json).

    Args:
        dataset: dataset reference for train.data.load_dataset (.npz, folder, .zip, keras:..., synthetic:...).
        model: preset name (`edgekit presets`) or a .json/.toml model spec.
        out: run folder to write.
        split_file: split JSON from `edgekit split`; without it a dataset with given
            train/test subsets (the CIFAR archive) trains on "train" and validates on "test"
            (as the chapter does), and any other dataset gets a fresh group-hash split.
        validation: which split validates during training: "val" or "test".
        image_size: (height, width) to load images at; default: the spec's input_shape if it
            sets one, else the dataset's own size.
        init_model: a model.keras to fine-tune from (same classes) instead of a fresh model.
        augment: AugmentConfig options (training split only).
        bn_momentum: momentum of every BatchNormalization layer (None: Keras' 0.99).
        class_weights: False, True (balanced: n / (k * count)) or "sqrt" (the square root of those).
        Open fields (None) of batch_size, epochs, learning_rate, bn_momentum, class_weights,
        augment and checkpoint are sized from the training split by train.training.recipe (the car default).
        limit: use at most this many training and validation samples (quick tries, benchmarks).
        checkpoint: which epoch's model the run keeps: "best" (lowest validation loss) or "last".
        time_budget: minutes for fit(): epochs and the learning-rate schedule are sized to the
            measured epoch time (train.training.time_budget); `epochs` is then only the first guess.

    Example:
        >>> TrainConfig(dataset="synthetic:n=200", model="baseline", epochs=1).to_dict()["epochs"]
        1
    """

    dataset: str
    model: str = "baseline"
    out: str = "runs/run"
    split_file: str | None = None
    validation: str = "val"
    image_size: tuple[int, int] | None = None
    epochs: int | None = 5
    batch_size: int | None = 32
    optimizer: str = "adam"
    learning_rate: float | None = 1e-3
    lr_schedule: str = "constant"
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    seed: int = 1
    class_weights: bool | str | None = False
    bn_momentum: float | None = None
    patience: int | None = None
    restore_best: bool = True
    augment: dict[str, Any] | None = field(default_factory=dict)
    strategy: str = "default"
    init_model: str | None = None
    deterministic: bool = True
    limit: int | None = None
    verbose: int = 1
    time_budget: float | None = None
    checkpoint: str | None = "best"

    def __post_init__(self) -> None:
        if self.image_size is not None:
            self.image_size = (int(self.image_size[0]), int(self.image_size[1]))
        checks = [(self.optimizer, OPTIMIZERS, "optimizer"), (self.lr_schedule, LR_SCHEDULES, "lr_schedule"),
                  (self.strategy, STRATEGIES, "strategy"), (self.validation, VALIDATION_SOURCES, "validation")]
        if self.checkpoint is not None:
            checks.append((self.checkpoint, CHECKPOINTS, "checkpoint"))
        for value, allowed, name in checks:
            if value not in allowed:
                raise UserError(f"unknown {name} {value!r}: use one of {', '.join(allowed)}")
        if (self.epochs is not None and self.epochs < 1) or (self.batch_size is not None and self.batch_size < 1):
            raise UserError(f"epochs and batch size must be >= 1, got {self.epochs} and {self.batch_size}")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise UserError(f"learning rate must be > 0, got {self.learning_rate}")
        if not 0 <= self.label_smoothing < 1:
            raise UserError(f"label smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.class_weights not in (None, True, False, "sqrt"):
            raise UserError(f"class weights must be on, off or 'sqrt', got {self.class_weights!r}")
        if self.bn_momentum is not None and not 0 <= self.bn_momentum < 1:
            raise UserError(f"BatchNorm momentum must be in [0, 1), got {self.bn_momentum}")
        if self.time_budget is not None and not self.time_budget > 0:
            raise UserError(f"--time-budget must be > 0 minutes, got {self.time_budget}")
        if self.patience is not None and self.patience < 1:
            raise UserError(f"early-stopping patience must be >= 1, got {self.patience}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["image_size"] = list(self.image_size) if self.image_size else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        reject_unknown_keys(data, (f.name for f in fields(cls)), "training option(s)")
        return cls(**data)


@dataclass
class RunResult:
    """What a finished (or stopped) run left in its folder.

    status: "completed", "early-stopped", "nan" (loss became NaN) or "interrupted" (Ctrl-C).
    """

    out: Path
    status: str
    summary: dict[str, Any]
    history: dict[str, list[float]]
    message: str = ""

    @property
    def model_path(self) -> Path:
        return self.out / "model.keras"
