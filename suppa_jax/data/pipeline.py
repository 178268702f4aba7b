"""The grain training pipeline, and the evaluation images.

Training (:func:`build_train_dataset`) is a grain pipeline over the global stream of examples::

    epoch order (range(N·k), a fresh permutation each epoch) → random crop + flips/rot90
               (+ channel order) → every P-th → batch (pixels → float32)

An epoch is ``k = patches_per_image`` random patches of ``patch·s`` HR pixels from each of the
``N`` images (``k = 1``, the paper's epoch), in a fresh order every epoch: epoch ``e`` visits
``np.random.default_rng([seed, e]).permutation(N·k)``, computed once per epoch
(:class:`EpochOrder`; grain's own per-index shuffle costs about ``32 ms / (N·k)`` per element,
10 ms for 3 images, which made small datasets input-bound). The pipeline is NumPy
only, so grain's workers never touch JAX. Process ``p`` of ``P`` keeps elements ``p, p + P, …``
of the stream *after* the random steps, so the ``P`` batches number ``t`` are together exactly
the ``t``-th batch of a single process with a ``P`` times larger batch: results do not depend on
the number of hosts. ``iter(dataset)`` is a ``grain.DatasetIterator`` whose ``get_state()`` is a
small JSON-able dict; ``set_state`` on a fresh iterator of the same pipeline resumes with exactly
the batches that would have followed, so it is saved with the checkpoint.

On-the-fly degradation. Batches hold clean patches and one seed per example::

    {"hr": float32 (B, patch·s, patch·s, C) in [0, 1], "seed": uint32 (B,)}

(``C = 3``, or 1 for a grayscale model: the patch's luma; 16-bit images keep their depth.)

The seed is drawn from the example's own generator, itself a function of the pipeline seed and
the example's position in the stream (epoch and index). Measurements are made on the
accelerator inside the jitted train step by :func:`suppa_jax.physics.degrade_batch`: the task's
operator, noise and 8-bit quantisation with key ``jax.random.key(seed)`` per example, so a
batch always yields the same ``y`` and each example's ``y`` does not depend on its batch.

Evaluation (:func:`eval_images`) goes image by image (sizes differ): each full image, cropped
at the top left to a multiple of the scale, with seed = its index in the source.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Iterator, Sequence

import grain
import numpy as np
from absl import flags
from PIL import Image

from suppa_jax.data.sources import ImageSource, size_problem, to_channels, to_unit
from suppa_jax.typing import ExampleBatch

__all__ = ["EpochOrder", "build_train_dataset", "eval_images", "orient"]


class EpochOrder:
    """The stream's indices into ``range(length)``: element ``i`` is in epoch
    ``e = i // length`` at position ``j = i mod length`` and is the ``j``-th entry of
    ``np.random.default_rng([seed, e]).permutation(length)``. ``epochs`` bounds the stream
    (``None``: unbounded). Each epoch's permutation is computed once (the last two are kept);
    safe for concurrent reads from grain's threads, and pickled without its cache."""

    def __init__(self, length: int, seed: int, epochs: int | None) -> None:
        self.length, self.seed, self.epochs = length, seed, epochs
        self._permutations: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        return {"length": self.length, "seed": self.seed, "epochs": self.epochs}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def __len__(self) -> int:
        return sys.maxsize if self.epochs is None else self.length * self.epochs

    def permutation(self, epoch: int) -> np.ndarray:
        with self._lock:
            if epoch not in self._permutations:
                order = np.random.default_rng([self.seed, epoch]).permutation(self.length)
                self._permutations = {e: p for e, p in self._permutations.items() if e > epoch - 2}
                self._permutations[epoch] = order
            return self._permutations[epoch]

    def __getitem__(self, index: int) -> int:
        if not 0 <= index < len(self):
            raise IndexError(f"element {index} of a stream of {len(self)}")
        epoch, position = divmod(index, self.length)
        return int(self.permutation(epoch)[position])


#: Pillow's one-pass transpose equal to ``np.rot90(patch, k)`` followed, when ``flip``, by a
#: left-right flip, keyed by ``(k, flip)``; ``None`` is the identity.
_TRANSPOSES = {
    (0, 0): None,
    (1, 0): Image.Transpose.ROTATE_90,
    (2, 0): Image.Transpose.ROTATE_180,
    (3, 0): Image.Transpose.ROTATE_270,
    (0, 1): Image.Transpose.FLIP_LEFT_RIGHT,
    (1, 1): Image.Transpose.TRANSVERSE,
    (2, 1): Image.Transpose.FLIP_TOP_BOTTOM,
    (3, 1): Image.Transpose.TRANSPOSE,
}


def orient(patch: np.ndarray, quarter_turns: int, flip: bool) -> np.ndarray:
    """``np.rot90(patch, quarter_turns)``, flipped left-right when ``flip``: one of the 8
    symmetries of the square, as a new C-ordered array.

    8-bit RGB goes through one Pillow transpose, a single pass in C: NumPy's copy of a rotated
    or mirrored view moves one byte of a 3-byte pixel at a time and cost a 256² patch 0.3–0.8 ms,
    more than reading it (``benchmarks/NOTES.md``). Other depths (16-bit) use NumPy.
    """
    if patch.dtype != np.uint8:
        rotated = np.rot90(patch, quarter_turns)
        return np.ascontiguousarray(rotated[:, ::-1] if flip else rotated)
    transpose = _TRANSPOSES[quarter_turns % 4, int(bool(flip))]
    if transpose is None:
        return np.ascontiguousarray(patch)
    return np.asarray(Image.fromarray(patch).transpose(transpose))


def _random_patch(
    index: int,
    rng: np.random.Generator,
    *,
    source: ImageSource,
    size: int,
    augment: bool,
    permute_channels: bool,
) -> dict[str, np.ndarray]:
    """Example ``index`` of the stream: a random ``size × size`` crop of image ``index mod N``,
    randomly rotated by a multiple of 90° and flipped when ``augment``, its colour channels in
    one of the 6 orders when ``permute_channels``, in the image's integer pixels, and its
    seed (:func:`_collate` makes the float batch)."""
    image_index = index % len(source)
    image = source[image_index]
    height, width, _ = image.shape
    if problem := size_problem(height, width, size):
        raise ValueError(f"{source.name(image_index)}: {problem}")
    seed = rng.integers(2**32, dtype=np.uint32)
    top, left = rng.integers(height - size + 1), rng.integers(width - size + 1)
    patch = image[top : top + size, left : left + size]
    if augment:
        patch = orient(patch, rng.integers(4), rng.integers(2))
    if permute_channels:
        patch = patch[..., rng.permutation(3)]
    return {"hr": patch, "seed": seed}


def _collate(examples: Sequence[dict[str, np.ndarray]], channels: int) -> ExampleBatch:
    """The examples as one batch: their pixels converted to float32 in [0, 1] straight into
    their slots of the batch (one pass per patch; 8- and 16-bit images may share a batch),
    with ``channels`` channels (1: the luma), and their seeds."""
    hr = np.empty((len(examples), *examples[0]["hr"].shape), np.float32)
    for slot, example in zip(hr, examples, strict=True):
        to_unit(example["hr"], out=slot)
    seeds = np.array([example["seed"] for example in examples], np.uint32)
    return {"hr": to_channels(hr, channels), "seed": seeds}


def build_train_dataset(
    source: ImageSource,
    *,
    batch_size: int,
    patch: int,
    scale: int,
    augment: bool = True,
    permute_channels: bool = False,
    channels: int = 3,
    seed: int = 0,
    patches_per_image: int = 1,
    num_epochs: int | None = None,
    process_index: int = 0,
    process_count: int = 1,
    worker_count: int = 0,
    read_threads: int = 1,
) -> grain.IterDataset:
    """Batches of random HR patches of ``source`` for one process (see the module docstring).

    Args:
      source: the training images.
      batch_size: examples per batch *in this process* (the global batch is
        ``batch_size · process_count``). Incomplete batches are dropped.
      patch: the LR patch size (48 in the paper); HR patches are ``patch · scale`` pixels.
      scale: the super-resolution factor (1 for deblurring).
      augment: apply one of the 8 flips/rotations by multiples of 90°, uniformly.
      permute_channels: put the colour channels in one of their 6 orders, uniformly (colour
        augmentation: a blue sky becomes a red or green one, so that no hue is rare).
      channels: 3 for RGB patches, 1 for their luma (a grayscale model, ``config.model.channels``).
      seed: the seed of the shuffle, the crops, the augmentation and the degradation seeds.
      patches_per_image: patches per image per epoch (1: the paper's epoch).
      num_epochs: stop after this many epochs (``None``: never).
      process_index, process_count: this process and their number (``jax.process_index()``,
        ``jax.process_count()``); passed explicitly so that tests can fake them.
      worker_count: grain worker processes (0: read in this process, with threads).
      read_threads: threads per process reading and cropping images. One: on this project's
        2-core machine, from cached 2040×1356 images, one thread gave 2,500 (96² patches) and
        1,400–1,570 (256²) patches per CPU-second, two threads 1,480–1,810 and 1,090–1,150 at
        about the same wall-clock rate (the GIL: threads contend), four fewer still. More
        throughput takes worker processes (``worker_count``); more threads help only when reads
        wait on a disk (an image cache larger than the page cache).

    Returns:
      A ``grain.IterDataset`` of ``{"hr": float32 (B, P, P, channels), "seed": uint32 (B,)}``, with
      ``P = patch · scale``; ``iter()`` gives a checkpointable ``grain.DatasetIterator``.
    """
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index {process_index} is not in [0, {process_count})")
    if min(batch_size, patch, scale, patches_per_image) < 1:
        raise ValueError("batch_size, patch, scale and patches_per_image must be positive")
    crop = functools.partial(
        _random_patch,
        source=source,
        size=patch * scale,
        augment=augment,
        permute_channels=permute_channels,
    )
    dataset = (
        grain.MapDataset.source(EpochOrder(len(source) * patches_per_image, seed, num_epochs))
        .random_map(crop, seed=seed)
        .slice(slice(process_index, None, process_count))
        .batch(
            batch_size,
            drop_remainder=True,
            batch_fn=functools.partial(_collate, channels=channels),
        )
        .to_iter_dataset(
            grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=2 * read_threads)
        )
    )
    if worker_count:
        # grain 0.2.18 reads one of its absl flags unguarded when it starts workers, which fails
        # outside an absl app (notebooks, pytest) unless flags count as parsed (google/grain#1355).
        if not flags.FLAGS.is_parsed():
            flags.FLAGS.mark_as_parsed()
        dataset = dataset.mp_prefetch(grain.MultiprocessingOptions(num_workers=worker_count))
    return dataset


def eval_images(
    source: ImageSource, scale: int, channels: int = 3
) -> Iterator[tuple[str, ExampleBatch]]:
    """``(name, {"hr": float32 (1, H, W, channels), "seed": uint32 (1,)})`` for each image in
    order (``channels`` 1: the luma of the RGB image).

    The image is cropped at the top left to ``H, W`` multiples of ``scale``, its seed is its
    index, so :func:`degrade_batch` gives the same measurements in every evaluation.
    """
    for index in range(len(source)):
        image = source[index]
        height, width = (image.shape[0] // scale) * scale, (image.shape[1] // scale) * scale
        if not height or not width:
            raise ValueError(f"{source.name(index)}: smaller than the scale {scale}")
        hr = to_channels(to_unit(image[None, :height, :width]), channels)
        yield source.name(index), {"hr": hr, "seed": np.array([index], np.uint32)}
