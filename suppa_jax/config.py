"""Experiment configurations: builders for ``configs/*.py`` and their start-up validation.

Every file in ``configs/`` is a few lines that call a builder of this module::

    from suppa_jax.config import experiment

    def get_config():
        return experiment("sr", scale=2)

and ``train.py`` loads it with ``ml_collections.config_flags`` (``--config=configs/sr_x2.py``),
where any field can be overridden from the command line (``--config.train.lr=1e-5``,
``--config.method=deq``, ``--config.model.widths='(16, 32, 64, 64)'``). The builders return
*locked* ``ConfigDict`` s: existing fields can be changed, a misspelt one cannot be added (on the
command line ``config_flags`` rejects it, naming the key). Then :func:`validate` checks the
values and raises a ``ValueError`` that names the field's full path and the bad value, e.g.
``config.train.lr must be > 0, got -1e-05``.

Conventions: noise levels are standard deviations on the [0, 1] image scale (25/255, not 25).
``data.patch`` is the *LR* patch side: training crops are ``patch·scale`` HR pixels (48 LR
pixels in the paper's super-resolution; 256 in its deblurring, where the scale is 1, as for
denoising). ``admm.rho`` is the ADMM weight in the convention ``½‖y − Ax‖² + ρ/2‖x − z‖²``,
``0.1·s²`` (:func:`suppa_jax.admm.reference_rho`). An "epoch" is ``data.patches_per_image``
random patches from each training image (1: the paper's epoch). Fields that mean "none" use
sentinels of their type rather than ``None`` (``""``, ``0``, ``-1``), so that command-line
overrides keep their type. See ``configs/README.md`` for the list of files and fields.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import ml_collections
import numpy as np

from suppa_jax import drunet

__all__ = [
    "CPU_DATA",
    "CPU_DENOISER",
    "DIV2K",
    "DPIR_DENOISER",
    "KERNELS",
    "METHODS",
    "SR_SCALES",
    "TASK_KINDS",
    "apply_overrides",
    "base",
    "check_batch_divisible",
    "cpu_overrides",
    "denoiser",
    "experiment",
    "flatten",
    "validate",
]

ConfigDict = ml_collections.ConfigDict

#: Training methods of :mod:`suppa_jax.methods`, and ``"denoiser"``: Gaussian-denoiser
#: pre-training of DRUNet (the prior every method starts from).
METHODS = ("suppa", "unrolled", "unrolled_remat", "deq", "jfb", "denoiser")
#: Task kinds and the kernels each accepts, its default first: super-resolution by bicubic
#: downsampling (the paper) or Gaussian blur then decimation; ``"identity"``: ``A = I``.
KERNELS = {"sr": ("bicubic", "gaussian"), "deblur": ("gaussian",), "denoise": ("identity",)}
TASK_KINDS = tuple(KERNELS)
#: Super-resolution factors of the paper.
SR_SCALES = (2, 3, 4)
#: DRUNet's three stride-2 levels: HR training patches must be a multiple of this.
PATCH_MULTIPLE = 8

#: DIV2K from TFDS. Only the ``hr`` feature is read (measurements are made on the fly), so one
#: TFDS config serves every scale and is prepared once.
DIV2K = "tfds:div2k/bicubic_x2"
#: DPIR's public ``drunet_color.pth`` converted with ``python -m suppa_jax.convert``: the
#: paper-size prior that the paper's experiments fine-tune.
DPIR_DENOISER = "weights/drunet_color.msgpack"
#: The DRUNet pre-trained by ``configs/denoiser_cpu.py``: the CPU variants' prior.
CPU_DENOISER = "weights/drunet_cpu_denoiser.msgpack"
#: The CPU variants' training data: colour dead leaves and the bundled sample images.
CPU_DATA = "0.7*deadleaves; 0.3*samples"
#: The paper's deblurring data (not in TFDS): the Waterloo Exploration Database's 4,744
#: ``pristine_images`` for training, BSDS500's ``val`` images for validation. Placeholder
#: paths, relative to the working directory: put or link the data there, or override.
WATERLOO = "folder:data/waterloo"
BSDS500 = "folder:data/BSDS500/data/images"

_CPU_WIDTHS = (24, 48, 96, 192)
_PARAMS_SUFFIXES = (".msgpack", ".pth", ".pt")


# --------------------------------------------------------------------------------- builders


def base() -> ConfigDict:
    """The full schema with its defaults (unlocked): the paper's ×2 super-resolution with SUPPA.

    Every config has exactly these fields; :func:`validate` rejects others and wrong types.
    """
    config = ConfigDict()
    config.method = "suppa"
    config.task = ConfigDict(
        {
            "kind": "sr",  # sr | deblur | denoise
            "scale": 2,  # 2, 3, 4 for sr; 1 otherwise
            "kernel": "bicubic",  # sr: bicubic (or gaussian); deblur: gaussian; denoise: identity
            "bicubic_a": -0.75,  # Keys' a: -0.75 PyTorch/OpenCV, -0.5 MATLAB (no antialiasing)
            "blur_sigma": 2.0,  # Gaussian kernel std (pixels) and side; DESIGN §3: 11×11
            "blur_size": 11,
            # Measurement noise std. For kind "denoise": the validation noise level (training
            # draws it from denoiser.sigma_min..sigma_max).
            "noise_sigma": 0.0,
            "quantize": True,  # 8-bit measurements, as the paper's saved PNGs
        }
    )
    config.admm = ConfigDict(
        {
            "rho": 0.4,  # 0.1·s² (suppa_jax.admm.reference_rho); the rivals' learned init
            "sigma": 0.1,  # init of the learned denoiser noise level
            "max_iters": 50,  # forward cap and tolerance: suppa, deq, jfb, and evaluation
            "tol": 1e-3,
            "unrolled_iters": 6,  # K for unrolled and unrolled_remat
            "lam": 1.0,  # suppa: init of λ (raw, learned with train.scalar_lr)
            "random_states": 1,  # suppa: reservoir-sampled states besides the last one
            "backward_max_iters": 50,  # deq: adjoint fixed point
            "backward_tol": 1e-3,
            "anderson_memory": 0,  # deq and jfb forward: 0 = plain iteration
        }
    )
    # Training noise levels σ = σ_min + (σ_max − σ_min)·u^sigma_power, u ~ U[0, 1]: 1 is
    # uniform (DPIR's), 2 puts half of the draws in the lowest quarter of the range.
    config.denoiser = ConfigDict({"sigma_min": 0.0, "sigma_max": 50 / 255, "sigma_power": 1.0})
    config.model = ConfigDict(
        {
            "widths": (64, 128, 256, 512),  # DRUNet paper size: 32,640,960 parameters
            "num_blocks": 4,
            # "" = random init (denoiser pre-training only); else a params file (.msgpack of
            # suppa_jax.convert or of a denoiser run) or a PyTorch state dict (.pth).
            "init": DPIR_DENOISER,
            # "float32" | "bfloat16": the network's arithmetic (weights, optimiser, FFT data
            # step and losses stay float32; drunet.with_compute_dtype).
            "compute_dtype": "float32",
            # A global skip out = U(x, σ) + γ·x (drunet.DRUNet.residual); DPIR's has none.
            "residual": False,
        }
    )
    config.data = ConfigDict(
        {
            # "samples" | "deadleaves" | "folder:PATH" | "tfds:NAME", or a weighted mixture
            # "0.8*deadleaves; 0.2*samples" (suppa_jax.data.build_source)
            "source": DIV2K,
            "train_split": "train",
            "eval_source": "",  # "" = same as source
            "eval_split": "validation",
            "feature": "hr",  # TFDS image feature
            "data_dir": "",  # TFDS data directory ("" = TFDS's default)
            "patch": 48,  # LR patch side; HR patch = patch·scale
            "augment": True,  # random flips and rotations by 90°
            "permute_channels": False,  # colour augmentation: a random order of R, G, B
            "deadleaves_images": 10_000,  # images of a "deadleaves" source (its epoch)
            "deadleaves_size": 0,  # their side in pixels (0 = the HR patch, patch·scale)
            "patches_per_image": 1,  # 1: the paper's epoch
            "skip_bad_images": False,
            "seed": 0,
            "worker_count": 0,  # grain worker processes (0: threads in this process)
            "max_eval_images": 10,  # validation images per evaluation (0 = all)
            "eval_crop": 0,  # centre crop of validation images, HR pixels (0 = full images)
        }
    )
    config.train = ConfigDict(
        {
            "epochs": 75,
            "batch_size": 16,  # global, over all devices and processes
            # Network learning rate: 1e-4 in the reference code; the paper's text says 1e-5.
            "lr": 1e-4,
            "scalar_lr": 0.1,  # λ (SUPPA's convergence rate), as in the paper
            # The learned ADMM scalars σ (all methods) and ρ (the rivals). Our choice: the
            # network's rate; at 0.1, σ (≈ 0.1) jumps by up to 0.1 per Adam step, and on the
            # CPU deblurring variant validation PSNR fell while σ halved (README).
            "admm_lr": 1e-4,
            "decay_epochs": 40,  # both rates ×decay_rate every decay_epochs epochs
            "decay_rate": 0.1,
            "seed": 0,
            "log_every_steps": 10,
            "checkpoint_every_steps": 250,
            "eval_every_epochs": 1,
            "keep_checkpoints": 3,
        }
    )
    config.parallel = ConfigDict(
        {
            "multi_host": False,  # call jax.distributed.initialize()
            "coordinator_address": "",  # "host:port"; "" = from the environment
            "num_processes": 0,  # 0 = from the environment
            "process_id": -1,  # -1 = from the environment
        }
    )
    return config


def apply_overrides(config: ConfigDict, overrides: Mapping[str, Any]) -> ConfigDict:
    """Set ``{"train.lr": 1e-5, ...}`` (dotted paths below ``config``) in place; returns it.

    Only existing fields: an unknown path raises a ``KeyError`` that names it, and a value of
    the wrong type the ``ConfigDict``'s ``TypeError``.
    """
    for path, value in overrides.items():
        *parents, name = path.split(".")
        node = config
        for key in parents:
            node = node[key] if isinstance(node, ConfigDict) and key in node else None
        if not isinstance(node, ConfigDict) or name not in node:
            raise KeyError(f"config.{path} is not a known field")
        node[name] = value
    return config


def cpu_overrides(kind: str) -> dict[str, Any]:
    """The fields in which a CPU variant differs from the paper config of task ``kind``.

    A small DRUNet (widths 24-48-96-192, one block, a global skip), synthetic colour dead leaves
    mixed with scikit-image's bundled images (``data.source`` :data:`CPU_DATA`, channel
    permutations), small patches and batches, fewer iterations: an hour for the denoiser and
    minutes for a fine-tuning on a 2-core CPU. Validation runs on dead-leaves images of their
    own stream, never on the photos that evaluation reports (:data:`suppa_jax.data.PHOTOS`).
    The experiments start from the denoiser trained by ``configs/denoiser_cpu.py``
    (:data:`CPU_DENOISER`).
    """
    if kind not in KERNELS:
        raise ValueError(f"unknown task kind {kind!r}; use one of {list(KERNELS)}")
    common = {
        "model.widths": _CPU_WIDTHS,
        "model.num_blocks": 1,
        "model.residual": True,
        "data.source": CPU_DATA,
        "data.train_split": "train",
        "data.permute_channels": True,
        "data.eval_source": "deadleaves",
        "data.eval_split": "validation",
        "data.max_eval_images": 32,
        "data.eval_crop": 0,
    }
    if kind == "denoise":
        return common | {
            # 20,000 dead-leaves images and the 13 samples at 70:30, one 64² patch per image
            # per epoch: 28,572 patches, 3,572 steps of 8 (11 minutes on 2 cores). Noise levels
            # up to 50/255 (the denoising benchmark's range), drawn as σ_max·u² so that half of
            # them are below 12/255, where plug-and-play runs and a prior must stay close to
            # the identity. The shipped prior is this config's first epoch followed by three
            # at 7e-4 (README, "The shipped denoiser"): at 2e-3, Adam diverged at step 7,143.
            "data.patch": 64,
            "data.patches_per_image": 1,
            "data.deadleaves_images": 20_000,
            "train.batch_size": 8,
            "denoiser.sigma_max": 50 / 255,
            "denoiser.sigma_power": 2.0,
            "train.epochs": 1,
            "train.lr": 2e-3,
            "train.decay_epochs": 1,
            "train.decay_rate": 1.0,
            "train.log_every_steps": 50,
            "train.checkpoint_every_steps": 500,
        }
    return common | {
        "model.init": CPU_DENOISER,
        "data.patch": 24 if kind == "sr" else 48,
        "data.deadleaves_images": 2_000,  # with the samples at 70:30: 2,858 patches per epoch
        "train.batch_size": 4,
        "train.epochs": 1,
        "train.decay_epochs": 1,
        "train.log_every_steps": 10,
        "train.checkpoint_every_steps": 100,
        "admm.max_iters": 20,
        "admm.backward_max_iters": 20,
        # The learned σ starts at plug-and-play's best level for this prior on the training
        # crops (suppa_jax.evaluation.PNP_SIGMA: 0.03 for sr2 and deblur).
        "admm.sigma": 0.03,
    }


def experiment(kind: str, scale: int = 1, *, cpu: bool = False) -> ConfigDict:
    """The paper's experiment ``kind`` (``"sr"`` with ``scale`` 2, 3 or 4, or ``"deblur"``).

    Method ``suppa`` (override ``method`` for the rivals), paper-size DRUNet from DPIR's weights,
    ``rho = 0.1·s²``, batch 16, 75 epochs. Super-resolution: bicubic without antialiasing, no
    noise, 48-pixel LR patches of DIV2K. Deblurring: Gaussian blur (σ 2, 11×11), noise 0.01,
    256-pixel patches of the Waterloo Exploration Database, validated on BSDS500 ``val``. With
    ``cpu``, :func:`cpu_overrides` applies. Returns a locked ``ConfigDict``.
    """
    if kind == "sr" and scale not in SR_SCALES:
        raise ValueError(f"super-resolution scale must be one of {SR_SCALES}, got {scale!r}")
    if kind == "deblur" and scale != 1:
        raise ValueError(f"deblurring has scale 1, got {scale!r}")
    if kind not in ("sr", "deblur"):
        raise ValueError(f"unknown experiment kind {kind!r}; use 'sr' or 'deblur'")
    config = base()
    config.task.kind = kind
    config.task.scale = scale
    config.task.kernel = KERNELS[kind][0]
    config.admm.rho = 0.1 * scale**2  # suppa_jax.admm.reference_rho: 0.4, 0.9, 1.6; 0.1
    if kind == "deblur":
        config.task.noise_sigma = 0.01
        config.data.patch = 256
        config.data.source = WATERLOO
        config.data.train_split = "pristine_images"
        config.data.eval_source = BSDS500
        config.data.eval_split = "val"
    return _finish(config, kind, cpu)


def denoiser(*, cpu: bool = False) -> ConfigDict:
    """Pre-training of DRUNet as a Gaussian denoiser over ``σ ∈ [0, 50/255]`` (DPIR's range).

    Method ``denoiser``, task ``denoise`` (``A = I``), random init, no quantisation, 128-pixel
    patches of DIV2K, 16 per image per epoch; validated at ``σ = 25/255``. The paper-size
    config is there to retrain DPIR's prior; the paper itself started from DPIR's weights.
    With ``cpu``, trains the CPU variants' DRUNet (:data:`CPU_DENOISER`) from scratch on dead
    leaves and the bundled images. Returns a locked ``ConfigDict``.
    """
    config = base()
    config.method = "denoiser"
    config.task.kind = "denoise"
    config.task.scale = 1
    config.task.kernel = KERNELS["denoise"][0]
    config.task.noise_sigma = 25 / 255
    config.task.quantize = False
    config.admm.rho = 0.1  # 0.1·s² with s = 1; unused by the denoiser
    config.model.init = ""
    config.data.patch = 128
    config.data.patches_per_image = 16
    config.train.epochs = 100
    config.train.decay_epochs = 25
    config.train.decay_rate = 0.5
    return _finish(config, "denoise", cpu)


def _finish(config: ConfigDict, kind: str, cpu: bool) -> ConfigDict:
    config.lock()
    if cpu:
        apply_overrides(config, cpu_overrides(kind))
    return config


# ------------------------------------------------------------------------------- validation


def flatten(config: ConfigDict | Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train.lr": 1e-4, ...}``: every leaf of a (nested) config by its dotted path."""
    return dict(_leaves(config, prefix))


def _leaves(config: ConfigDict | Mapping[str, Any], prefix: str) -> Iterator[tuple[str, Any]]:
    for key in sorted(config.keys()):
        value = config[key]
        if isinstance(value, Mapping | ConfigDict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _fail(path: str, requirement: str, value: Any) -> ValueError:
    return ValueError(f"config.{path} must {requirement}, got {value!r}")


def _type_matches(value: Any, reference: Any) -> bool:
    """``int`` is a ``float``; ``bool`` is not an ``int``; tuples compare element-wise."""
    if isinstance(reference, bool):
        return isinstance(value, bool)
    if isinstance(reference, int):
        return isinstance(value, int | np.integer) and not isinstance(value, bool)
    if isinstance(reference, float):
        return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
            value, bool
        )
    if isinstance(reference, tuple):
        return isinstance(value, tuple | list) and all(
            _type_matches(v, reference[0]) for v in value
        )
    return isinstance(value, type(reference))


def _check_schema(values: dict[str, Any]) -> None:
    """The config has exactly the fields of :func:`base`, each of its type, floats finite."""
    schema = flatten(base())
    for path in values:
        if path not in schema:
            section = path.rpartition(".")[0]
            known = [p.rpartition(".")[2] for p in schema if p.rpartition(".")[0] == section]
            where = f"config.{section}" if section else "config"
            raise ValueError(
                f"config.{path} is not a known field; those of {where}: {', '.join(known)}"
            )
    for path, reference in schema.items():
        if path not in values:
            raise ValueError(f"config.{path} is missing")
        value = values[path]
        if not _type_matches(value, reference):
            kind = type(reference).__name__
            if isinstance(reference, tuple):
                kind = f"tuple of {type(reference[0]).__name__}"
            raise _fail(path, f"be of type {kind}", value)
        if isinstance(reference, float) and not math.isfinite(value):
            raise _fail(path, "be finite", value)


_Rule = tuple[str, Callable[[Any], bool], str]

_NOISE_SCALE = "(noise levels are on the [0, 1] scale: 25/255, not 25)"

# (path, predicate, requirement): the per-field range checks.
_RULES: tuple[_Rule, ...] = (
    ("method", lambda v: v in METHODS, f"be one of {list(METHODS)}"),
    ("task.kind", lambda v: v in TASK_KINDS, f"be one of {list(TASK_KINDS)}"),
    ("task.blur_sigma", lambda v: v > 0, "be > 0"),
    ("task.blur_size", lambda v: v >= 1, "be >= 1"),
    ("task.noise_sigma", lambda v: 0 <= v <= 1, f"be in [0, 1] {_NOISE_SCALE}"),
    ("admm.rho", lambda v: v > 0, "be > 0"),
    ("admm.sigma", lambda v: 0 < v <= 1, f"be in (0, 1] {_NOISE_SCALE}"),
    ("admm.max_iters", lambda v: v >= 1, "be >= 1"),
    ("admm.tol", lambda v: v > 0, "be > 0"),
    ("admm.unrolled_iters", lambda v: v >= 1, "be >= 1"),
    ("admm.lam", lambda v: v >= 0, "be >= 0"),
    ("admm.random_states", lambda v: v >= 1, "be >= 1"),
    ("admm.backward_max_iters", lambda v: v >= 1, "be >= 1"),
    ("admm.backward_tol", lambda v: v > 0, "be > 0"),
    ("admm.anderson_memory", lambda v: v >= 0, "be >= 0 (0: no Anderson acceleration)"),
    ("denoiser.sigma_min", lambda v: 0 <= v <= 1, f"be in [0, 1] {_NOISE_SCALE}"),
    ("denoiser.sigma_max", lambda v: 0 < v <= 1, f"be in (0, 1] {_NOISE_SCALE}"),
    ("denoiser.sigma_power", lambda v: v > 0, "be > 0 (1: uniform noise levels)"),
    ("model.widths", lambda v: len(v) == 4 and min(v) >= 1, "be 4 positive channel counts"),
    ("model.num_blocks", lambda v: v >= 1, "be >= 1"),
    (
        "model.compute_dtype",
        lambda v: v in drunet.COMPUTE_DTYPES,
        f"be one of {list(drunet.COMPUTE_DTYPES)}",
    ),
    (
        "model.init",
        lambda v: v == "" or v.lower().endswith(_PARAMS_SUFFIXES),
        f"be '' (random init) or a params file ending in {' or '.join(_PARAMS_SUFFIXES)}",
    ),
    ("data.feature", lambda v: v != "", "be a TFDS image feature name"),
    ("data.patch", lambda v: v >= 1, "be >= 1"),
    ("data.patches_per_image", lambda v: v >= 1, "be >= 1"),
    ("data.deadleaves_images", lambda v: v >= 1, "be >= 1"),
    ("data.deadleaves_size", lambda v: v >= 0, "be >= 0 (0: the HR patch, patch·scale)"),
    ("data.seed", lambda v: v >= 0, "be >= 0"),
    ("data.worker_count", lambda v: v >= 0, "be >= 0"),
    ("data.max_eval_images", lambda v: v >= 0, "be >= 0 (0: all)"),
    ("data.eval_crop", lambda v: v >= 0, "be >= 0 (0: full images)"),
    ("train.epochs", lambda v: v >= 1, "be >= 1"),
    ("train.batch_size", lambda v: v >= 1, "be >= 1"),
    ("train.lr", lambda v: v > 0, "be > 0"),
    ("train.scalar_lr", lambda v: v > 0, "be > 0"),
    ("train.admm_lr", lambda v: v > 0, "be > 0"),
    ("train.decay_epochs", lambda v: v >= 1, "be >= 1"),
    ("train.decay_rate", lambda v: 0 < v <= 1, "be in (0, 1] (1: no decay)"),
    ("train.seed", lambda v: v >= 0, "be >= 0"),
    ("train.log_every_steps", lambda v: v >= 1, "be >= 1"),
    ("train.checkpoint_every_steps", lambda v: v >= 1, "be >= 1"),
    ("train.eval_every_epochs", lambda v: v >= 1, "be >= 1"),
    ("train.keep_checkpoints", lambda v: v >= 1, "be >= 1"),
    ("parallel.num_processes", lambda v: v >= 0, "be >= 0 (0: from the environment)"),
    ("parallel.process_id", lambda v: v >= -1, "be >= 0, or -1 (from the environment)"),
    (
        "parallel.coordinator_address",
        lambda v: v == "" or re.fullmatch(r"[^\s:]+:\d+", v) is not None,
        "be 'host:port' or '' (from the environment)",
    ),
)


def _check_task(values: dict[str, Any]) -> None:
    kind, scale, kernel = values["task.kind"], values["task.scale"], values["task.kernel"]
    if kind == "sr" and scale not in SR_SCALES:
        raise _fail("task.scale", f"be one of {list(SR_SCALES)} for kind 'sr'", scale)
    if kind != "sr" and scale != 1:
        raise _fail("task.scale", f"be 1 for kind {kind!r}", scale)
    if kernel not in KERNELS[kind]:
        raise _fail("task.kernel", f"be one of {list(KERNELS[kind])} for kind {kind!r}", kernel)
    if (values["method"] == "denoiser") != (kind == "denoise"):
        raise ValueError(
            f"config.method {values['method']!r} does not fit config.task.kind {kind!r}: "
            "method 'denoiser' trains on kind 'denoise', the other methods on 'sr' or 'deblur'"
        )


def _check_model(values: dict[str, Any]) -> None:
    if values["model.init"] == "" and values["method"] != "denoiser":
        raise _fail(
            "model.init",
            f"name pre-trained denoiser weights for method {values['method']!r} ('' = random "
            "init is for method 'denoiser' only)",
            "",
        )
    if values["denoiser.sigma_min"] > values["denoiser.sigma_max"]:
        raise _fail(
            "denoiser.sigma_min",
            f"be <= config.denoiser.sigma_max ({values['denoiser.sigma_max']!r})",
            values["denoiser.sigma_min"],
        )


def _check_source(source_key: str, source: str, split_key: str, split: str) -> None:
    from suppa_jax import data  # here: it imports grain and scikit-image

    try:
        entries = data.parse_mixture(source)
    except ValueError as err:
        raise _fail(source_key, f"be {data.SOURCE_FORMS} ({err})", source) from None
    for _, entry in entries:
        kind, colon, location = entry.partition(":")
        bare = kind in ("samples", "deadleaves") and not colon
        if not bare and not (kind in ("folder", "tfds") and location):
            raise _fail(source_key, f"be {data.SOURCE_FORMS}", source)
        if kind == "samples" and split not in data.SAMPLE_SPLITS:
            requirement = f"be one of {list(data.SAMPLE_SPLITS)} for source 'samples'"
            raise _fail(split_key, requirement, split)
        if kind == "tfds" and not split:
            raise _fail(split_key, "name a TFDS split (e.g. 'train', 'validation')", split)


def _check_data(values: dict[str, Any]) -> None:
    _check_source(
        "data.source", values["data.source"], "data.train_split", values["data.train_split"]
    )
    eval_key = "data.eval_source" if values["data.eval_source"] else "data.source"
    _check_source(eval_key, values[eval_key], "data.eval_split", values["data.eval_split"])
    patch, scale = values["data.patch"], values["task.scale"]
    leaves = values["data.deadleaves_size"]
    if leaves and leaves < patch * scale and "deadleaves" in values["data.source"]:
        raise _fail(
            "data.deadleaves_size",
            f"be 0 or at least the HR patch patch·scale = {patch * scale}",
            leaves,
        )
    if (patch * scale) % PATCH_MULTIPLE:
        raise _fail(
            "data.patch",
            f"give an HR patch patch·scale = {patch}·{scale} = {patch * scale} that is a multiple "
            f"of {PATCH_MULTIPLE} (DRUNet's three stride-2 levels)",
            patch,
        )


def _check_parallel(values: dict[str, Any]) -> None:
    processes, process_id = values["parallel.num_processes"], values["parallel.process_id"]
    if processes and process_id >= processes:
        requirement = f"be < config.parallel.num_processes ({processes})"
        raise _fail("parallel.process_id", requirement, process_id)
    if not values["parallel.multi_host"]:
        for path, unset in (
            ("parallel.coordinator_address", ""),
            ("parallel.num_processes", 0),
            ("parallel.process_id", -1),
        ):
            if values[path] != unset:
                raise _fail(path, f"stay {unset!r} unless config.parallel.multi_host", values[path])


def validate(config: ConfigDict | Mapping[str, Any]) -> None:
    """Check a whole config at start-up; raise ``ValueError`` naming the field and its value.

    Checks: exactly the fields of :func:`base` with their types (finite floats); the method, the
    task kind and its scale (2, 3, 4 for ``sr``, else 1) and kernel; method ``denoiser`` with
    kind ``denoise`` and only then; positive learning rates, ``rho``, tolerances, iteration
    counts, sizes and epochs; noise levels in [0, 1]; ``decay_rate`` in (0, 1]; pre-trained
    weights unless pre-training the denoiser; the data sources' forms (and the sample splits);
    an HR patch ``patch·scale`` that is a multiple of 8; the multi-host fields. It does not touch
    the file system (weights and image folders are checked where they are read) and does not
    know the device count (see :func:`check_batch_divisible`).
    """
    values = flatten(config)
    _check_schema(values)
    for path, ok, requirement in _RULES:
        if not ok(values[path]):
            raise _fail(path, requirement, values[path])
    _check_task(values)
    _check_model(values)
    _check_data(values)
    _check_parallel(values)


def check_batch_divisible(config: ConfigDict | Mapping[str, Any], device_count: int) -> None:
    """Raise unless the global ``train.batch_size`` splits evenly over ``device_count`` devices
    (``jax.device_count()``: all devices of all processes)."""
    batch_size = config["train"]["batch_size"]
    if batch_size % device_count:
        raise _fail(
            "train.batch_size",
            f"be divisible by the number of devices ({device_count})",
            batch_size,
        )
