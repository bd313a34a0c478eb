"""Training: TrainConfig -> run folder (model, history, summary, curves, diagnosis).

Example:
    >>> from train.training import TrainConfig, train
    >>> result = train(TrainConfig(dataset="data.npz", model="baseline", epochs=5, out="runs/a"))  # doctest: +SKIP
"""

from train.training.config import RunResult, TrainConfig
from train.training.run import train

__all__ = ["RunResult", "TrainConfig", "train"]
