"""The task registry: every forward model the configs can name, and the named evaluation tasks.

A *task kind* (``config.task.kind``: ``"sr"``, ``"deblur"``, ``"demosaic"``, ``"inpaint"``,
``"denoise"``) is a factory of the task's physics from the ``config.task`` section (one operator,
or an :class:`~suppa_jax.physics.OperatorFamily` that draws one per example: the *random*
kernels), the kernels and scales it accepts, the defaults its experiments start from, and the
fields that define its measurements. A *named task*
(``"sr2"``, ``"sr3"``, ``"sr4"``, ``"deblur"``: what ``evaluate.py --task`` accepts) is a kind at
one scale with the paper's measurement settings, plus the stored weight ``μ`` of its Tikhonov
baseline, tuned on *training* images. (Plug-and-play's denoiser ``σ`` belongs to a denoiser, not
to a task: it is stored with the prior's weights, :class:`suppa_jax.models.weights.Prior`.)

A new forward model is its own module (a :class:`~suppa_jax.physics.base.LinearOperator`) plus
one :func:`register_kind` call; the config's validation, the builders, training and evaluation
find it here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from suppa_jax.physics import (
    BLUR_KINDS,
    PATTERNS,
    Blur,
    BlurFamily,
    LinearOperator,
    MaskFamily,
    Mosaic,
    OperatorFamily,
    PaddedBlur,
    SuperResolution,
    bicubic_kernel,
    gaussian_kernel,
)

__all__ = [
    "NamedTask",
    "TaskKind",
    "get_kind",
    "get_task",
    "kinds",
    "measurement_fields",
    "register_kind",
    "register_task",
    "task_names",
    "unregister_kind",
    "unregister_task",
]


#: The ``task.kernel`` names of bicubic downsampling (``task.bicubic_a`` is theirs).
_BICUBIC_KERNELS = ("bicubic", "bicubic_antialias")
#: The random blur kernels of deblurring: ``task.kernel`` → the kinds of ``BlurFamily`` drawn.
_RANDOM_BLURS = {
    "random": BLUR_KINDS,
    "random_gaussian": ("gaussian", "anisotropic"),
    "random_motion": ("motion",),
}


def measurement_fields(task: Any) -> dict[str, Any]:
    """The fields of a ``config.task`` section that define its measurements: kind, scale,
    kernel, noise and quantisation, and the kernel's own parameters only."""
    fields = {
        "kind": task.kind,
        "scale": task.scale,
        "kernel": task.kernel,
        "noise_sigma": task.noise_sigma,
        "quantize": task.quantize,
    }
    if task.kernel in _BICUBIC_KERNELS:
        fields["bicubic_a"] = task.bicubic_a
    elif task.kernel == "gaussian":
        fields.update(blur_sigma=task.blur_sigma, blur_size=task.blur_size)
    elif task.kernel in _RANDOM_BLURS:
        fields["blur_size"] = task.blur_size
        if task.kernel != "random_motion":
            fields["blur_sigma_range"] = tuple(task.blur_sigma_range)
        if task.kernel != "random_gaussian":
            fields["motion_length_range"] = tuple(task.motion_length_range)
    elif task.kernel == "pixels":
        fields["mask_rate"] = task.mask_rate
    elif task.kernel == "boxes":
        fields.update(mask_boxes=task.mask_boxes, mask_box_size=task.mask_box_size)
    # Absent from runs made before the fields existed:
    if task.boundary != "circular":
        fields["boundary"] = task.boundary
    if task.noise_sigma_max > task.noise_sigma:
        fields["noise_sigma_max"] = task.noise_sigma_max
    return fields


@dataclasses.dataclass(frozen=True)
class TaskKind:
    """A forward model as the configs name it.

    ``physics(task)`` builds it from a ``config.task`` section: a
    :class:`~suppa_jax.physics.LinearOperator`, or for the kernels of ``random_kernels`` an
    :class:`~suppa_jax.physics.OperatorFamily` (an operator per example). ``kernels``: the
    accepted ``task.kernel`` values, the default first. ``scales``: the accepted ``task.scale``
    values. ``defaults``: ``config.task`` fields its experiments set (besides kind, scale and
    kernel). ``boundaries``: the accepted ``task.boundary`` values
    (:data:`suppa_jax.physics.BOUNDARIES`; random kernels are circular).
    """

    name: str
    physics: Callable[[Any], LinearOperator | OperatorFamily]
    kernels: tuple[str, ...]
    scales: tuple[int, ...] = (1,)
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    boundaries: tuple[str, ...] = ("circular",)
    random_kernels: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class NamedTask:
    """A kind at one scale with its experiment's measurement settings (``settings``: the
    ``config.task`` fields it sets beyond them), and its Tikhonov baseline's stored weight
    (``None``: not stored; evaluation then tunes it)."""

    name: str
    kind: str
    scale: int
    tikhonov_mu: float | None = None
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def _padded(task: Any, kernel: np.ndarray) -> LinearOperator:
    """The blur of ``task`` with its non-circular ``boundary`` (a CG data step)."""
    return PaddedBlur(
        kernel,
        task.boundary,
        task.scale,
        a=task.bicubic_a,
        cg_tol=task.cg_tol,
        cg_max_iters=task.cg_max_iters,
    )


def _sr_operator(task: Any) -> LinearOperator:
    if task.kernel in _BICUBIC_KERNELS:
        antialias = task.kernel == "bicubic_antialias"
        kernel = bicubic_kernel(task.scale, task.bicubic_a, antialias=antialias)
    else:
        kernel = gaussian_kernel(task.blur_sigma, task.blur_size)
    if task.boundary == "circular":
        return SuperResolution(task.scale, kernel, a=task.bicubic_a)
    return _padded(task, kernel)


def _deblur_operator(task: Any) -> LinearOperator | OperatorFamily:
    if task.kernel in _RANDOM_BLURS:
        return BlurFamily(
            _RANDOM_BLURS[task.kernel],
            sigma_range=tuple(task.blur_sigma_range),
            length_range=tuple(task.motion_length_range),
            size=task.blur_size,
            boundary=task.boundary,
            cg_tol=task.cg_tol,
            cg_max_iters=task.cg_max_iters,
        )
    kernel = gaussian_kernel(task.blur_sigma, task.blur_size)
    return Blur(kernel) if task.boundary == "circular" else _padded(task, kernel)


def _inpaint_masks(task: Any) -> OperatorFamily:
    return MaskFamily(
        task.kernel, rate=task.mask_rate, boxes=task.mask_boxes, box_size=task.mask_box_size
    )


def _mosaic_operator(task: Any) -> LinearOperator:
    return Mosaic(task.kernel, cg_tol=task.cg_tol, cg_max_iters=task.cg_max_iters)


def _identity_operator(task: Any) -> LinearOperator:
    del task
    return Blur(np.ones((1, 1)))


_KINDS: dict[str, TaskKind] = {}
_TASKS: dict[str, NamedTask] = {}


def register_kind(kind: TaskKind) -> TaskKind:
    """Add a task kind (an existing name is an error); returns it."""
    if kind.name in _KINDS:
        raise ValueError(f"a task kind named {kind.name!r} is already registered")
    _KINDS[kind.name] = kind
    return kind


def unregister_kind(name: str) -> None:
    """Remove the task kind ``name`` (for tests and interactive sessions)."""
    _KINDS.pop(name)


def kinds() -> tuple[str, ...]:
    """The registered task kinds, in registration order."""
    return tuple(_KINDS)


def get_kind(name: str) -> TaskKind:
    """The task kind ``name``; a ``ValueError`` lists the known ones."""
    if name not in _KINDS:
        raise ValueError(f"unknown task kind {name!r}; use one of {list(_KINDS)}")
    return _KINDS[name]


def register_task(task: NamedTask) -> NamedTask:
    """Add a named task of a registered kind (an existing name is an error); returns it."""
    if task.name in _TASKS:
        raise ValueError(f"a task named {task.name!r} is already registered")
    if task.scale not in get_kind(task.kind).scales:
        raise ValueError(f"task {task.name!r}: scale {task.scale} is not one of kind {task.kind!r}")
    _TASKS[task.name] = task
    return task


def unregister_task(name: str) -> None:
    """Remove the named task ``name``."""
    _TASKS.pop(name)


def task_names() -> tuple[str, ...]:
    """The named tasks, in registration order."""
    return tuple(_TASKS)


def get_task(name: str) -> NamedTask:
    """The named task ``name``; a ``ValueError`` lists the known ones."""
    if name not in _TASKS:
        raise ValueError(f"unknown task {name!r}; use one of {', '.join(_TASKS)}")
    return _TASKS[name]


# Super-resolution by bicubic downsampling without antialiasing (the paper), or a Gaussian PSF
# then decimation; deblurring with the paper's Gaussian (σ 2, 11×11) and noise 0.01; the
# identity, on which the prior is pre-trained as a denoiser (its noise level is the validation
# level; training draws them from config.denoiser).
# Non-circular boundaries (physics.PaddedBlur): "valid" for deblurring only, where a measurement
# of any size has one image size behind it (with decimation, H − k + 1 would have to divide by s).
register_kind(
    TaskKind(
        "sr",
        _sr_operator,
        kernels=("bicubic", "gaussian", "bicubic_antialias"),
        scales=(2, 3, 4),
        boundaries=("circular", "reflect", "zero"),
    )
)
register_kind(
    TaskKind(
        "deblur",
        _deblur_operator,
        ("gaussian", *_RANDOM_BLURS),
        defaults={"noise_sigma": 0.01},
        boundaries=("circular", "valid", "reflect", "zero"),
        random_kernels=tuple(_RANDOM_BLURS),
    )
)
# Bayer demosaicing; task.kernel is the pattern (physics.PATTERNS), noise-free by default.
register_kind(TaskKind("demosaic", _mosaic_operator, kernels=PATTERNS))
# Inpainting with a mask per example (physics.MaskFamily): task.kernel is the mask's kind.
register_kind(
    TaskKind("inpaint", _inpaint_masks, ("pixels", "boxes"), random_kernels=("pixels", "boxes"))
)
register_kind(
    TaskKind(
        "denoise",
        _identity_operator,
        ("identity",),
        defaults={"noise_sigma": 25 / 255, "quantize": False},
    )
)

# tikhonov_mu: the gradient-penalty weight of suppa_jax.classical.tikhonov with the best mean
# PSNR of classical.MU_GRID on 192×192 centre crops of the 13 *training* sample images
# (suppa_jax.evaluation.tune_tikhonov_mu). There: deblur 29.93 dB (y: 27.56). For noise-free
# super-resolution the PSNR rises as μ falls and flattens below 1e-3 (sr2 34.68, sr3 29.21, sr4
# 27.97 dB), under bicubic: a quadratic prior cannot undo the aliasing that the interpolation
# kernel hides.
register_task(NamedTask("sr2", "sr", 2, tikhonov_mu=1e-4))
register_task(NamedTask("sr3", "sr", 3, tikhonov_mu=1e-4))
register_task(NamedTask("sr4", "sr", 4, tikhonov_mu=1e-4))
# The degradation of the published SR tables: MATLAB's imresize, bicubic (a = −0.5) with
# antialiasing (physics.bicubic_kernel(s, a, antialias=True)), still circulant with an exact step.
# Tikhonov there peaks inside the grid (35.05, 31.82, 29.86 dB on the training crops): the
# antialiasing filter leaves less aliasing than the paper's operator for a gradient prior to undo.
IMRESIZE = {"kernel": "bicubic_antialias", "bicubic_a": -0.5}
register_task(NamedTask("sr2_imresize", "sr", 2, tikhonov_mu=0.00316228, settings=IMRESIZE))
register_task(NamedTask("sr3_imresize", "sr", 3, tikhonov_mu=0.001, settings=IMRESIZE))
register_task(NamedTask("sr4_imresize", "sr", 4, tikhonov_mu=0.001, settings=IMRESIZE))
register_task(NamedTask("deblur", "deblur", 1, tikhonov_mu=0.03162278))
# demosaic: the best μ is the grid's smallest (33.65 dB on the training crops, and still rising as
# μ falls): with every sensed value kept and no noise, the least smoothing does best.
register_task(NamedTask("demosaic", "demosaic", 1, tikhonov_mu=1e-4))
# The paper's deblurring as a camera records it: only the pixels the whole kernel covers
# (physics.PaddedBlur, boundary "valid"; data steps by conjugate gradients).
register_task(
    NamedTask("deblur_valid", "deblur", 1, tikhonov_mu=0.03162278, settings={"boundary": "valid"})
)
# Inpainting, each image with its own mask drawn from its seed (physics.MaskFamily): 70% of the
# pixels missing at random, or three missing boxes of sides up to a quarter of the image's.
# Tikhonov there (training crops): 31.57 dB (pixels), 33.58 dB (boxes).
register_task(
    NamedTask("inpaint_pixels", "inpaint", 1, tikhonov_mu=0.00316228, settings={"kernel": "pixels"})
)
register_task(
    NamedTask("inpaint_boxes", "inpaint", 1, tikhonov_mu=0.03162278, settings={"kernel": "boxes"})
)
# Deblurring over a family: each image blurred by its own kernel (physics.BlurFamily: Gaussian,
# anisotropic Gaussian and motion kernels, 25×25, σ in [0.5, 3], lengths 5 to 15 pixels), noise
# 0.01; and a fixed Gaussian outside that range (σ 4) for models trained on the family.
# Tikhonov there: 30.78 and 27.13 dB.
RANDOM_BLUR = {"kernel": "random", "blur_size": 25}
register_task(NamedTask("deblur_random", "deblur", 1, tikhonov_mu=0.03162278, settings=RANDOM_BLUR))
WIDE_BLUR = {"blur_sigma": 4.0, "blur_size": 25}
register_task(NamedTask("deblur_wide", "deblur", 1, tikhonov_mu=0.03162278, settings=WIDE_BLUR))
