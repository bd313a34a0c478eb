"""Model specs, presets and the Keras builder."""

from train.models.build import build_model, count_params
from train.models.presets import CHAPTER_PARAMS, CHAPTER_PRESETS, CHAPTER_RESULTS, PRESETS
from train.models.spec import ModelSpec, load_spec

__all__ = ["CHAPTER_PARAMS", "CHAPTER_PRESETS", "CHAPTER_RESULTS", "PRESETS", "ModelSpec",
           "build_model", "count_params", "load_spec"]
