"""Train unrolled ADMM with SUPPA or a rival method, or pre-train the DRUNet denoiser.

    python train.py --config=configs/sr_x2.py --workdir=runs/sr2_suppa
    python train.py --config=configs/sr_x2_cpu.py --workdir=runs/demo --config.method=deq
    python train.py --config=configs/denoiser_cpu.py --workdir=runs/denoiser

Any config field can be overridden (``--config.train.lr=1e-5``,
``--config.model.widths='(16, 32, 64, 64)'``, ``--config.data.augment=False``). Running the
same command again resumes from the newest usable checkpoint in ``--workdir`` (one that cannot
be read is set aside with a warning), with the same config: another is refused unless
``--allow_config_change``. Ctrl-C / SIGTERM save and exit cleanly. See
``suppa_jax.training.loop`` for what is written where, and ``suppa_jax.cli`` for the
conventions every entry point shares.
"""

from __future__ import annotations

from collections.abc import Sequence

from suppa_jax import cli, use_fast_xla_cpu_flags
from suppa_jax import config as config_lib
from suppa_jax.training import loop


def _parser():
    parser = cli.parser("train.py", __doc__)
    parser.add_argument("--config", required=True, help="experiment config file (configs/*.py)")
    parser.add_argument(
        "--workdir", required=True, help="checkpoints and logs (a run there is resumed)"
    )
    parser.add_argument(
        "--allow_config_change",
        action="store_true",
        help="resume the run in --workdir although the config differs from the one it was "
        "saved with (otherwise refused, listing the fields; the number of epochs and the "
        "logging and checkpoint intervals may always change)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``train.py``: returns 0, or exits with status 2 and a one-line error."""
    parser = _parser()
    args, overrides = parser.parse_known_args(argv)
    cli.quiet_logs(args.verbosity)
    with cli.reporting_errors(parser, args.verbosity):
        config = cli.load_config(args.config)
        config_lib.apply_overrides(config, cli.config_overrides(overrides, config))
        loop.initialize_distributed(config)
        summary = loop.train_and_evaluate(
            config, args.workdir, allow_config_change=args.allow_config_change
        )
    print(
        "train.py: step {step}; validation PSNR {start} → {end}".format(
            step=summary["step"],
            start=_psnr(summary.get("initial")),
            end=_psnr(summary.get("final")),
        )
    )
    return 0


def _psnr(values: dict | None) -> str:
    return "n/a" if values is None else f"{values['val_psnr']:.2f} dB"


if __name__ == "__main__":
    use_fast_xla_cpu_flags()
    raise SystemExit(main())
