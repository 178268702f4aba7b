"""Convert a PyTorch DRUNet state dict (DPIR's ``drunet_color.pth`` or ``drunet_gray.pth``
layout), a params file or a ``train.py`` workdir's denoiser (any architecture) to a params file.

Usage::

    python -m suppa_jax.convert drunet_color.pth drunet_color.msgpack
    python -m suppa_jax.convert runs/denoiser denoiser.msgpack     # a train.py workdir
    python -m suppa_jax.convert drunet_color.pth drunet.msgpack --pnp_sigma=sr2=0.02,deblur=0.03


The input is read with ``torch.load(..., map_location="cpu", weights_only=True)``; it may be a
bare state dict or one nested under a ``state_dict`` or ``params`` key. The architecture
(widths, blocks, channels) is inferred from the tensor shapes; a workdir's is its config's. The
output is the
self-describing msgpack file of :func:`suppa_jax.models.weights.save_params`, read back with
:func:`suppa_jax.models.weights.load_params`. A ``train.py`` workdir as input exports the
denoiser of its best validation checkpoint. ``--pnp_sigma`` records the plug-and-play noise level
tuned for these weights per named task (``evaluate.py --pnp_sigma=tune`` measures it on the
training images); ``restore.py`` and ``evaluate.py`` then use it by default. A msgpack input keeps
the levels it records unless ``--pnp_sigma`` replaces them. Errors name the file or key and exit
with status 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from suppa_jax import cli, tasks
from suppa_jax.evaluation.checkpoints import run_config, workdir_prior
from suppa_jax.models import registry
from suppa_jax.models.weights import Prior, count_params, load_prior, save_params
from suppa_jax.training.checkpoints import best_trainable
from suppa_jax.xla import use_fast_xla_cpu_flags


def _best_denoiser(workdir: str) -> Prior:
    """The denoiser of a workdir's best checkpoint, its architecture from the run's config."""
    best = best_trainable(workdir)
    return workdir_prior(Path(workdir), best, run_config(Path(workdir), best.config))


def parse_pnp_sigma(value: str) -> dict[str, float]:
    """``"sr2=0.03,deblur=0.03"`` → ``{"sr2": 0.03, "deblur": 0.03}`` (named tasks only)."""
    levels = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        task, _, number = item.partition("=")
        if task not in tasks.task_names():
            known = ", ".join(tasks.task_names())
            raise ValueError(f"--pnp_sigma: {task!r} is not a named task (one of {known})")
        try:
            levels[task] = float(number)
        except ValueError:
            raise ValueError(f"--pnp_sigma: {item!r} is not TASK=SIGMA") from None
    return levels


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns 0, or exits with status 2 and a one-line error."""
    parser = cli.parser(
        "python -m suppa_jax.convert",
        "Convert a PyTorch DRUNet state dict (.pth), or the best denoiser of a train.py workdir, "
        "to a suppa_jax params file.",
    )
    parser.add_argument(
        "input", help="PyTorch state dict (e.g. drunet_color.pth) or a train.py workdir"
    )
    parser.add_argument("output", help="params file to write, e.g. drunet_color.msgpack")
    parser.add_argument(
        "--pnp_sigma",
        default="",
        help="the PnP noise level tuned for these weights per named task: sr2=0.03,deblur=0.03",
    )
    args = parser.parse_args(argv)
    cli.quiet_logs(args.verbosity)
    with cli.reporting_errors(parser, args.verbosity):
        pnp_sigma = parse_pnp_sigma(args.pnp_sigma)
        prior = _best_denoiser(args.input) if Path(args.input).is_dir() else load_prior(args.input)
        pnp_sigma = pnp_sigma or dict(prior.pnp_sigma)
        try:
            save_params(args.output, prior.params, pnp_sigma, model=prior.model)
        except OSError as err:
            raise ValueError(f"{args.output}: cannot write ({err.strerror or err})") from err
    print(
        f"{args.input} -> {args.output}: {registry.describe(prior.model)}, "
        f"{count_params(prior.params):,} parameters" + (f"; PnP σ {pnp_sigma}" if pnp_sigma else "")
    )
    return 0


if __name__ == "__main__":
    use_fast_xla_cpu_flags()
    raise SystemExit(main())
