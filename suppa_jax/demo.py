"""``make demo``: restore the held-out sample images with the shipped weights, on a CPU.

For super-resolution ×2 and Gaussian deblurring (the paper's tasks) and inpainting (70% of the
pixels missing, a mask per image drawn from its seed), the three held-out sample images
(``chelsea``, ``coffee``, ``rocket``: :data:`suppa_jax.data.SAMPLE_SPLITS` ``validation``,
never trained on) are degraded as in evaluation and restored, whole, by

* ``bicubic`` / ``initial(y)``: the starting estimate of ADMM;
* ``Tikhonov``: the classical ``argmin ½‖y − Ax‖² + μ/2‖∇x‖²`` in closed form, ``μ`` of
  :mod:`suppa_jax.tasks` (tuned on the training samples);
* ``PnP-ADMM (pre-trained)``: plug-and-play ADMM with the shipped DRUNet denoiser
  (``weights/drunet_cpu_denoiser.msgpack``, pre-trained by ``configs/denoiser_cpu.py``), run
  to convergence (at most 50 iterations, tolerance 1e-3) with the noise level stored in that
  file for the task (tuned on the training samples);
* ``DPIR-HQS (pre-trained)``: DPIR's plug-and-play HQS schedule with the same denoiser;
* every fine-tuned model listed in :data:`MODELS` for the task (shipped: SUPPA, fine-tuned on
  the CPU by ``benchmarks/reproduce.py``).

It prints the PSNR tables (measured now, on this machine) and writes the tables, the restored
images, a side-by-side grid and the PSNR-per-iteration curve of each task under
``results/demo/<task>/`` (see :mod:`suppa_jax.evaluation`).

    python -m suppa_jax.demo [--out results/demo]
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from suppa_jax import build, cli, evaluation, tasks
from suppa_jax.paths import WEIGHTS, resolve_path
from suppa_jax.xla import use_fast_xla_cpu_flags

#: The shipped pre-trained denoiser behind the plug-and-play rows.
DENOISER = WEIGHTS / "drunet_cpu_denoiser.msgpack"

#: The demo's tasks.
TASKS = ("sr2", "deblur", "inpaint_pixels")

#: Fine-tuned models shown beside the baselines, per task: ``train.py`` workdirs (their best
#: checkpoint) or params files, found by :func:`suppa_jax.paths.resolve_path`; one line adds
#: one. Shipped: SUPPA fine-tuned from the small denoiser by ``benchmarks/reproduce.py`` (the
#: workdir's ``config.json`` and ``best/``, with a relative ``model.init``).
MODELS: dict[str, tuple[str, ...]] = {
    "sr2": ("weights/suppa_sr2",),
    "deblur": ("weights/suppa_deblur",),
    "inpaint_pixels": ("weights/suppa_inpaint_pixels",),
}


def restorers(task: str) -> list[evaluation.Restorer]:
    """The rows of ``task``: the starting estimate, Tikhonov, PnP-ADMM and DPIR-HQS with
    :data:`DENOISER`, and the models of :data:`MODELS`."""
    task_cfg = evaluation.task_config(task)
    op = build.build_physics(task_cfg)
    prior = evaluation.load_prior(DENOISER)
    rows = [
        evaluation.initial_restorer(op),
        evaluation.tikhonov_restorer(tasks.get_task(task).tikhonov_mu),
        evaluation.pnp_restorer(prior.denoiser, op, sigma=prior.pnp_sigma[task]),
        evaluation.dpir_restorer(prior.denoiser, op, noise_sigma=task_cfg.noise_sigma),
    ]
    for checkpoint in MODELS.get(task, ()):
        rows.append(evaluation.load_model(str(resolve_path(checkpoint, "MODELS")), task).restorer)
    return rows


def run_task(task: str, out: Path) -> evaluation.Report:
    """Evaluate :func:`restorers` of ``task`` on the held-out samples; write under ``out``."""
    task_cfg = evaluation.task_config(task)
    rows = restorers(task)
    dataset = evaluation.parse_data("samples", "validation")
    start = time.perf_counter()
    results = evaluation.evaluate([dataset], rows, task_cfg, out=out)
    settings = {
        "denoiser": "weights/" + DENOISER.name,
        "tikhonov": dict(rows[1].info),
        "pnp": dict(rows[2].info),
        "models": list(MODELS.get(task, ())),
        "metrics": evaluation.METRICS_NOTE,
        "seconds": round(time.perf_counter() - start, 1),
    }
    scale = build.build_physics(task_cfg).scale
    report = evaluation.Report(task, scale, [r.label for r in rows], results, settings)
    evaluation.write_report(report, out)
    return report


def _gain(report: evaluation.Report, method: str) -> float:
    means = report.datasets[0].means
    return means[method]["psnr_rgb"] - means[report.methods[0]]["psnr_rgb"]


def _run(out: Path) -> None:
    """Restore the held-out samples for every task, print the tables, write under ``out``."""
    out.mkdir(parents=True, exist_ok=True)  # an unwritable --out fails now, not after an image
    start = time.perf_counter()
    print(
        "suppa_jax demo: restoring the 3 held-out sample images (chelsea, coffee, rocket) for "
        f"{', '.join(TASKS)} with weights/{DENOISER.name}.\n"
    )
    reports = []
    for task in TASKS:
        print(f"[{task}]")
        reports.append(run_task(task, out / task))
        print()
    for report in reports:
        print(evaluation.format_tables(report))
        for method in report.methods[1:]:
            print(f"{method} vs {report.methods[0]}: {_gain(report, method):+.2f} dB (RGB PSNR)")
        print()
    folders = ", ".join(f"{out / task}/" for task in TASKS)
    print(
        f"Tables, restored images, grids and PSNR-per-iteration curves: {folders} "
        f"[{time.perf_counter() - start:.0f} s]"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli.parser("python -m suppa_jax.demo", __doc__)
    parser.add_argument("--out", default="results/demo", help="output folder")
    args = parser.parse_args(argv)
    cli.quiet_logs(args.verbosity)
    with cli.reporting_errors(parser, args.verbosity):
        _run(Path(args.out))
    return 0


if __name__ == "__main__":
    use_fast_xla_cpu_flags()
    raise SystemExit(main())
