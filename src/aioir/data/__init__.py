"""Datasets for training and evaluation.

- :mod:`~aioir.data.folders` — paired and unpaired image folders, the standard pairing rules;
- :mod:`~aioir.data.layouts` — declarative standard layouts and ``check_layout``;
- :mod:`~aioir.data.transforms` — paired crops, flips and rotations;
- :mod:`~aioir.data.synthetic` — clean photos + degradation spec → training/test items;
- :mod:`~aioir.data.task_specs` — YAML ``data.tasks`` → task specs (``parse_task_specs``);
- :mod:`~aioir.data.patches` — task-labelled patches of paired folders, task concatenation,
  validation hold-outs;
- :mod:`~aioir.data.samplers` — the task-balanced (DDP-correct, resumable) batch sampler and the
  ``(epoch, index)`` keys that make training items independent of workers;
- :mod:`~aioir.data.photos` — the offline photo corpus (:mod:`~aioir.data.eet` reads the photos
  Enlightenment ships in Eet files); :mod:`~aioir.data.samples` — shipped photos.
"""

from __future__ import annotations

from aioir.data.folders import PairedFolderDataset, UnpairedFolderDataset
from aioir.data.layouts import LAYOUTS, check_layout, get_layout, main_check
from aioir.data.photos import build_photo_corpus, load_corpus
from aioir.data.samplers import TaskBalancedBatchSampler
from aioir.data.samples import sample_images
from aioir.data.synthetic import SyntheticDegradationDataset, TaskSpec
from aioir.data.transforms import random_crop, random_flip_rotate

__all__ = [
    "LAYOUTS",
    "PairedFolderDataset",
    "SyntheticDegradationDataset",
    "TaskBalancedBatchSampler",
    "TaskSpec",
    "UnpairedFolderDataset",
    "build_photo_corpus",
    "check_layout",
    "get_layout",
    "load_corpus",
    "main_check",
    "random_crop",
    "random_flip_rotate",
    "sample_images",
]
