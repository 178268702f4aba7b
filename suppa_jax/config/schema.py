"""The experiment schema: every field of every config, with its default and its meaning.

Conventions: noise levels are standard deviations on the [0, 1] image scale (25/255, not 25).
``data.patch`` is the *LR* patch side: training crops are ``patch·scale`` HR pixels (48 LR
pixels in the paper's super-resolution; 256 in its deblurring, where the scale is 1, as for
denoising). ``admm.rho`` is the ADMM weight in the convention ``½‖y − Ax‖² + ρ/2‖x − z‖²``,
``0.1·s²`` (:func:`suppa_jax.solvers.admm.reference_rho`). An "epoch" is
``data.patches_per_image`` random patches from each training image (1: the paper's epoch).
Fields that mean "none" use sentinels of their type rather than ``None`` (``""``, ``0``,
``-1``), so that command-line overrides keep their type. The ``admm`` section holds the
settings of every method; each method's registry entry reads its own
(:class:`suppa_jax.methods.MethodSpec`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import ml_collections

__all__ = ["DIV2K", "DPIR_DENOISER", "ConfigDict", "apply_overrides", "base", "flatten"]

ConfigDict = ml_collections.ConfigDict


#: DIV2K from TFDS. Only the ``hr`` feature is read (measurements are made on the fly), so one
#: TFDS config serves every scale and is prepared once.
DIV2K = "tfds:div2k/bicubic_x2"
#: DPIR's public ``drunet_color.pth`` converted with ``python -m suppa_jax.convert``: the
#: paper-size prior that the paper's experiments fine-tune.
DPIR_DENOISER = "weights/drunet_color.msgpack"
#: Where decoded training images are cached by default (``config.data.cache_dir``).
DECODED_CACHE = "~/.cache/suppa_jax/decoded"


def base() -> ConfigDict:
    """The full schema with its defaults (unlocked): the paper's ×2 super-resolution with SUPPA.

    Every config has exactly these fields; :func:`validate` rejects others and wrong types.
    """
    config = ConfigDict()
    config.method = "suppa"
    config.task = ConfigDict(
        {
            "kind": "sr",  # sr | deblur | demosaic | inpaint | denoise
            "scale": 2,  # 2, 3, 4 for sr; 1 otherwise
            # sr: bicubic (no antialiasing, the paper), gaussian, or bicubic_antialias (MATLAB's
            # imresize with bicubic_a = -0.5); deblur: gaussian, or a kernel drawn per example
            # (physics.BlurFamily, blur_size × blur_size): random (Gaussian, anisotropic and
            # motion kernels), random_gaussian (the first two), random_motion; demosaic: the
            # Bayer pattern (rggb, grbg, gbrg, bggr); inpaint: the mask drawn per example,
            # pixels or boxes (physics.MaskFamily); denoise: identity
            "kernel": "bicubic",
            "bicubic_a": -0.75,  # Keys' a: -0.75 PyTorch/OpenCV, -0.5 MATLAB (no antialiasing)
            "blur_sigma": 2.0,  # Gaussian kernel std (pixels) and side; the paper's 11×11
            "blur_size": 11,
            # Random kernels: the Gaussians' std range, the motion trajectories' length range
            # (pixels).
            "blur_sigma_range": (0.5, 3.0),
            "motion_length_range": (5.0, 15.0),
            # Inpainting masks: the fraction of missing pixels (pixels); the number of missing
            # rectangles and their largest side, as a fraction of the image's (boxes).
            "mask_rate": 0.7,
            "mask_boxes": 3,
            "mask_box_size": 0.25,
            # What the blur sees past the image's edge: "circular" (the paper; closed-form data
            # step), or "valid" (deblur only), "reflect", "zero" (physics.PaddedBlur: data step
            # by conjugate gradients to cg_tol, at most cg_max_iters iterations).
            "boundary": "circular",
            "cg_tol": 1e-5,
            "cg_max_iters": 100,
            # Measurement noise std. For kind "denoise": the validation noise level (training
            # draws it from denoiser.sigma_min..sigma_max).
            "noise_sigma": 0.0,
            # > noise_sigma: training draws each example's noise level uniformly from
            # [noise_sigma, noise_sigma_max] (validation and evaluation use noise_sigma); 0: off.
            "noise_sigma_max": 0.0,
            "quantize": True,  # 8-bit measurements, as the paper's saved PNGs
        }
    )
    config.admm = ConfigDict(
        {
            "rho": 0.4,  # 0.1·s² (suppa_jax.solvers.admm.reference_rho); the rivals' learned init
            "sigma": 0.1,  # init of the learned denoiser noise level
            "max_iters": 50,  # forward cap and tolerance: suppa, deq, jfb, and evaluation
            "tol": 1e-3,
            "unrolled_iters": 6,  # K for unrolled and unrolled_remat
            "lam": 1.0,  # suppa: init of λ (raw, learned with train.scalar_lr)
            "random_states": 1,  # suppa: reservoir-sampled states besides the last one
            # suppa: its differentiable steps one after the other, each rematerialised (less
            # memory, one more denoiser forward per step) instead of as one vmapped batch.
            "sequential_steps": False,
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
            # The denoiser's architecture, a name of suppa_jax.models.registry ("drunet",
            # "dncnn"); each reads its own fields below and ignores the others.
            "name": "drunet",
            # Image channels: 3 = RGB; 1 = grayscale (the pipeline turns colour images into
            # their luma, ITU-R BT.601; DPIR's drunet_gray.pth is such a network).
            "channels": 3,
            "widths": (64, 128, 256, 512),  # drunet; paper size: 32,640,960 parameters
            "num_blocks": 4,  # drunet: residual blocks per stage
            # "" = random init (denoiser pre-training only); else a params file (.msgpack of
            # suppa_jax.convert or of a denoiser run) or a PyTorch state dict (.pth).
            "init": DPIR_DENOISER,
            # "float32" | "bfloat16": the network's arithmetic (weights, optimiser, FFT data
            # step and losses stay float32; models.with_compute_dtype).
            "compute_dtype": "float32",
            # drunet: a global skip out = U(x, σ) + γ·x (drunet.DRUNet.residual); DPIR's has none.
            "residual": False,
            "features": 64,  # dncnn: hidden channels
            "depth": 17,  # dncnn: convolutions
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
            "read_threads": 1,  # threads reading per process (2+: reads waiting on a disk)
            # Decoded folder/TFDS images, read a crop's rows at a time (suppa_jax.data.cache);
            # "" = decode every read.
            "cache_dir": DECODED_CACHE,
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
