"""The shipped prior as a denoiser, next to the classical denoisers a user could run instead.

On the six held-out natural colour photos (:func:`suppa_jax.data.held_out_photos`, whole
images), each is corrupted with additive white Gaussian noise ``x + σ·n`` (not clipped, as in
training and in the denoising literature; one seed per image and level) at
``σ ∈ {5, 15, 25, 50}/255`` and denoised by

* our DRUNet priors at the true ``σ``: the shipped one (``--weights``) and any others
  (``--compare``, e.g. the previous shipped prior);
* BM3D for colour images (``bm3d.bm3d_rgb``, the ``bm3d`` package, at the true ``σ``);
* scikit-image's wavelet denoiser (BayesShrink, soft threshold, in YCbCr) and non-local means
  (fast mode, 5×5 patches, distance 6, ``h = 0.8σ``), both told the true ``σ``.

Reported: RGB PSNR per image and its mean, per level. Then the **identity test**: a clean photo
passed through each prior at ``σ = 5/255``, its PSNR against itself, the largest shift of a
channel's mean (in 8-bit levels: a colour cast) and a **grid score**, the power of the change
``D(x) − x`` at the frequencies of an 8-pixel lattice (those of DRUNet's three stride-2 levels,
DC excluded) over its mean power at all frequencies: about 1 for an unstructured change, large
for a periodic grid texture. ``flat_region.png`` shows zoomed crops of flat regions (the skies
of ``rocket`` and ``china``) through each prior, with the change amplified.

Outputs in ``--out`` (default ``results/denoise``): ``denoise.md`` (printed), ``denoise.json``,
``flat_region.png``. Reproduce (about 6 minutes on 2 CPU cores)::

    python -m benchmarks.denoise --compare weights/previous/drunet_small_denoiser.msgpack
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from suppa_jax import data, metrics
from suppa_jax.models import weights

LEVELS = (5, 15, 25, 50)  # σ·255
IDENTITY_LEVEL = 5
LATTICE = 8
# 64×64 crops of sky: rocket's dark blue night sky and china's light blue haze.
FLAT_REGIONS = (
    ("photo:rocket", slice(0, 64), slice(150, 214)),
    ("photo:china", slice(20, 84), slice(80, 144)),
)
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WEIGHTS = ROOT / "weights" / "drunet_cpu_denoiser.msgpack"

ImageDenoiser = Callable[[np.ndarray, float], np.ndarray]


def _centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
    return image[top : top + size, left : left + size]


def held_out(max_images: int = 0, crop: int = 0) -> data.ArraySource:
    """The held-out photos (the first ``max_images``; all for 0), optionally their
    ``crop × crop`` centre crops (for quick runs)."""
    photos = data.held_out_photos()
    count = max_images or len(photos)
    images = [photos[i] for i in range(count)]
    if crop:
        images = [_centre_crop(image, crop) for image in images]
    return data.ArraySource(images, [photos.name(i) for i in range(count)])


def psnr(x: np.ndarray, reference: np.ndarray) -> float:
    """RGB PSNR in dB of one float image in [0, 1] (:func:`suppa_jax.metrics.psnr`)."""
    return float(metrics.psnr(jnp.asarray(x, jnp.float32), jnp.asarray(reference, jnp.float32)))


def drunet_denoiser(path: Path) -> ImageDenoiser:
    """``D(x, σ)`` of a denoiser params file, jitted (one compilation per image size)."""
    denoiser = weights.load_prior(path).denoiser
    apply = jax.jit(lambda d, x, s: d(x, s))

    def run(noisy: np.ndarray, sigma: float) -> np.ndarray:
        return np.asarray(apply(denoiser, jnp.asarray(noisy[None], jnp.float32), sigma)[0])

    return run


def bm3d_denoiser() -> ImageDenoiser:
    import bm3d

    def run(noisy: np.ndarray, sigma: float) -> np.ndarray:
        return np.asarray(bm3d.bm3d_rgb(noisy, sigma_psd=sigma), np.float32)

    return run


def wavelet_denoiser() -> ImageDenoiser:
    from skimage.restoration import denoise_wavelet

    def run(noisy: np.ndarray, sigma: float) -> np.ndarray:
        return denoise_wavelet(
            noisy,
            sigma=sigma,
            method="BayesShrink",
            mode="soft",
            channel_axis=-1,
            convert2ycbcr=True,
            rescale_sigma=True,
        )

    return run


def nlm_denoiser() -> ImageDenoiser:
    from skimage.restoration import denoise_nl_means

    def run(noisy: np.ndarray, sigma: float) -> np.ndarray:
        return denoise_nl_means(
            noisy,
            h=0.8 * sigma,
            sigma=sigma,
            patch_size=5,
            patch_distance=6,
            fast_mode=True,
            channel_axis=-1,
        )

    return run


def grid_score(change: np.ndarray, period: int = LATTICE) -> float:
    """Mean power of ``change`` (``(H, W, C)``) at the ``period``-lattice frequencies (DC
    excluded) over its mean power at all frequencies; H and W are cropped to multiples of
    ``period``."""
    height, width = (s // period * period for s in change.shape[:2])
    power = np.abs(np.fft.fft2(change[:height, :width], axes=(0, 1))) ** 2
    power = power.sum(axis=-1)
    lattice = power[:: height // period, :: width // period].copy()
    lattice[0, 0] = 0.0
    return float(lattice.sum() / (lattice.size - 1) / power.mean())


def identity_test(denoise: ImageDenoiser, photos: data.ImageSource) -> list[dict[str, Any]]:
    """Each clean photo through ``denoise`` at ``σ = 5/255``: PSNR, colour shift, grid score."""
    rows = []
    for index in range(len(photos)):
        clean = photos[index].astype(np.float32) / 255
        out = denoise(clean, IDENTITY_LEVEL / 255)
        shift = 255 * np.abs((out - clean).reshape(-1, 3).mean(axis=0)).max()
        rows.append(
            {
                "image": photos.name(index),
                "psnr": psnr(out, clean),
                "colour_shift": float(shift),
                "grid_score": grid_score(out - clean),
            }
        )
    return rows


def denoising_table(
    denoisers: dict[str, ImageDenoiser], photos: data.ImageSource, levels: Sequence[int], seed: int
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """PSNR of every denoiser on every photo and level; and the seconds each spent."""
    rows, seconds = [], dict.fromkeys(denoisers, 0.0)
    for level in levels:
        sigma = level / 255
        for index in range(len(photos)):
            clean = photos[index].astype(np.float32) / 255
            rng = np.random.default_rng([seed, level, index])
            noisy = (clean + sigma * rng.standard_normal(clean.shape)).astype(np.float32)
            row = {"level": level, "image": photos.name(index), "noisy": psnr(noisy, clean)}
            for name, denoise in denoisers.items():
                start = time.perf_counter()
                row[name] = psnr(denoise(noisy, sigma), clean)
                seconds[name] += time.perf_counter() - start
            rows.append(row)
            print(
                f"  σ={level}/255 {photos.name(index)}: "
                + ", ".join(f"{k} {v:.2f}" for k, v in row.items() if isinstance(v, float)),
                flush=True,
            )
    return rows, seconds


def flat_region_figure(
    path: Path, priors: dict[str, ImageDenoiser], photos: data.ImageSource
) -> None:
    """The sky crops of :data:`FLAT_REGIONS`, clean and through each prior at ``σ = 5/255``,
    zoomed, each with the change ``D(x) − x`` amplified ×20 around mid-grey below it."""
    from matplotlib.figure import Figure

    names = [photos.name(i) for i in range(len(photos))]
    regions = [r for r in FLAT_REGIONS if r[0] in names]
    fig = Figure(figsize=(2.3 * (1 + len(priors)), 4.6 * len(regions)), layout="constrained")
    axes = fig.subplots(2 * len(regions), 1 + len(priors), squeeze=False)
    for number, (name, rows, cols) in enumerate(regions):
        clean = photos[names.index(name)].astype(np.float32) / 255
        panels = [(f"{name}\nclean", clean, np.zeros_like(clean))]
        for label, denoise in priors.items():
            out = denoise(clean, IDENTITY_LEVEL / 255)
            crop_psnr = psnr(out[rows, cols], clean[rows, cols])
            panels.append((f"{label}\n{crop_psnr:.2f} dB on the crop", out, out - clean))
        for column, (title, image, change) in enumerate(panels):
            top, bottom = axes[2 * number, column], axes[2 * number + 1, column]
            top.imshow(np.clip(image[rows, cols], 0, 1), interpolation="nearest")
            top.set_title(title, fontsize=8)
            bottom.imshow(np.clip(0.5 + 20 * change[rows, cols], 0, 1), interpolation="nearest")
            bottom.set_title("D(x) − x, ×20" if column else "", fontsize=8)
            top.set_axis_off()
            bottom.set_axis_off()
    fig.suptitle(f"64×64 sky crops through each prior at σ = {IDENTITY_LEVEL}/255", fontsize=9)
    fig.savefig(path, dpi=110)


def markdown(
    rows: list[dict[str, Any]],
    identity: dict[str, list[dict[str, Any]]],
    names: Sequence[str],
    seconds: dict[str, float],
) -> str:
    levels = sorted({r["level"] for r in rows})
    lines = [
        "Mean RGB PSNR (dB) on the held-out photos, per noise level σ·255:",
        "",
        "| denoiser | " + " | ".join(f"σ = {level}" for level in levels) + " | seconds |",
        "|---|" + "---:|" * (len(levels) + 1),
    ]
    for name in ("noisy", *names):
        means = [np.mean([r[name] for r in rows if r["level"] == lv]) for lv in levels]
        spent = f"{seconds[name]:.0f}" if name in seconds else ""
        lines.append(f"| {name} | " + " | ".join(f"{m:.2f}" for m in means) + f" | {spent} |")
    for level in levels:
        lines += ["", f"σ = {level}/255, per image:", ""]
        lines += ["| image | noisy | " + " | ".join(names) + " |"]
        lines += ["|---|" + "---:|" * (len(names) + 1)]
        for r in (r for r in rows if r["level"] == level):
            cells = [f"{r[k]:.2f}" for k in ("noisy", *names)]
            lines.append(f"| {r['image']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Identity test: a clean photo through each prior at σ = {IDENTITY_LEVEL}/255 (PSNR "
        "against itself; largest channel-mean shift in 8-bit levels; grid score, ~1 = no "
        "periodic texture):",
        "",
        "| prior | image | PSNR (dB) | colour shift | grid score |",
        "|---|---|---:|---:|---:|",
    ]
    for name, values in identity.items():
        for r in values:
            lines.append(
                f"| {name} | {r['image']} | {r['psnr']:.2f} | {r['colour_shift']:.2f} | "
                f"{r['grid_score']:.2f} |"
            )
        mean = {k: np.mean([r[k] for r in values]) for k in ("psnr", "colour_shift", "grid_score")}
        lines.append(
            f"| {name} | **mean** | {mean['psnr']:.2f} | {mean['colour_shift']:.2f} | "
            f"{mean['grid_score']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS, help="the shipped prior")
    parser.add_argument(
        "--compare", type=Path, nargs="*", default=[], help="other DRUNet params files"
    )
    parser.add_argument(
        "--levels", default=",".join(map(str, LEVELS)), help="σ·255, comma-separated"
    )
    parser.add_argument("--max_images", type=int, default=0, help="photos to use (0: all six)")
    parser.add_argument("--crop", type=int, default=0, help="centre crops of this side (0: whole)")
    parser.add_argument("--no_classical", action="store_true", help="only the DRUNet priors")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results/denoise"))
    args = parser.parse_args(argv)

    photos = held_out(args.max_images, args.crop)
    priors = {path.stem: drunet_denoiser(path) for path in [args.weights, *args.compare]}
    denoisers = dict(priors)
    if not args.no_classical:
        denoisers |= {"BM3D": bm3d_denoiser(), "wavelet": wavelet_denoiser(), "NLM": nlm_denoiser()}
    levels = [int(v) for v in args.levels.split(",")]
    rows, seconds = denoising_table(denoisers, photos, levels, args.seed)
    identity = {name: identity_test(denoise, photos) for name, denoise in priors.items()}
    args.out.mkdir(parents=True, exist_ok=True)
    table = markdown(rows, identity, list(denoisers), seconds)
    (args.out / "denoise.md").write_text(f"# Denoising: held-out photos\n\n{table}")
    (args.out / "denoise.json").write_text(
        json.dumps({"rows": rows, "identity": identity, "seconds": seconds}, indent=2) + "\n"
    )
    written = ["denoise.md", "denoise.json"]
    if not args.max_images:  # the crops are in the whole photos, whatever --crop says
        flat_region_figure(args.out / "flat_region.png", priors, data.held_out_photos())
        written.append("flat_region.png")
    print(table)
    print(f"Wrote {', '.join(written)} to {args.out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
