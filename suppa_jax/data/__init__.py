"""Training and evaluation data: image sources, the grain pipeline, synthetic dead leaves.

* :mod:`~suppa_jax.data.sources`: random-access image sources (bundled samples, dead leaves,
  folders, TFDS, weighted mixtures) and the held-out evaluation photos;
* :mod:`~suppa_jax.data.pipeline`: the grain training pipeline (random patches, augmentation,
  sharding by process, resumable iterators) and the evaluation images;
* :mod:`~suppa_jax.data.deadleaves`: the procedural colour dead-leaves model;
* :mod:`~suppa_jax.data.cache`: the persistent cache of decoded images (crops read as a few rows);
* :mod:`suppa_jax.config.sources`: the source specifications a config may name.

Measurements are not made here but in the jitted step (:func:`suppa_jax.physics.degrade_batch`).
"""

from suppa_jax.config.sources import SAMPLE_SPLITS, SOURCE_FORMS, parse_mixture
from suppa_jax.data import cache
from suppa_jax.data.cache import CachedImage, DecodedCache
from suppa_jax.data.deadleaves import DeadLeaves
from suppa_jax.data.pipeline import build_train_dataset, eval_images, orient
from suppa_jax.data.sources import (
    IMAGE_EXTENSIONS,
    PHOTOS,
    ArraySource,
    DeadLeavesSource,
    FolderSource,
    ImageSource,
    MixtureSource,
    TfdsSource,
    build_source,
    held_out_photos,
    sample_images,
    to_channels,
    to_unit,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "PHOTOS",
    "SAMPLE_SPLITS",
    "SOURCE_FORMS",
    "ArraySource",
    "CachedImage",
    "DeadLeaves",
    "DeadLeavesSource",
    "DecodedCache",
    "FolderSource",
    "ImageSource",
    "MixtureSource",
    "TfdsSource",
    "build_source",
    "build_train_dataset",
    "cache",
    "eval_images",
    "held_out_photos",
    "orient",
    "parse_mixture",
    "sample_images",
    "to_channels",
    "to_unit",
]
