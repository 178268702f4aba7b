"""Training data that generalises: dead-leaves images, mixtures of sources, colour augmentation,
the held-out photos, and the noise-level law of denoiser pre-training."""

import itertools

import jax
import numpy as np
import pytest

from suppa_jax import config as config_lib
from suppa_jax import data, methods
from suppa_jax.data import deadleaves

SMALL = deadleaves.DeadLeaves(size=48)


def _brute_force_first_cover(centres, radii, size):
    label = np.full((size, size), len(radii))
    for i in range(size):
        for j in range(size):
            inside = (i + 0.5 - centres[:, 0]) ** 2 + (j + 0.5 - centres[:, 1]) ** 2 <= radii**2
            hits = np.flatnonzero(inside)
            if hits.size:
                label[i, j] = hits[0]
    return label


def test_first_cover_matches_a_per_pixel_search(rng):
    size = 24
    radii = np.concatenate([rng.uniform(0.5, 3, 40), rng.uniform(3, 20, 10)])
    rng.shuffle(radii)
    centres = rng.uniform(-5, size + 5, (len(radii), 2))
    got = deadleaves._first_cover(centres, radii, size)
    np.testing.assert_array_equal(got, _brute_force_first_cover(centres, radii, size))


def test_render_is_a_pure_function_of_seed_and_index():
    first = deadleaves.render(SMALL, 3, 7)
    assert first.shape == (48, 48, 3)
    assert first.dtype == np.uint8
    np.testing.assert_array_equal(first, deadleaves.render(SMALL, 3, 7))
    assert not np.array_equal(first, deadleaves.render(SMALL, 3, 8))
    assert not np.array_equal(first, deadleaves.render(SMALL, 4, 7))
    assert not np.array_equal(first, deadleaves.render(SMALL, [3, 1], 7))


def test_disc_count_leaves_the_requested_fraction_uncovered():
    model = deadleaves.DeadLeaves(size=64)
    rng = np.random.default_rng(1)
    for target in (0.02, 0.3):
        fractions = []
        for _ in range(20):
            count = model.disc_count(target)
            radii = deadleaves._radii(model, rng, count)
            centres = rng.uniform(-radii[:, None], 64 + radii[:, None], (count, 2))
            fractions.append(np.mean(deadleaves._first_cover(centres, radii, 64) == count))
        assert np.mean(fractions) == pytest.approx(target, rel=0.35)


def test_radii_follow_the_power_law():
    model = deadleaves.DeadLeaves(size=256, alpha=3.0, r_min=1.0)
    assert model.radius_range == (1.0, 256.0)
    radii = deadleaves._radii(model, np.random.default_rng(0), 200_000)
    assert radii.min() >= 1
    assert radii.max() <= 256
    # P(r > t) = (t^-2 - 256^-2) / (1 - 256^-2) for alpha = 3.
    for t in (2.0, 4.0, 16.0):
        expected = (t**-2 - 256.0**-2) / (1 - 256.0**-2)
        assert np.mean(radii > t) == pytest.approx(expected, rel=0.05)


def test_dead_leaves_have_a_natural_power_spectrum():
    """Occluding discs with α = 3 give a radially averaged power ∝ 1/|ω|^β with β ≈ 2, as
    photographs do (without the final blur, which steepens the highest frequencies)."""
    model = deadleaves.DeadLeaves(
        size=128,
        r_min=1.0,
        blur_range=(0.0, 0.0),
        gradient_fraction=0.0,
        uncovered_range=(1e-3, 1e-3),
    )
    power = np.zeros((128, 128))
    for index in range(8):
        gray = deadleaves.render(model, 0, index).astype(np.float64).mean(axis=-1)
        power += np.abs(np.fft.fft2(gray - gray.mean())) ** 2
    freq = np.hypot(*np.meshgrid(np.fft.fftfreq(128), np.fft.fftfreq(128), indexing="ij"))
    bands = np.geomspace(2 / 128, 0.25, 9)
    radial = [power[(freq >= lo) & (freq < hi)].mean() for lo, hi in itertools.pairwise(bands)]
    centres = np.sqrt(bands[:-1] * bands[1:])
    slope = np.polyfit(np.log(centres), np.log(radial), 1)[0]
    assert -2.8 < slope < -1.6


def test_colours_and_flat_regions_are_like_photographs():
    """Every hue is common, saturation is that of photographs (the mean spread of the three
    channels of the held-out photos is 25 levels; uniform RGB colours give about 50) and there
    are flat 8×8 blocks (skies behind the leaves)."""
    images = np.stack([deadleaves.render(SMALL, 0, i) for i in range(40)]).astype(float)
    dominant = np.bincount(images.argmax(axis=-1).ravel(), minlength=3) / images[..., 0].size
    assert dominant.min() > 0.2
    assert 18 < images.std(axis=-1).mean() < 32
    blocks = images.reshape(40, 6, 8, 6, 8, 3).std(axis=(2, 4)).max(axis=-1)
    assert np.mean(blocks < 2) > 0.02


def test_dead_leaves_parameters_are_checked():
    with pytest.raises(ValueError, match="r_min < r_max"):
        deadleaves.DeadLeaves(size=16, r_min=20)
    with pytest.raises(ValueError, match="gradient_fraction"):
        deadleaves.DeadLeaves(gradient_fraction=2)


# ----------------------------------------------------------------------------------- sources


def test_dead_leaves_source_streams_are_independent():
    train = data.DeadLeavesSource(5, SMALL, seed=1, stream="train")
    validation = data.DeadLeavesSource(5, SMALL, seed=1, stream="validation")
    assert len(train) == 5
    assert train.name(2) == "deadleaves:train[2]"
    assert not np.array_equal(train[0], validation[0])
    np.testing.assert_array_equal(
        train[4], data.DeadLeavesSource(9, SMALL, seed=1, stream="train")[4]
    )
    with pytest.raises(IndexError):
        train[5]


def test_parse_mixture():
    assert data.parse_mixture("samples") == [(1.0, "samples")]
    assert data.parse_mixture("0.8*deadleaves; .2 * folder:/a/b*c") == [
        (0.8, "deadleaves"),
        (0.2, "folder:/a/b*c"),
    ]
    with pytest.raises(ValueError, match="empty entry"):
        data.parse_mixture("samples;")
    with pytest.raises(ValueError, match="must be > 0"):
        data.parse_mixture("0*samples; deadleaves")


def test_mixture_draws_each_source_with_its_weight():
    leaves = data.DeadLeavesSource(30, SMALL, stream="train")
    photos = data.ArraySource([np.full((48, 48, 3), v, np.uint8) for v in (1, 2)], ["a", "b"])
    mixture = data.MixtureSource([leaves, photos], [3, 1])
    # L = max(30 / 0.75, 2 / 0.25) = 40: the 30 dead-leaves images once, the photos 10 times.
    assert len(mixture) == 40
    assert mixture.counts == [30, 10]
    names = [mixture.name(i) for i in range(40)]
    assert names[:30] == [leaves.name(i) for i in range(30)]
    assert names[30:] == ["a", "b"] * 5
    np.testing.assert_array_equal(mixture[31], photos[1])
    with pytest.raises(IndexError):
        mixture[40]
    # Through the pipeline, a quarter of the patches come from the photos.
    dataset = data.build_train_dataset(mixture, batch_size=40, patch=8, scale=1, num_epochs=1)
    (batch,) = list(dataset)
    flat = (batch["hr"].std(axis=(1, 2, 3)) == 0).sum()
    assert flat == 10


def test_build_source_mixture_and_dead_leaves():
    source = data.build_source(
        "0.5*deadleaves; 0.5*samples",
        "train",
        min_size=48,
        deadleaves=SMALL,
        deadleaves_images=26,
    )
    assert isinstance(source, data.MixtureSource)
    assert [len(s) for s in source.sources] == [26, len(data.SAMPLE_SPLITS["train"])]
    with pytest.raises(ValueError, match="smaller than the 64-pixel patch"):
        data.build_source("deadleaves", "train", min_size=64, deadleaves=SMALL)
    with pytest.raises(ValueError, match="unknown data source 'dead'"):
        data.build_source("dead", "train")


def test_channel_permutation_reorders_colours_only(rng):
    image = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    source = data.ArraySource([image], ["x"])
    dataset = data.build_train_dataset(
        source, batch_size=1, patch=8, scale=1, augment=False, permute_channels=True, seed=2
    )
    orders = set()
    for batch, _ in zip(dataset, range(60), strict=False):
        pixels = np.round(batch["hr"][0] * 255).astype(np.uint8)
        order = tuple(
            next(c for c in range(3) if np.array_equal(pixels[..., k], image[..., c]))
            for k in range(3)
        )
        assert sorted(order) == [0, 1, 2]
        orders.add(order)
    assert len(orders) == 6
    plain = data.build_train_dataset(source, batch_size=1, patch=8, scale=1, augment=False)
    np.testing.assert_allclose(next(iter(plain))["hr"][0], image / 255, atol=1e-6)


def test_held_out_photos_are_natural_colour_and_never_trained_on():
    photos = data.held_out_photos()
    assert len(photos) == len(data.PHOTOS) == 6
    training = data.sample_images("train")
    for index in range(len(photos)):
        image = photos[index]
        assert image.shape[-1] == 3
        assert min(image.shape[:2]) >= 300
        spread = image.astype(float).std(axis=-1).mean()
        assert spread > 5, f"{photos.name(index)} looks grayscale"
        for t in range(len(training)):
            assert training[t].shape != image.shape or not np.array_equal(training[t], image)


# ------------------------------------------------------------------------------------ config


def test_config_accepts_mixtures_and_names_bad_ones():
    config = config_lib.denoiser(cpu=True)
    config.data.source = "0.7*deadleaves; 0.3*samples"
    config_lib.validate(config)
    config.data.source = "0.7*deadleaves; 0.3*nowhere"
    with pytest.raises(ValueError, match=r"config.data.source must be 'samples', 'deadleaves'"):
        config_lib.validate(config)
    config.data.source = "deadleaves"
    config.data.deadleaves_size = 16
    with pytest.raises(ValueError, match=r"config.data.deadleaves_size must be 0 or at least"):
        config_lib.validate(config)
    config.data.deadleaves_size = 0
    config.denoiser.sigma_power = 0.0
    with pytest.raises(ValueError, match=r"config.denoiser.sigma_power must be > 0"):
        config_lib.validate(config)


# ----------------------------------------------------------------------------- noise levels


@pytest.mark.parametrize("power", [1.0, 2.0])
def test_noise_levels_follow_their_law(power):
    keys = jax.random.split(jax.random.key(0), 20_000)
    levels = np.asarray(jax.vmap(lambda k: methods.noise_level(k, 0.01, 0.2, power))(keys))
    assert levels.min() >= 0.01
    assert levels.max() <= 0.2
    for q in (0.1, 0.25, 0.5):
        expected = q ** (1 / power)
        assert np.mean(levels <= 0.01 + q * 0.19) == pytest.approx(expected, abs=0.015)
