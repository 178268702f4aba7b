"""Restore one's own measurements: ``restore.py`` (``python -m suppa_jax.restoration``), and the
same in two calls from Python.

    python restore.py y.png --model=weights/suppa_sr2 --out=restored/
    python restore.py blurred.tif --model=drunet_color.pth --scale=1 --kernel=psf.npy --sigma=0.03
    python restore.py y.png --model=weights/drunet_cpu_denoiser.msgpack --task=sr2 --trace
    python restore.py damaged.png --model=weights/suppa_inpaint_pixels --mask=mask.png

.. code-block:: python

    model = restoration.load_model("weights/suppa_sr2")
    image = images.read_image("y.png")
    solution = restoration.restore(model, image.pixels)  # the run's own operator
    images.write_image("x.png", solution.x, image.bit_depth)

The model (``--model``) is

* a ``train.py`` workdir: its best checkpoint, run as its method is at test time (ADMM to
  convergence with the learned ``σ``; ``K`` steps for explicit unrolling); the operator is the
  run's unless the command names another (then the log says so);
* a denoiser file (ours ``.msgpack``, or a DPIR-layout PyTorch ``.pth``): plug-and-play ADMM with
  that denoiser at ``--sigma`` (default: the level stored with the file for the named task the
  operator is, else tuned on the training sample images, logged).

The operator is a named task (``--task=sr2``) or ``--scale`` with ``--kernel``: ``bicubic`` (no
antialiasing, SR only), ``gaussian:SIGMA[:SIZE]``, a ``.npy`` file or a grayscale image of the
point-spread function (normalised to sum 1), or ``--mask``: inpainting with a mask file (see
:func:`mask_from_file`) of the images' size. Images keep their depth (8-bit in, 8-bit out; 16-bit
in, 16-bit out; ``--bit_depth`` to choose) and their channels: a grayscale image goes through a
colour model as three equal channels and comes back as their mean; a colour image goes through
a grayscale model one channel at a time. ``--trace`` writes every iterate as well.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from suppa_jax import build, cli, images, tasks
from suppa_jax.evaluation.checkpoints import (
    check_trainable,
    load_prior,
    resolve_path,
    run_config,
    workdir_prior,
)
from suppa_jax.evaluation.tasks import task_config, task_label
from suppa_jax.evaluation.tuning import Measurement, parse_pnp_sigma, resolve_pnp_sigma
from suppa_jax.models import weights
from suppa_jax.physics import (
    Blur,
    Inpainting,
    LinearOperator,
    MaskFamily,
    SuperResolution,
    gaussian_kernel,
)
from suppa_jax.solvers import admm, pnp
from suppa_jax.training import checkpoints
from suppa_jax.typing import Array

__all__ = [
    "Model",
    "kernel_from_spec",
    "load_model",
    "main",
    "mask_from_file",
    "named_operator",
    "restore",
]


def kernel_from_spec(spec: str) -> np.ndarray | str:
    """A blur kernel from ``bicubic``, ``gaussian:SIGMA[:SIZE]`` (size default ``⌈6σ⌉`` made
    odd), a ``.npy`` file or a grayscale image file; files are normalised to sum 1."""
    if spec == "bicubic":
        return spec
    if spec.startswith("gaussian:"):
        parts = spec.split(":")[1:]
        try:
            sigma = float(parts[0])
            size = int(parts[1]) if len(parts) > 1 else 2 * int(np.ceil(3 * sigma)) + 1
        except (ValueError, IndexError):
            raise ValueError(f"--kernel {spec!r}: expected gaussian:SIGMA[:SIZE]") from None
        return gaussian_kernel(sigma, size)
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"--kernel {spec!r}: not bicubic, gaussian:SIGMA[:SIZE] or a file")
    if path.suffix.lower() == ".npy":
        kernel = np.load(path, allow_pickle=False).astype(np.float64)
    else:
        image = images.read_image(path)
        if image.channels != 1:
            raise ValueError(f"--kernel {spec}: a kernel image must be grayscale")
        kernel = image.pixels[..., 0].astype(np.float64)
    if kernel.ndim != 2 or not np.all(np.isfinite(kernel)) or kernel.sum() <= 0:
        raise ValueError(
            f"--kernel {spec}: expected a finite 2-D kernel with a positive sum, got shape "
            f"{kernel.shape}"
        )
    return kernel / kernel.sum()


def mask_from_file(spec: str) -> np.ndarray:
    """An inpainting mask ``(H, W, 1)`` (1 = observed, 0 = missing) from a ``.npy`` file of
    0/1 or booleans, ``(H, W)`` or ``(H, W, 1)``, or from an image file, where a pixel is
    observed when its value (all its channels) is above one half."""
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"--mask {spec}: no such file")
    if path.suffix.lower() == ".npy":
        mask = np.load(path, allow_pickle=False)
        if mask.ndim == 3 and mask.shape[-1] == 1:
            mask = mask[..., 0]
        if mask.ndim != 2 or not np.all((mask == 0) | (mask == 1)):
            raise ValueError(
                f"--mask {spec}: expected a 2-D array of 0 (missing) and 1 (observed), got "
                f"shape {mask.shape} with values {np.unique(mask)[:5]}"
            )
    else:
        mask = np.all(images.read_image(path).pixels > 0.5, axis=-1)
    if not mask.any():
        raise ValueError(f"--mask {spec}: no pixel is observed (all zero)")
    return mask.astype(np.float32)[..., None]


def _tuning_measurement(op: LinearOperator, noise_sigma: float) -> Measurement:
    """How a PnP σ is tuned for ``op`` on the training crops: its named task, else ``op``
    itself; a user's inpainting mask (another size than the crops) as random missing pixels at
    the mask's rate."""
    name = named_operator(op)
    if name is None and isinstance(op, Inpainting):
        rate = round(1 - float(jnp.mean(op.observed)), 4)
        family = MaskFamily("pixels", rate=rate)
        return Measurement(family, noise_sigma, True, None, f"a user mask, as {family!r}")
    return Measurement(op, noise_sigma, True, name, name or repr(op))


def named_operator(op: LinearOperator) -> str | None:
    """The named task whose operator ``op`` is (same type, scale, boundary and kernel), or
    ``None``."""
    for name in tasks.task_names():
        other = build.build_physics(task_config(name)).fixed  # None: one operator per image
        same_boundary = getattr(other, "boundary", None) == getattr(op, "boundary", None)
        if type(other) is type(op) and other.scale == op.scale and same_boundary:
            if not hasattr(op, "kernel"):
                return name if repr(other) == repr(op) else None
            a, b = np.asarray(other.kernel), np.asarray(op.kernel)
            if a.shape == b.shape and np.allclose(a, b, rtol=0, atol=1e-9):
                return name
    return None


@dataclasses.dataclass(frozen=True)
class Model:
    """A model ready to restore: ``run(y, op, trace) -> Solution`` for ``(B, h, w, channels)``
    measurements, the operator it was trained for (``None`` for a bare denoiser) and a
    description for the logs and the summary file."""

    run: Callable[[Array, LinearOperator, bool], admm.Solution]
    channels: int
    trained_op: LinearOperator | None
    trained_noise: float | None
    info: dict


def _workdir_model(
    path: Path,
    best: checkpoints.Best,
    config: ml_collections.ConfigDict,
    max_iters: int,
    tol: float,
) -> Model:
    check_trainable(config, best.trainable, path)
    config.admm.max_iters, config.admm.tol = max_iters, tol
    network = build.build_model(config)

    @functools.partial(jax.jit, static_argnames="trace")
    def predict(trainable, y, op, trace):
        return build.build_method(config, network, op).predict(trainable, y, trace=trace)

    info = {"model": str(path), "method": config.method, "step": best.step}
    return Model(
        lambda y, op, trace: predict(best.trainable, y, op, trace),
        network.channels,
        build.build_physics(config.task).fixed,  # None when trained over a family
        config.task.noise_sigma,
        info | {"task": task_label(config.task)},
    )


def _prior_model(
    prior: weights.Prior,
    sigma: float | str,
    max_iters: int,
    tol: float,
    noise_sigma: float,
    log: Callable[[str], None] | None,
) -> Model:
    chosen: dict[str, float] = {}

    def run(y: Array, op: LinearOperator, trace: bool) -> admm.Solution:
        task = _tuning_measurement(op, noise_sigma)
        if task.label not in chosen:
            chosen[task.label] = resolve_pnp_sigma(sigma, prior, task, log)
        return pnp.restore(
            prior.denoiser,
            y,
            op,
            sigma=chosen[task.label],
            max_iters=max_iters,
            tol=tol,
            trace=trace,
        )

    info = {"model": str(prior.path), "method": "pnp", "pnp_sigma": chosen}
    return Model(run, prior.model.channels, None, None, info)


def load_model(
    model: str | Path,
    *,
    sigma: float | str = "default",
    max_iters: int = 50,
    tol: float = 1e-3,
    noise_sigma: float = 0.0,
    log: Callable[[str], None] | None = print,
) -> Model:
    """What ``--model`` names: a ``train.py`` workdir (its best checkpoint, as its method) or a
    denoiser (plug-and-play at ``sigma``: a number, ``"default"`` or ``"tune"``, see
    :func:`~suppa_jax.evaluation.tuning.resolve_pnp_sigma`; ``noise_sigma`` is the measurement
    noise the tuning assumes). A denoiser workdir (``method = "denoiser"``) is used as a prior."""
    path = resolve_path(str(model), "--model")
    if path.is_dir():
        if not (path / "best").is_dir():
            raise ValueError(f"--model {path}: a directory but not a train.py workdir (no best/)")
        best = checkpoints.best_trainable(path)
        config = run_config(path, best.config)
        if config.method != "denoiser":
            return _workdir_model(path, best, config, max_iters, tol)
        prior = workdir_prior(path, best, config)
    else:
        prior = load_prior(path)
    return _prior_model(prior, sigma, max_iters, tol, noise_sigma, log)


def restore(
    model: Model, y: Array | np.ndarray, op: LinearOperator | None = None, *, trace: bool = False
) -> admm.Solution:
    """Restore one measurement ``y`` ``(h, w, C)`` (or a batch ``(B, h, w, C)``) with ``model``
    and ``op`` (default: the operator the model was trained for). ``C`` may differ from the
    model's channels: gray through a colour model as three equal channels (the result is their
    mean), colour through a gray model channel by channel. The result has ``y``'s channels."""
    if op is None:
        if model.trained_op is None:
            raise ValueError(
                "a denoiser, or a model trained over a family of operators, needs an operator: "
                "give op (or --task/--scale/--kernel)"
            )
        op = model.trained_op
    y = jnp.asarray(y, jnp.float32)
    single = y.ndim == 3
    y = y[None] if single else y
    channels = y.shape[-1]
    if channels == model.channels:
        solution = model.run(y, op, trace)
    elif channels == 1:
        solution = model.run(jnp.repeat(y, model.channels, axis=-1), op, trace)
        solution = jax.tree.map(lambda a: a.mean(-1, keepdims=True) if a.ndim >= 4 else a, solution)
    elif model.channels == 1:
        planes = jnp.moveaxis(y, -1, 0)[..., None]  # (C, B, h, w, 1)
        solution = model.run(planes.reshape(-1, *planes.shape[2:]), op, trace)
        solution = _channels_back(solution, channels, y.shape[0])
    else:
        raise ValueError(f"a {channels}-channel image and a {model.channels}-channel model")
    if single:
        solution = _drop_batch(solution)
    return solution


def _channels_back(solution: admm.Solution, channels: int, batch: int) -> admm.Solution:
    """``(C·B, …, 1)`` per-channel results → ``(B, …, C)``; iterations: the most of any channel."""

    def image(a: Array, lead: int) -> Array:
        a = a.reshape(*a.shape[:lead], channels, batch, *a.shape[lead + 1 : -1])
        return jnp.moveaxis(a, lead, -1)

    iterations = solution.iterations.reshape(channels, batch).max(0)
    estimates = None if solution.estimates is None else image(solution.estimates, 1)
    return admm.Solution(image(solution.x, 0), iterations, estimates)


def _drop_batch(solution: admm.Solution) -> admm.Solution:
    estimates = None if solution.estimates is None else solution.estimates[:, 0]
    return admm.Solution(solution.x[0], solution.iterations[0], estimates)


# -------------------------------------------------------------------------------- command


def _parser() -> argparse.ArgumentParser:
    parser = cli.parser(
        "restore.py",
        "Restore degraded images (PNG, JPEG, TIFF; 8- or 16-bit; gray or colour) with a trained "
        "model or a denoiser (plug-and-play ADMM), at the images' own bit depth.",
    )
    parser.add_argument("images", nargs="+", help="the measurements y to restore")
    parser.add_argument(
        "--model",
        required=True,
        help="a train.py workdir, or a denoiser file (.msgpack, or a DPIR-layout .pth)",
    )
    parser.add_argument("--task", choices=tasks.task_names(), help="a named task's operator")
    parser.add_argument("--scale", type=int, help="SR scale (1: deblurring); with --kernel")
    parser.add_argument(
        "--kernel",
        help="bicubic, gaussian:SIGMA[:SIZE], a .npy file or a grayscale image of the PSF",
    )
    parser.add_argument(
        "--mask",
        help="inpainting: a mask of the images' size (.npy of 0/1, or an image: white = observed)",
    )
    parser.add_argument(
        "--noise_sigma",
        type=float,
        help="the measurements' noise level in [0, 1] (default: the task's or the run's); "
        "tuning a PnP σ assumes it",
    )
    parser.add_argument(
        "--sigma",
        default="default",
        help="PnP denoiser level: a number, 'default' (stored with the denoiser, else tuned) "
        "or 'tune' (ignored for a train.py workdir, which uses its learned σ)",
    )
    parser.add_argument("--max_iters", type=int, default=50, help="iteration cap (default 50)")
    parser.add_argument("--tol", type=float, default=1e-3, help="relative-change tolerance")
    parser.add_argument(
        "--bit_depth", type=int, choices=images.BIT_DEPTHS, help="default: each input's"
    )
    parser.add_argument("--trace", action="store_true", help="also write every iterate")
    parser.add_argument("--out", default="results/restored", help="output folder")
    return parser


def _operator(args: argparse.Namespace) -> tuple[LinearOperator | None, float | None]:
    """The operator and noise level the options name (``None``: the model's own)."""
    if args.task and (args.scale or args.kernel):
        raise ValueError("give --task or --scale/--kernel, not both")
    if args.mask:
        if args.task or args.scale or args.kernel:
            raise ValueError("--mask is the operator: give it without --task/--scale/--kernel")
        return Inpainting(mask_from_file(args.mask)), None
    if args.task:
        section = task_config(args.task)
        return build.build_operator(section), section.noise_sigma
    if args.scale is None and args.kernel is None:
        return None, None
    scale = 1 if args.scale is None else args.scale
    kernel = kernel_from_spec(args.kernel or "bicubic")
    if scale < 1:
        raise ValueError(f"--scale must be >= 1, got {scale}")
    if scale == 1:
        if isinstance(kernel, str):
            raise ValueError("--kernel=bicubic is a downsampling kernel: it needs --scale >= 2")
        return Blur(kernel), None
    return SuperResolution(scale, kernel), None


def run(args: argparse.Namespace, log: Callable[[str], None] = print) -> list[dict]:
    """Restore every image of the parsed arguments; returns one summary row per image."""
    if args.max_iters < 1 or args.tol <= 0:
        raise ValueError("--max_iters must be >= 1 and --tol > 0")
    if args.noise_sigma is not None and not 0 <= args.noise_sigma <= 1:
        raise ValueError(f"--noise_sigma must be in [0, 1], got {args.noise_sigma}")
    op, task_noise = _operator(args)
    noise = args.noise_sigma if args.noise_sigma is not None else task_noise
    model = load_model(
        args.model,
        sigma=parse_pnp_sigma(args.sigma, "--sigma"),
        max_iters=args.max_iters,
        tol=args.tol,
        noise_sigma=noise or 0.0,
        log=log,
    )
    if op is None and model.trained_op is None:
        raise ValueError(
            f"--model {args.model} is a denoiser or was trained over a family of operators: "
            "give --task or --scale/--kernel"
        )
    if (
        op is not None
        and model.trained_op is not None
        and named_operator(op) != named_operator(model.trained_op)
    ):
        log(f"note: {args.model} was trained for {model.info['task']}; restoring with {op!r}")
    if noise is not None and model.trained_noise is not None and noise != model.trained_noise:
        log(f"note: {args.model} was trained at noise level {model.trained_noise:g}, not {noise:g}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.images:
        image = images.read_image(name)
        if isinstance(op, Inpainting) and op.observed.shape[-3:-1] != image.pixels.shape[:2]:
            raise ValueError(
                f"{name}: a {image.pixels.shape[1]}×{image.pixels.shape[0]} image and a "
                f"{op.observed.shape[-2]}×{op.observed.shape[-3]} --mask {args.mask}"
            )
        solution = restore(model, image.pixels, op, trace=args.trace)
        depth = args.bit_depth or (16 if image.bit_depth > 8 else 8)
        suffix = Path(name).suffix.lower()
        suffix = suffix if suffix in (".png", ".tif", ".tiff") else ".png"  # lossless
        target = images.write_image(out / f"{Path(name).stem}{suffix}", solution.x, depth)
        iterations = int(solution.iterations)
        row = {"input": str(name), "output": str(target), "bit_depth": depth}
        row |= {"shape": list(solution.x.shape), "iterations": iterations}
        if args.trace:
            folder = out / f"{Path(name).stem}_trace"
            folder.mkdir(exist_ok=True)
            for k in range(iterations + 1):
                images.write_image(folder / f"{k:03d}{suffix}", solution.estimates[k], depth)
            row["trace"] = str(folder)
        log(f"{name} -> {target} ({iterations} iterations)")
        rows.append(row)
    summary = {"model": model.info, "operator": repr(op or model.trained_op), "images": rows}
    (out / "restore.json").write_text(json.dumps(summary, indent=2, default=str))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """``restore.py``: returns 0, or exits with status 2 and a one-line error."""
    parser = _parser()
    args = parser.parse_args(argv)
    cli.quiet_logs(args.verbosity)
    with cli.reporting_errors(parser, args.verbosity):
        run(args)
    return 0


if __name__ == "__main__":
    from suppa_jax.xla import use_fast_xla_cpu_flags

    use_fast_xla_cpu_flags()
    raise SystemExit(main())
