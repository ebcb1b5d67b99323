"""Segmentation of FIB-SEM stacks: 2D, 2.5D and 3D U-Nets trained on synthetic stacks, block-wise inference
on stacks of any size, Otsu / k-means baselines and the paper's score tables.

Importing this package does not import torch; the functions that need it import it when called.
"""

from fibsynth.segment.baseline import kmeans_threshold, otsu_threshold, segment_baseline
from fibsynth.segment.data import neighbour_indices
from fibsynth.segment.infer import BlockPredictor, predict_array, predict_file
from fibsynth.segment.model import ModelConfig, build_net, load_model, save_model
from fibsynth.segment.train import TrainSettings, fit, train

__all__ = [
    "BlockPredictor",
    "ModelConfig",
    "TrainSettings",
    "build_net",
    "fit",
    "kmeans_threshold",
    "load_model",
    "neighbour_indices",
    "otsu_threshold",
    "predict_array",
    "predict_file",
    "save_model",
    "segment_baseline",
    "train",
]
