"""Train unrolled ADMM with SUPPA or a rival method, or pre-train the DRUNet denoiser.

    python train.py --config=configs/sr_x2.py --workdir=runs/sr2_suppa
    python train.py --config=configs/sr_x2_cpu.py --workdir=runs/demo --config.method=deq
    python train.py --config=configs/denoiser_cpu.py --workdir=runs/denoiser

Any config field can be overridden (``--config.train.lr=1e-5``). Running the same command again
resumes from the latest checkpoint in ``--workdir``. Ctrl-C / SIGTERM save and exit cleanly.
See ``suppa_jax.training.loop`` for what is written where.
"""

import sys

from absl import app, flags, logging
from ml_collections import config_flags

from suppa_jax import use_fast_xla_cpu_flags
from suppa_jax.training import loop

config_flags.DEFINE_config_file("config", None, "Experiment config file.", lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for checkpoints and logs (resumed if present).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # orbax logs every checkpoint step at INFO
    config = flags.FLAGS.config
    loop.initialize_distributed(config)
    try:
        summary = loop.train_and_evaluate(config, flags.FLAGS.workdir)
    except (ValueError, FileNotFoundError, FloatingPointError) as error:
        sys.exit(f"train.py: {error}")
    print(
        "train.py: step {step}; validation PSNR {start} → {end}".format(
            step=summary["step"],
            start=_psnr(summary.get("initial")),
            end=_psnr(summary.get("final")),
        )
    )


def _psnr(values: dict | None) -> str:
    return "n/a" if values is None else f"{values['val_psnr']:.2f} dB"


if __name__ == "__main__":
    use_fast_xla_cpu_flags()
    app.run(main)
