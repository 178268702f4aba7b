"""Image sources: random-access sequences of 8- or 16-bit RGB images.

A source is a random-access sequence of images: ``source[i]`` is a ``uint8`` or ``uint16``
array of shape ``(H, W, 3)``, RGB at the depth of the file (grayscale is replicated to three
channels, alpha is dropped; :func:`to_unit` and :func:`to_channels` make the float images of
the pipeline, in RGB or as one luma channel), or, for a folder or TFDS source with a decoded-image
cache, a :class:`~suppa_jax.data.cache.CachedImage` of such an array (its crops read only their
rows), and
``source.name(i)`` names it in messages. Four kinds, and weighted mixtures of them, built by
:func:`build_source`:

* ``"samples"``: scikit-image's bundled images, offline, split by :data:`SAMPLE_SPLITS`;
* ``"deadleaves"``: procedural colour dead-leaves images (:mod:`suppa_jax.data.deadleaves`), as many
  as asked for, each a pure function of its seed, split and index (:class:`DeadLeavesSource`);
* ``"folder:PATH"``: PNG/JPEG/BMP/TIFF files under ``PATH/split``, recursively
  (:class:`FolderSource`);
* ``"tfds:NAME"``: a TFDS dataset read with ``tfds.data_source`` from ArrayRecord files, without
  TensorFlow (:class:`TfdsSource`; e.g. ``"tfds:div2k/bicubic_x2"``, feature ``"hr"``);
* ``"0.8*deadleaves; 0.2*samples"``: each patch from one of the sources with the given
  probabilities (:class:`MixtureSource`).
"""

from __future__ import annotations

import concurrent.futures
import functools
import importlib.util
import logging
import math
import os
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from skimage import data as skdata

from suppa_jax.config.sources import SAMPLE_SPLITS, SOURCE_FORMS, parse_mixture
from suppa_jax.data.cache import CachedImage, DecodedCache, file_identity
from suppa_jax.data.deadleaves import DeadLeaves, render
from suppa_jax.images import read_pixels

__all__ = [
    "IMAGE_EXTENSIONS",
    "LUMA",
    "PHOTOS",
    "ArraySource",
    "DeadLeavesSource",
    "FolderSource",
    "ImageSource",
    "MixtureSource",
    "TfdsSource",
    "build_source",
    "held_out_photos",
    "sample_images",
    "to_channels",
    "to_unit",
]

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff")


class ImageSource(Protocol):
    """Random access to ``uint8`` or ``uint16`` RGB images of shape ``(H, W, 3)``."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> np.ndarray: ...

    def name(self, index: int) -> str:
        """A human-readable name of image ``index`` (a path, a record) for messages."""
        ...


# --------------------------------------------------------------------------------------------
# Decoding and screening


def _as_rgb(image: np.ndarray, name: str) -> np.ndarray:
    """``uint8``/``uint16`` ``(H, W)`` or ``(H, W, 1 | 3 | 4)`` → ``(H, W, 3)`` of that type.

    Gray is replicated to three channels, alpha is dropped.
    """
    image = np.asarray(image)
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"{name}: expected 8- or 16-bit integer pixels, got {image.dtype}")
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
        raise ValueError(f"{name}: expected an (H, W[, 1|3|4]) image, got shape {image.shape}")
    return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image[..., :3]


def to_unit(image: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``uint8`` or ``uint16`` pixels → float32 in [0, 1] (``v / 255`` or ``v / 65535``), in
    one pass (written into ``out``, a float32 array of the image's shape, when given)."""
    return np.divide(image, np.float32(np.iinfo(image.dtype).max), out=out, dtype=np.float32)


#: ITU-R BT.601 luma weights of R, G, B (Pillow's ``convert("L")``, MATLAB's ``rgb2gray``).
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def to_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """Float RGB images ``(..., 3)`` with ``channels`` channels: 3, unchanged; 1, their luma
    ``0.299 R + 0.587 G + 0.114 B`` (how a grayscale model sees colour data)."""
    if channels == 3:
        return images
    if channels == 1:
        return (images @ LUMA)[..., None].astype(images.dtype)
    raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels}")


# What decoding raises for a file it cannot read (read_pixels wraps the rest as ValueError).
_DECODE_ERRORS = (OSError, ValueError)


def _decode(path: Path) -> np.ndarray:
    """Decode an image file to RGB at its depth: ``uint8``, or ``uint16`` for 16-bit files."""
    return _as_rgb(read_pixels(path), str(path))


def size_problem(height: int, width: int, min_size: int) -> str | None:
    if min(height, width) < min_size:
        return f"{height}×{width} is smaller than the {min_size}×{min_size} patch"
    return None


def _read(path: Path, cache: DecodedCache | None, identity: str) -> np.ndarray | CachedImage:
    """The decoded file: from ``cache`` under ``identity`` (decoded and stored on a miss), or
    decoded now."""
    if cache is None:
        return _decode(path)
    return cache.get(identity, lambda: _decode(path))


def _file_problem(
    path: Path, identity: str, min_size: int, cache: DecodedCache | None
) -> str | None:
    """Why the file cannot be used (it does not decode in full, or it is too small), or None.
    With a cache, a good file's decoded image is stored (a cached one is not decoded again)."""
    try:
        height, width, _ = _read(path, cache, identity).shape
    except _DECODE_ERRORS as error:
        return f"unreadable image ({error})"
    return size_problem(height, width, min_size)


#: How each entry point leaves bad images out (an error names the one for its command too).
SKIP_BAD_IMAGES_HINT = (
    "evaluate.py --skip_bad_images, train.py --config.data.skip_bad_images=True, or "
    "skip_bad_images=True in Python"
)
_LISTED = 5  # bad images named in an error; the rest are counted


def _screen(
    names: Sequence[str], problems: Sequence[str | None], *, skip_bad_images: bool, where: str
) -> tuple[list[int], tuple[str, ...]]:
    """The indices of the usable images and the names of the bad ones (logged).

    Raises ``ValueError`` that lists every bad image unless ``skip_bad_images``, or if none is
    usable.
    """
    keep = [i for i, problem in enumerate(problems) if not problem]
    bad = [f"{names[i]} ({problem})" for i, problem in enumerate(problems) if problem]
    listing = "; ".join(bad[:_LISTED]) + (f"; and {len(bad) - _LISTED} more" * (len(bad) > _LISTED))
    if bad and not skip_bad_images:
        raise ValueError(
            f"{len(bad)} of {len(names)} images in {where} cannot be used: {listing}. To leave "
            f"them out: {SKIP_BAD_IMAGES_HINT}"
        )
    if not keep:
        raise ValueError(f"no usable images in {where}" + (f": {listing}" if bad else ""))
    if bad:
        logger.warning("skipped %d of %d images in %s: %s", len(bad), len(names), where, listing)
    return keep, tuple(names[i] for i, problem in enumerate(problems) if problem)


# --------------------------------------------------------------------------------------------
# Sources


class ArraySource:
    """Images held in memory, e.g. NumPy arrays from a notebook or scikit-image.

    Images of shape ``(H, W)`` or ``(H, W, 1 | 3 | 4)``, ``uint8`` or ``uint16``, are converted
    to RGB. Those smaller than ``min_size`` on a side raise ``ValueError``, or with
    ``skip_bad_images`` are left out and listed in :attr:`skipped`.
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        names: Sequence[str],
        *,
        min_size: int = 1,
        skip_bad_images: bool = False,
    ) -> None:
        rgb = [_as_rgb(image, name) for image, name in zip(images, names, strict=True)]
        problems = [size_problem(*image.shape[:2], min_size) for image in rgb]
        keep, self.skipped = _screen(
            names, problems, skip_bad_images=skip_bad_images, where="the image list"
        )
        self.images = [rgb[i] for i in keep]
        self.names = [names[i] for i in keep]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.images[index]

    def name(self, index: int) -> str:
        return self.names[index]


class FolderSource:
    """The images under a folder and its sub-folders, in sorted path order.

    Files with a suffix in :data:`IMAGE_EXTENSIONS` (any case) are decoded once in full at
    construction (in threads), which catches unreadable and truncated files and those smaller
    than ``min_size`` on a side. They raise a ``ValueError`` that lists every bad file, or with
    ``skip_bad_images`` are left out, logged and listed in :attr:`skipped`, so that the number
    of images, hence the epoch, is known up front. With a ``cache``
    (:class:`~suppa_jax.data.cache.DecodedCache`) that decode is stored, an image already cached
    is not decoded at all, and ``source[i]`` is a :class:`~suppa_jax.data.cache.CachedImage`
    whose crops read only their rows; without one, images are decoded again when read.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        min_size: int = 1,
        skip_bad_images: bool = False,
        cache: DecodedCache | None = None,
    ) -> None:
        root = Path(root)
        self.cache = cache
        if not root.is_dir():
            raise FileNotFoundError(f"image folder {root} does not exist")
        paths = sorted(
            path
            for path in root.rglob("*")
            if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file()
        )
        if not paths:
            raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {root}")
        # Each file's identity once: reads then cost no stat() (a file changed mid-run keeps
        # the entry it was screened with).
        identities = [file_identity(path) if cache else "" for path in paths]
        with concurrent.futures.ThreadPoolExecutor() as pool:
            check = functools.partial(_file_problem, min_size=min_size, cache=cache)
            problems = list(pool.map(check, paths, identities))
        names = [str(path) for path in paths]
        keep, self.skipped = _screen(
            names, problems, skip_bad_images=skip_bad_images, where=str(root)
        )
        self.paths = [paths[i] for i in keep]
        self.identities = [identities[i] for i in keep]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> np.ndarray:
        path = self.paths[index]
        try:
            return _read(path, self.cache, self.identities[index])
        except _DECODE_ERRORS as error:
            raise ValueError(f"{path}: unreadable image ({error})") from error

    def name(self, index: int) -> str:
        return str(self.paths[index])


class TfdsSource:
    """One image feature of a TFDS dataset, read through ``tfds.data_source`` (no TensorFlow).

    ``dataset`` is a TFDS name with optional config and version (``"div2k/bicubic_x2"``), ``split``
    any TFDS split (``"train"``, ``"validation[:10]"``). The dataset must be (or, when missing,
    will be downloaded and) prepared as ArrayRecord files in ``data_dir`` (default: TFDS's).
    Records are not screened up front: one smaller than a training patch raises when read. With a
    ``cache``, each record is decoded once (keyed by dataset, version, split, index, feature).
    """

    def __init__(
        self,
        dataset: str,
        split: str,
        *,
        feature: str = "hr",
        data_dir: str | None = None,
        cache: DecodedCache | None = None,
    ) -> None:
        import tensorflow_datasets as tfds  # imported here: 0.5 s, and only this source needs it

        # An explicit file format: TFDS only defaults to ArrayRecord when no data_dir is given.
        self.records = tfds.data_source(
            dataset, split=split, data_dir=data_dir, builder_kwargs={"file_format": "array_record"}
        )
        features = self.records.dataset_info.features
        if feature not in features:
            raise ValueError(f"{dataset} has no feature {feature!r}; it has {list(features)}")
        self.dataset, self.split, self.feature = dataset, split, feature
        self.cache = cache
        version = self.records.dataset_info.version
        self._identity = f"tfds|{dataset}|{version}|{data_dir or ''}|{split}|{feature}"

    def __len__(self) -> int:
        return len(self.records)

    def _decode(self, index: int) -> np.ndarray:
        return _as_rgb(self.records[index][self.feature], self.name(index))

    def __getitem__(self, index: int) -> np.ndarray:
        if self.cache is None:
            return self._decode(index)
        return self.cache.get(f"{self._identity}|{index}", lambda: self._decode(index))

    def name(self, index: int) -> str:
        return f"{self.dataset}:{self.split}[{index}]"


class DeadLeavesSource:
    """``count`` colour dead-leaves images (:mod:`suppa_jax.data.deadleaves`), rendered when read.

    Image ``i`` is a pure function of ``(seed, stream, i)``: independent streams (e.g. the
    ``"train"`` and ``"validation"`` splits) never share an image, and the source needs no
    storage, shuffles, shards and resumes like a folder.
    """

    def __init__(
        self, count: int, model: DeadLeaves | None = None, *, seed: int = 0, stream: str = ""
    ) -> None:
        if count < 1:
            raise ValueError(f"a dead-leaves source needs at least one image, got {count}")
        self.count, self.model, self.seed, self.stream = count, model or DeadLeaves(), seed, stream
        # A stable 32-bit id of the stream (Python's hash() of a str changes between runs).
        self._stream_seed = zlib.crc32(stream.encode())

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> np.ndarray:
        if not 0 <= index < self.count:
            raise IndexError(f"dead-leaves image {index} of {self.count}")
        return render(self.model, [self.seed, self._stream_seed], index)

    def name(self, index: int) -> str:
        return f"deadleaves:{self.stream or '-'}[{index}]"


class MixtureSource:
    """Several sources drawn with relative ``weights``, as one source.

    With normalised weights ``w_c`` the mixture has ``L = max_c ⌈len_c / w_c⌉`` images: the
    source with the largest ``len_c / w_c`` appears once, each other one ``round(w_c·L)`` times,
    cycling through its images (a small folder mixed with many dead-leaves images is repeated,
    with fresh random crops). Image ``i`` is the ``j``-th of one component, in blocks; the
    training pipeline shuffles them, so a patch comes from component ``c`` with probability
    ``w_c``.
    """

    def __init__(self, sources: Sequence[ImageSource], weights: Sequence[float]) -> None:
        if len(sources) != len(weights) or not sources:
            raise ValueError("a mixture needs one weight per source, and at least one source")
        if min(weights) <= 0:
            raise ValueError(f"mixture weights must be positive, got {list(weights)}")
        total = float(sum(weights))
        self.sources, self.weights = list(sources), [w / total for w in weights]
        length = max(math.ceil(len(s) / w) for s, w in zip(self.sources, self.weights, strict=True))
        self.counts = [max(1, round(w * length)) for w in self.weights]
        self._starts = np.cumsum([0, *self.counts])

    def __len__(self) -> int:
        return int(self._starts[-1])

    def _locate(self, index: int) -> tuple[ImageSource, int]:
        if not 0 <= index < len(self):
            raise IndexError(f"mixture image {index} of {len(self)}")
        component = int(np.searchsorted(self._starts, index, side="right")) - 1
        source = self.sources[component]
        return source, int(index - self._starts[component]) % len(source)

    def __getitem__(self, index: int) -> np.ndarray:
        source, inner = self._locate(index)
        return source[inner]

    def name(self, index: int) -> str:
        source, inner = self._locate(index)
        return source.name(inner)


def _package_file(package: str, *parts: str) -> Path:
    """A data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ValueError(
            f"the held-out photos need the {package!r} package (pip install "
            f"{'scikit-learn' if package == 'sklearn' else package})"
        )
    return Path(spec.origin).parent.joinpath(*parts)


#: Natural colour photographs that ship inside installed packages and that no config trains on:
#: the held-out evaluation set ``"photos"`` (name → package and path in it).
PHOTOS: dict[str, tuple[str, ...]] = {
    "chelsea": ("skimage", "data", "chelsea.png"),  # a cat, 451×300
    "coffee": ("skimage", "data", "coffee.png"),  # a cup of coffee, 600×400
    "rocket": ("skimage", "data", "rocket.jpg"),  # a launch pad under a blue sky, 640×427
    "china": ("sklearn", "datasets", "images", "china.jpg"),  # a temple, sky, trees, 640×427
    "flower": ("sklearn", "datasets", "images", "flower.jpg"),  # a flower and leaves, 640×427
    "grace_hopper": ("matplotlib", "mpl-data", "sample_data", "grace_hopper.jpg"),  # 512×600
}


def held_out_photos() -> ArraySource:
    """The six natural colour photos of :data:`PHOTOS` (scikit-image's three validation samples,
    scikit-learn's two sample images and matplotlib's portrait), named ``"photo:<name>"``.

    None of them is in any training split, and nothing in the project is tuned on them: they
    are where quality is reported.
    """
    names = list(PHOTOS)
    images = []
    for name in names:
        path = _package_file(*PHOTOS[name])
        try:
            images.append(_decode(path))
        except _DECODE_ERRORS as error:
            raise ValueError(f"{path}: unreadable image ({error})") from error
    return ArraySource(images, [f"photo:{name}" for name in names])


def _load_sample(name: str) -> np.ndarray:
    if name == "motorcycle":
        return skdata.stereo_motorcycle()[0]  # the left view of a stereo pair
    return getattr(skdata, name)()


def sample_images(split: str, *, min_size: int = 1, skip_bad_images: bool = False) -> ArraySource:
    """scikit-image's bundled images of ``split`` (``"train"`` or ``"validation"``, see
    :data:`SAMPLE_SPLITS`) as an :class:`ArraySource`, named ``"skimage:<name>"``."""
    if split not in SAMPLE_SPLITS:
        raise ValueError(f"unknown sample split {split!r}; use one of {list(SAMPLE_SPLITS)}")
    names = SAMPLE_SPLITS[split]
    return ArraySource(
        [_load_sample(name) for name in names],
        [f"skimage:{name}" for name in names],
        min_size=min_size,
        skip_bad_images=skip_bad_images,
    )


def _single_source(
    source: str,
    split: str,
    *,
    feature: str,
    data_dir: str | None,
    min_size: int,
    skip_bad_images: bool,
    deadleaves: DeadLeaves,
    deadleaves_images: int,
    seed: int,
    cache: DecodedCache | None,
) -> ImageSource:
    kind, _, location = source.partition(":")
    if kind == "samples" and not location:
        return sample_images(split, min_size=min_size, skip_bad_images=skip_bad_images)
    if kind == "deadleaves" and not location:
        if deadleaves.size < min_size:
            raise ValueError(
                f"dead-leaves images of {deadleaves.size} pixels are smaller than the "
                f"{min_size}-pixel patch"
            )
        return DeadLeavesSource(deadleaves_images, deadleaves, seed=seed, stream=split)
    if kind == "folder" and location:
        return FolderSource(
            Path(location) / split, min_size=min_size, skip_bad_images=skip_bad_images, cache=cache
        )
    if kind == "tfds" and location:
        return TfdsSource(location, split, feature=feature, data_dir=data_dir, cache=cache)
    raise ValueError(f"unknown data source {source!r}; use {SOURCE_FORMS}")


def build_source(
    source: str,
    split: str,
    *,
    feature: str = "hr",
    data_dir: str | None = None,
    min_size: int = 1,
    skip_bad_images: bool = False,
    deadleaves: DeadLeaves | None = None,
    deadleaves_images: int = 10_000,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
) -> ImageSource:
    """The images of ``split`` of ``source``.

    Args:
      source: ``"samples"`` (scikit-image, offline), ``"deadleaves"`` (synthetic, see
        :class:`DeadLeavesSource`), ``"folder:PATH"`` (the images under ``PATH/split``;
        ``split=""`` for ``PATH`` itself), ``"tfds:NAME"`` (e.g. ``"tfds:div2k/bicubic_x2"``),
        or a weighted mixture of these, ``"0.8*deadleaves; 0.2*samples"`` (:func:`parse_mixture`,
        :class:`MixtureSource`).
      split: ``"train"``/``"validation"`` for samples, a sub-folder, a TFDS split; for dead
        leaves it names an independent stream of images.
      feature: the image feature of a TFDS dataset (``"hr"`` for DIV2K).
      data_dir: TFDS's data directory (``None``: TFDS's default).
      min_size: the smallest usable side (the HR patch ``patch·s`` for training). Checked up
        front for samples, folders and dead leaves, when read for TFDS.
      skip_bad_images: leave out (and log) unreadable and too small images instead of raising.
      deadleaves: the dead-leaves model (default: ``DeadLeaves()``, 128-pixel images).
      deadleaves_images: the number of dead-leaves images (their epoch).
      seed: the seed of the dead-leaves images.
      cache_dir: a directory of decoded folder and TFDS images
        (:class:`~suppa_jax.data.cache.DecodedCache`; ``None``: decode every read).
    """
    entries = parse_mixture(source)
    cache = None
    if cache_dir and any(name.startswith(("folder:", "tfds:")) for _, name in entries):
        cache = DecodedCache(cache_dir)
    sources = [
        _single_source(
            name,
            split,
            feature=feature,
            data_dir=data_dir,
            min_size=min_size,
            skip_bad_images=skip_bad_images,
            deadleaves=deadleaves or DeadLeaves(),
            deadleaves_images=deadleaves_images,
            seed=seed,
            cache=cache,
        )
        for _, name in entries
    ]
    if len(sources) == 1:
        return sources[0]
    return MixtureSource(sources, [weight for weight, _ in entries])
