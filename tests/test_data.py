"""Data: image sources, bad input, the grain pipeline (order, sharding, state) and degradation.

Test images are generated in ``tmp_path``: random pixels, so that every crop of every image is
unique and a patch can be traced back to the image, position and flip/rotation it came from.
"""

import contextlib
import io
import json
import logging
import os
import sys
from unittest import mock

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

from suppa_jax import data, physics
from suppa_jax.data import sources
from suppa_jax.physics import SuperResolution

PATCH, SCALE = 4, 2  # LR patch and factor: HR patches of 8×8, large enough for the ×2 kernel
HR = PATCH * SCALE


def _random_images(rng: np.random.Generator, count: int) -> list[np.ndarray]:
    return [
        rng.integers(0, 256, (rng.integers(HR, 16), rng.integers(HR, 16), 3), dtype=np.uint8)
        for _ in range(count)
    ]


def _save(path, image: np.ndarray, **options) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, **options)


def _dihedral(patch: np.ndarray) -> list[np.ndarray]:
    """The 8 rotations/flips of a square patch; index 0 is the identity."""
    return [np.rot90(p, k) for p in (patch, patch[:, ::-1]) for k in range(4)]


def _locate(patch: np.ndarray, images: list[np.ndarray]) -> list[tuple[int, int]]:
    """Every ``(image index, transform)`` such that the transform of ``patch`` is a crop."""
    size = patch.shape[0]
    return [
        (i, t)
        for i, image in enumerate(images)
        for t, candidate in enumerate(_dihedral(patch))
        if (sliding_window_view(image, (size, size, 3))[:, :, 0] == candidate)
        .all(axis=(-3, -2, -1))
        .any()
    ]


def _as_uint8(hr: np.ndarray) -> np.ndarray:
    pixels = hr * 255.0
    np.testing.assert_allclose(pixels, np.round(pixels), atol=1e-4)  # exact 8-bit values
    return np.round(pixels).astype(np.uint8)


def _batches(dataset, count: int | None = None) -> list[dict]:
    """The first ``count`` batches (all if None) of a fresh iterator, closed after use."""
    with contextlib.closing(iter(dataset)) as iterator:
        return list(iterator) if count is None else [next(iterator) for _ in range(count)]


def _pipeline(source, **overrides):
    options = dict(batch_size=3, patch=PATCH, scale=SCALE, seed=0, read_threads=2)
    return data.build_train_dataset(source, **(options | overrides))


@pytest.fixture
def images(rng) -> list[np.ndarray]:
    return _random_images(rng, 6)


@pytest.fixture
def source(images) -> data.ArraySource:
    return data.ArraySource(images, [f"image{i}" for i in range(len(images))])


# --------------------------------------------------------------------------------------------
# Folders


@pytest.fixture
def folder(tmp_path, rng) -> tuple:
    """A folder with every format, nested folders, gray, RGBA, 16-bit and a stray text file."""
    rgb = _random_images(rng, 4)
    gray = rng.integers(0, 256, (10, 12), dtype=np.uint8)
    rgba = rng.integers(0, 256, (11, 9, 4), dtype=np.uint8)
    gray16 = rng.integers(0, 2**16, (9, 10), dtype=np.uint16)
    _save(tmp_path / "a.png", rgb[0])
    _save(tmp_path / "sub" / "b.bmp", rgb[1])
    _save(tmp_path / "sub" / "deeper" / "c.tiff", rgb[2])
    _save(tmp_path / "d.JPG", rgb[3], quality=100, subsampling=0)
    _save(tmp_path / "gray.png", gray)
    _save(tmp_path / "rgba.png", rgba)
    _save(tmp_path / "sub" / "gray16.png", gray16)
    (tmp_path / "notes.txt").write_text("not an image")
    expected = {
        "a.png": rgb[0],
        "d.JPG": rgb[3],
        "gray.png": np.repeat(gray[..., None], 3, axis=-1),
        "rgba.png": rgba[..., :3],
        "sub/b.bmp": rgb[1],
        "sub/deeper/c.tiff": rgb[2],
        "sub/gray16.png": np.repeat(gray16[..., None], 3, -1),  # kept at 16 bits
    }
    return tmp_path, expected


def test_folder_source_decodes_every_format_to_rgb_at_its_depth(folder):
    root, expected = folder
    source = data.build_source(f"folder:{root}", "")
    assert [source.name(i) for i in range(len(source))] == [str(root / n) for n in expected]
    assert source.skipped == ()
    for i, (name, image) in enumerate(expected.items()):
        decoded = source[i]
        assert decoded.dtype == image.dtype  # uint8, or uint16 for the 16-bit file
        assert decoded.shape == image.shape
        if name.endswith(".JPG"):  # lossy even at quality 100
            assert np.abs(decoded.astype(int) - image).mean() < 2
        else:
            np.testing.assert_array_equal(decoded, image, err_msg=name)


def _add_bad_files(root, rng) -> list[str]:
    encoded = io.BytesIO()
    Image.fromarray(_random_images(rng, 1)[0]).save(encoded, "JPEG")
    (root / "sub" / "corrupt.png").write_bytes(rng.bytes(300))
    (root / "truncated.jpg").write_bytes(encoded.getvalue()[: len(encoded.getvalue()) // 2])
    _save(root / "tiny.png", rng.integers(0, 256, (5, 7, 3), dtype=np.uint8))
    return [str(root / name) for name in ("sub/corrupt.png", "tiny.png", "truncated.jpg")]


def test_folder_source_names_every_bad_image(folder, rng):
    root, _ = folder
    bad = _add_bad_files(root, rng)
    with pytest.raises(ValueError, match="skip_bad_images") as error:
        data.build_source(f"folder:{root}", "", min_size=HR)
    for path in bad:
        assert path in str(error.value)
    assert f"5×7 is smaller than the {HR}×{HR} patch" in str(error.value)
    assert "3 of 10 images" in str(error.value)


def test_folder_source_skips_and_reports_bad_images(folder, rng, caplog):
    root, expected = folder
    bad = _add_bad_files(root, rng)
    with caplog.at_level(logging.WARNING, logger="suppa_jax.data"):
        source = data.build_source(f"folder:{root}", "", min_size=HR, skip_bad_images=True)
    assert sorted(source.skipped) == bad
    assert "skipped 3 of 10 images" in caplog.text
    assert all(path in caplog.text for path in bad)
    assert [source.name(i) for i in range(len(source))] == [str(root / n) for n in expected]
    (batch,) = _batches(_pipeline(source, batch_size=len(expected), num_epochs=1))
    assert batch["hr"].shape == (len(expected), HR, HR, 3)


def test_folder_source_errors(tmp_path, rng):
    with pytest.raises(FileNotFoundError, match="missing"):
        data.build_source(f"folder:{tmp_path}", "missing")
    with pytest.raises(ValueError, match=r"no images \(\.bmp"):
        data.FolderSource(tmp_path)
    (tmp_path / "readme.md").write_text("still no images")
    with pytest.raises(ValueError, match="no images"):
        data.FolderSource(tmp_path)
    (tmp_path / "broken.png").write_bytes(rng.bytes(100))
    with pytest.raises(ValueError, match=r"(?s)no usable images.*broken\.png"):
        data.FolderSource(tmp_path, skip_bad_images=True)
    with pytest.raises(ValueError, match="unknown data source"):
        data.build_source(str(tmp_path), "")


# --------------------------------------------------------------------------------------------
# In-memory and sample images


def test_array_source_checks_sizes(images):
    gray = images[0][..., 0]
    small = images[1][:5]
    with pytest.raises(ValueError, match=r"small \(5×\d+ is smaller than the 8×8 patch\)"):
        data.ArraySource([gray, small], ["gray", "small"], min_size=HR)
    source = data.ArraySource([gray, small], ["gray", "small"], min_size=HR, skip_bad_images=True)
    assert source.skipped == ("small",)
    np.testing.assert_array_equal(source[0], np.stack([gray] * 3, axis=-1))
    with pytest.raises(ValueError, match=r"float: expected 8- or 16-bit integer pixels, got float"):
        data.ArraySource([images[0].astype(np.float32)], ["float"])


def test_sample_images_split():
    sources = {
        split: data.build_source("samples", split, min_size=192) for split in data.SAMPLE_SPLITS
    }
    assert set(sources) == {"train", "validation"}
    names = {split: [s.name(i) for i in range(len(s))] for split, s in sources.items()}
    for split, split_names in names.items():
        assert split_names == [f"skimage:{n}" for n in data.SAMPLE_SPLITS[split]]
    assert not set(names["train"]) & set(names["validation"])
    for source in sources.values():
        for i in range(len(source)):
            assert source[i].dtype == np.uint8
            assert source[i].ndim == 3
            assert source[i].shape[-1] == 3
    with pytest.raises(ValueError, match="unknown sample split"):
        data.sample_images("test")


# --------------------------------------------------------------------------------------------
# The training pipeline


def test_patches_are_crops_of_the_images(source, images):
    (batch,) = _batches(_pipeline(source, augment=False, batch_size=6, num_epochs=1))
    assert batch["hr"].shape == (6, HR, HR, 3)
    assert batch["hr"].dtype == np.float32
    assert batch["seed"].shape == (6,)
    assert batch["seed"].dtype == np.uint32
    found = [_locate(patch, images) for patch in _as_uint8(batch["hr"])]
    assert all(len(matches) == 1 and matches[0][1] == 0 for matches in found), found


def test_augmented_patches_are_flipped_or_rotated_crops(source, images):
    batches = _batches(_pipeline(source, augment=True, batch_size=6), 3)
    found = [_locate(patch, images) for batch in batches for patch in _as_uint8(batch["hr"])]
    assert all(len(matches) == 1 for matches in found), found
    assert len({matches[0][1] for matches in found}) > 2  # several of the 8 transforms


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_orient_is_a_quarter_turn_rotation_then_a_mirror(rng, dtype):
    patch = rng.integers(0, np.iinfo(dtype).max, (5, 7, 3), endpoint=True).astype(dtype)
    for quarter_turns in range(4):
        for flip in (False, True):
            expected = np.rot90(patch, quarter_turns)
            expected = expected[:, ::-1] if flip else expected
            oriented = data.orient(patch, quarter_turns, flip)
            np.testing.assert_array_equal(oriented, expected)
            assert oriented.dtype == dtype
            assert oriented.flags.c_contiguous


def test_a_batch_holds_8_and_16_bit_patches_at_their_depths(rng):
    images = [
        rng.integers(0, 2**8, (HR + 3, HR + 2, 3), dtype=np.uint8),
        rng.integers(0, 2**16, (HR + 2, HR + 3, 3), dtype=np.uint16),
    ]
    source = data.ArraySource(images, ["8-bit", "16-bit"])
    (batch,) = _batches(_pipeline(source, augment=False, batch_size=2, num_epochs=1))

    def images_holding(patch: np.ndarray) -> list[int]:
        return [
            index
            for index, image in enumerate(images)
            if (
                sliding_window_view(image, (HR, HR, 3))[:, :, 0]
                == np.round(patch * np.iinfo(image.dtype).max)
            )
            .all(axis=(-3, -2, -1))
            .any()
        ]

    assert batch["hr"].dtype == np.float32
    assert sorted(images_holding(patch) for patch in batch["hr"]) == [[0], [1]]


@pytest.mark.parametrize("patches_per_image", [1, 2])
def test_an_epoch_has_k_patches_per_image(source, images, patches_per_image):
    batches = _batches(_pipeline(source, num_epochs=1, patches_per_image=patches_per_image))
    assert len(batches) == 2 * patches_per_image  # 6 images, batches of 3
    found = [_locate(p, images)[0][0] for b in batches for p in _as_uint8(b["hr"])]
    assert sorted(found) == sorted(list(range(len(images))) * patches_per_image)
    assert len({seed for b in batches for seed in b["seed"]}) == 6 * patches_per_image


def test_shuffle_is_seeded(source):
    first, again, other = (_batches(_pipeline(source, seed=seed), 4) for seed in (7, 7, 8))
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a["hr"], b["hr"])
        np.testing.assert_array_equal(a["seed"], b["seed"])
    assert not np.array_equal(first[0]["hr"], other[0]["hr"])
    assert not set(np.concatenate([b["seed"] for b in first])) & set(
        np.concatenate([b["seed"] for b in other])
    )


def test_processes_together_see_the_single_process_batches(source, images):
    count, local = 3, 2
    single = _batches(_pipeline(source, batch_size=count * local, num_epochs=2))
    shards = [
        _batches(
            _pipeline(source, batch_size=local, num_epochs=2, process_index=p, process_count=count)
        )
        for p in range(count)
    ]
    assert [len(s) for s in shards] == [len(single)] * count == [2] * count
    for t, batch in enumerate(single):  # global element p + 3·j is element j of process p
        for key in ("hr", "seed"):
            merged = np.stack([shards[p][t][key] for p in range(count)], axis=1)
            np.testing.assert_array_equal(merged.reshape(batch[key].shape), batch[key])
        found = sorted(_locate(p, images)[0][0] for p in _as_uint8(batch["hr"]))
        assert found == list(range(len(images)))  # every image once per epoch
    with pytest.raises(ValueError, match="process_index"):
        _pipeline(source, process_index=3, process_count=3)


@pytest.mark.parametrize("worker_count", [0, 1])
def test_iterator_state_resumes_the_same_batches(source, worker_count):
    dataset = _pipeline(source, batch_size=4, worker_count=worker_count)
    with contextlib.closing(iter(dataset)) as iterator:
        for _ in range(2):
            next(iterator)
        state = json.loads(json.dumps(iterator.get_state()))  # as a checkpoint would store it
        expected = [next(iterator) for _ in range(3)]  # crosses an epoch boundary (6 images)
    with contextlib.closing(
        iter(_pipeline(source, batch_size=4, worker_count=worker_count))
    ) as resumed:
        resumed.set_state(state)
        restored = [next(resumed) for _ in range(3)]
    for want, got in zip(expected, restored, strict=True):
        np.testing.assert_array_equal(got["hr"], want["hr"])
        np.testing.assert_array_equal(got["seed"], want["seed"])
    assert not np.array_equal(expected[0]["hr"], _batches(dataset, 1)[0]["hr"])


# --------------------------------------------------------------------------------------------
# TFDS (without TensorFlow)


def test_tfds_mock_data_source_feeds_the_pipeline():
    with tfds.testing.mock_data(num_examples=6, policy=tfds.testing.MockPolicy.USE_CODE):
        source = data.build_source("tfds:div2k/bicubic_x2", "train")
        assert len(source) == 6
        assert source.name(4) == "div2k/bicubic_x2:train[4]"
        assert all(source[i].dtype == np.uint8 and source[i].shape[-1] == 3 for i in range(6))
        batches = _batches(_pipeline(source, patch=2, num_epochs=1))  # mock sides: 5 to 49
        assert [b["hr"].shape for b in batches] == [(3, 4, 4, 3)] * 2
        with pytest.raises(ValueError, match=r"div2k/bicubic_x2:train\[\d\]: .* 200×200 patch"):
            _batches(_pipeline(source, patch=100))
        with pytest.raises(ValueError, match="no feature 'image'"):
            data.build_source("tfds:div2k", "train", feature="image")


def _png(image: np.ndarray) -> io.BytesIO:
    """Encoded images: TFDS encodes raw arrays with TensorFlow, encoded files it stores as is."""
    encoded = io.BytesIO()
    Image.fromarray(image).save(encoded, "PNG")
    encoded.seek(0)
    return encoded


class SuppaTinyImages(tfds.core.GeneratorBasedBuilder):
    """Three grayscale images of 10, 11 and 12 rows under the feature name ``"image"``."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self) -> tfds.core.DatasetInfo:
        features = tfds.features.FeaturesDict({"image": tfds.features.Image(shape=(None, None, 1))})
        return tfds.core.DatasetInfo(builder=self, features=features)

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        for i, image in enumerate(self.images()):
            yield i, {"image": _png(image)}

    @staticmethod
    def images() -> list[np.ndarray]:
        rng = np.random.default_rng(1)
        return [rng.integers(0, 256, (10 + i, 9), dtype=np.uint8) for i in range(3)]


def test_tfds_reads_prepared_array_records_without_tensorflow(tmp_path):
    source = data.build_source(
        "tfds:suppa_tiny_images", "train", feature="image", data_dir=str(tmp_path)
    )
    assert "tensorflow" not in sys.modules
    by_height = {source[i].shape[0]: source[i] for i in range(len(source))}
    assert len(by_height) == 3
    for image in SuppaTinyImages.images():
        np.testing.assert_array_equal(by_height[image.shape[0]], np.stack([image] * 3, axis=-1))
    # With a decoded-image cache: the same records, one entry each, read back memory-mapped.
    cache_dir = tmp_path / "decoded"
    cached = data.build_source(
        "tfds:suppa_tiny_images",
        "train",
        feature="image",
        data_dir=str(tmp_path),
        cache_dir=cache_dir,
    )
    for i in range(len(source)):
        np.testing.assert_array_equal(cached[i], source[i])
    assert len(list(cache_dir.glob("*.npy"))) == len(source)
    assert isinstance(cached[0], data.cache.CachedImage)


def _fake_div2k(root) -> dict[str, str]:
    """The folders DIV2K's archives extract to (two 24×20 HR images and their ×2 LR), keyed as
    the TFDS ``div2k`` builder asks its download manager for them."""
    rng = np.random.default_rng(2)
    extracted = {}
    for split in ("train", "valid"):
        lr = root / f"{split}_lr" / f"DIV2K_{split}_LR_bicubic" / "X2"
        hr = root / f"{split}_hr" / f"DIV2K_{split}_HR"
        lr.mkdir(parents=True)
        hr.mkdir(parents=True)
        for i in range(1, 3):
            Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(
                hr / f"{i:04d}.png"
            )
            Image.fromarray(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)).save(
                lr / f"{i:04d}x2.png"
            )
        extracted[f"{split}_lr_url"] = str(root / f"{split}_lr")
        extracted[f"{split}_hr_url"] = str(root / f"{split}_hr")
    return extracted


def test_preparing_div2k_with_tfds_needs_tensorflow(tmp_path, monkeypatch):
    """The truth the README states: TFDS's own div2k builder (run here on archives extracted
    locally: no download) walks its files with TensorFlow, so *preparing* it needs TensorFlow
    (and importlib_resources); the prepared ArrayRecords are then read without it. Where
    TensorFlow is installed, this prepares the dataset and reads its HR images back."""
    extracted = _fake_div2k(tmp_path / "extracted")
    monkeypatch.setattr(
        tfds.download.DownloadManager, "download_and_extract", lambda self, urls: extracted
    )
    builder = tfds.builder(
        "div2k/bicubic_x2", data_dir=str(tmp_path / "tfds"), file_format="array_record"
    )
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        with pytest.raises(ModuleNotFoundError) as missing:
            builder.download_and_prepare()
        assert missing.value.name in ("tensorflow", "importlib_resources")
        return
    builder.download_and_prepare()
    source = data.build_source("tfds:div2k/bicubic_x2", "train", data_dir=str(tmp_path / "tfds"))
    assert len(source) == 2
    assert source[0].shape == (20, 24, 3)


# --------------------------------------------------------------------------------------------
# Degradation and evaluation


@pytest.fixture(scope="module")
def degrade():
    return jax.jit(physics.degrade_batch, static_argnames="quantize")


def test_degrade_batch_is_a_function_of_the_batch(degrade, source):
    op = SuperResolution(SCALE)
    (batch,) = _batches(_pipeline(source, batch_size=4), 1)
    out = degrade(op, batch, 0.05)
    assert out["y"].shape == (4, PATCH, PATCH, 3)
    np.testing.assert_array_equal(out["gt"], batch["hr"])
    np.testing.assert_array_equal(degrade(op, batch, 0.05)["y"], out["y"])
    pixels = np.asarray(out["y"]) * 255
    np.testing.assert_allclose(pixels, np.round(pixels), atol=1e-3)  # 8-bit grid

    # Each example's y depends on its own image and seed only, not on its place in the batch.
    reversed_batch = {key: value[::-1] for key, value in batch.items()}
    np.testing.assert_array_equal(degrade(op, reversed_batch, 0.05)["y"], out["y"][::-1])
    same_image = {"hr": batch["hr"][[0, 0, 0, 1]], "seed": np.array([5, 5, 6, 7], np.uint32)}
    y = np.asarray(degrade(op, same_image, 0.05)["y"])
    np.testing.assert_array_equal(y[0], y[1])
    assert np.abs(y[0] - y[2]).max() > 0.02  # different noise

    clean = degrade(op, batch, 0.0, quantize=False)["y"]
    np.testing.assert_allclose(clean, np.clip(op.forward(batch["hr"]), 0, 1), atol=1e-6)


def test_eval_images_are_cropped_to_the_scale(images, source):
    scale = 3
    items = list(data.eval_images(source, scale))
    assert [name for name, _ in items] == [f"image{i}" for i in range(len(images))]
    for index, (image, (_, item)) in enumerate(zip(images, items, strict=True)):
        height, width = image.shape[0] // scale * scale, image.shape[1] // scale * scale
        assert item["hr"].shape == (1, height, width, 3)
        np.testing.assert_array_equal(_as_uint8(item["hr"][0]), image[:height, :width])
        np.testing.assert_array_equal(item["seed"], [index])


# Decoded-image cache


def test_a_cached_folder_reads_the_same_images_without_decoding_again(folder, tmp_path_factory):
    root, expected = folder
    cache_dir = tmp_path_factory.mktemp("cache")
    first = data.build_source(f"folder:{root}", "", cache_dir=cache_dir)
    assert len(list(cache_dir.glob("*.npy"))) == len(expected)
    with mock.patch.object(sources, "_decode", side_effect=AssertionError("decoded again")):
        again = data.build_source(f"folder:{root}", "", cache_dir=cache_dir)
        for i in range(len(again)):
            cached = again[i]
            assert isinstance(cached, data.cache.CachedImage)
            np.testing.assert_array_equal(cached, first[i])
    uncached = data.build_source(f"folder:{root}", "")
    for i in range(len(uncached)):
        np.testing.assert_array_equal(first[i], uncached[i])
        assert first[i].dtype == uncached[i].dtype


def test_a_cached_crop_is_a_copy_that_does_not_hold_its_rows(tmp_path, rng):
    image = rng.integers(0, 256, (12, 14, 3), dtype=np.uint8)
    cached = data.DecodedCache(tmp_path).get("random", lambda: image)
    crop = cached[2:9, 3:8]
    np.testing.assert_array_equal(crop, image[2:9, 3:8])
    assert crop.base is None  # not a view of the 7 whole rows read for it
    np.testing.assert_array_equal(cached[4:6], image[4:6])


def test_bad_and_stale_cache_entries_are_rebuilt_never_read(tmp_path, rng):
    image = rng.integers(0, 256, (12, 14, 3), dtype=np.uint8)
    path = tmp_path / "img" / "a.png"
    _save(path, image)
    cache = data.DecodedCache(tmp_path / "cache")
    source = data.FolderSource(tmp_path / "img", cache=cache)
    entry = cache.path(sources.file_identity(path))
    size = entry.stat().st_size
    for damage in (
        lambda: entry.write_bytes(entry.read_bytes()[: size - 7]),  # truncated
        lambda: entry.write_bytes(entry.read_bytes() + b"garbage"),  # too long
        lambda: entry.write_bytes(b"not an npy file at all"),  # another format
        lambda: np.save(entry, np.zeros((3, 3), np.float32)),  # another shape and type
    ):
        damage()
        np.testing.assert_array_equal(source[0], image)
        assert entry.stat().st_size == size  # rebuilt in full
    # Corrupted while the run holds the image: the next read rebuilds it.
    held = source[0]
    entry.write_bytes(entry.read_bytes()[:200])
    np.testing.assert_array_equal(held[3:9, 2:7], image[3:9, 2:7])
    assert entry.stat().st_size == size
    changed = 255 - image  # the file changes: a new key, the old entry is never read
    _save(path, changed)
    os.utime(path, ns=(1, 1))
    np.testing.assert_array_equal(data.FolderSource(tmp_path / "img", cache=cache)[0], changed)
    assert not list((tmp_path / "cache").glob("*.partial"))


def test_an_unusable_cache_directory_is_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a directory")
    with pytest.raises(ValueError, match=r"file/cache: cannot write the decoded-image cache.*''"):
        data.DecodedCache(blocker / "cache")


def test_the_epoch_order_is_a_fresh_permutation_each_epoch():
    import pickle

    order = data.pipeline.EpochOrder(7, seed=3, epochs=3)
    assert len(order) == 21
    epochs = [[order[e * 7 + j] for j in range(7)] for e in range(3)]
    assert all(sorted(epoch) == list(range(7)) for epoch in epochs)
    assert epochs[0] != epochs[1] != epochs[2]
    copy = pickle.loads(pickle.dumps(order))  # as grain's worker processes receive it
    assert [copy[i] for i in range(20, -1, -1)] == [order[i] for i in range(20, -1, -1)]
    with pytest.raises(IndexError):
        order[21]
    assert len(data.pipeline.EpochOrder(7, seed=3, epochs=None)) > 10**15
