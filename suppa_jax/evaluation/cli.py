"""``evaluate.py``: evaluate a trained model (or a denoiser, as plug-and-play) beside the
baselines on one or more datasets, and write the report."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from suppa_jax import build, cli, tasks
from suppa_jax.evaluation.checkpoints import load_model, load_prior, resolve_path
from suppa_jax.evaluation.evaluator import Dataset, evaluate, parse_data
from suppa_jax.evaluation.report import METRICS_NOTE, Report, format_tables, slug, write_report
from suppa_jax.evaluation.restorers import (
    dpir_restorer,
    initial_restorer,
    pnp_restorer,
    tikhonov_restorer,
)
from suppa_jax.evaluation.tuning import parse_pnp_sigma, resolve_pnp_sigma, resolve_tikhonov_mu
from suppa_jax.tasks import measurement_fields

__all__ = ["main", "run"]


def _parser() -> argparse.ArgumentParser:
    parser = cli.parser(
        "evaluate.py",
        "Restore every image of one or more datasets with a trained model and the baselines "
        "(bicubic / initial(y), Tikhonov, plug-and-play ADMM and DPIR-HQS with the pre-trained "
        "denoiser); "
        "report PSNR (RGB, no crop), PSNR-Y (border = scale), SSIM and iterations.",
    )
    parser.add_argument(
        "--checkpoint",
        required=True,
        help="a train.py workdir (its best checkpoint) or a DRUNet params file (.msgpack, .pth): "
        "then the model is plug-and-play ADMM with it",
    )
    parser.add_argument(
        "--task",
        choices=tasks.task_names(),
        help="a named task; must be the run's (default: the run's own task, whatever its "
        "kernel, scale and noise level); needed with a params file",
    )
    parser.add_argument(
        "--data",
        default="samples",
        help="comma-separated datasets: 'samples' (held-out sample images), 'photos' (six "
        "held-out natural colour photos from installed packages), a folder or "
        "'folder:PATH', 'tfds:NAME' (default: samples)",
    )
    parser.add_argument(
        "--skip_bad_images",
        action="store_true",
        help="leave out (and list) a folder's unreadable or too small images instead of stopping",
    )
    parser.add_argument(
        "--split",
        help="sample or TFDS split (default: validation), or a sub-folder of a folder",
    )
    parser.add_argument(
        "--pretrained",
        help="the pre-trained denoiser of the PnP baseline (default: the run's config.model.init)",
    )
    parser.add_argument(
        "--no_pnp",
        action="store_true",
        help="leave out the baselines with a pre-trained denoiser (PnP-ADMM, DPIR-HQS)",
    )
    parser.add_argument(
        "--pnp_sigma",
        default="default",
        help="the PnP denoiser noise level: a number, 'default' (the level stored with the "
        "denoiser's weights for this task; tuned, as 'tune', when it stores none) or 'tune' "
        "(grid search on the training sample images)",
    )
    parser.add_argument("--max_iters", type=int, default=50, help="iteration cap (default 50)")
    parser.add_argument("--tol", type=float, default=1e-3, help="relative-change tolerance")
    parser.add_argument(
        "--max_images", type=int, default=0, help="images per dataset (default 0: all)"
    )
    parser.add_argument("--grid_images", type=int, default=4, help="images in each grid PNG")
    parser.add_argument("--out", help="output folder (default: results/eval/<checkpoint>_<task>)")
    return parser


def _same_file(a: Path | None, b: Path | None) -> bool:
    return a is not None and b is not None and a.resolve() == b.resolve()


def run(
    args: argparse.Namespace, log: Callable[[str], None] = print
) -> tuple[Report, dict[str, Path]]:
    """The evaluation of ``evaluate.py``'s parsed arguments; returns the report and its files."""
    if args.max_iters < 1 or args.tol <= 0 or args.max_images < 0 or args.grid_images < 0:
        raise ValueError("--max_iters must be >= 1, --tol > 0, --max_images and --grid_images >= 0")
    sigma = parse_pnp_sigma(args.pnp_sigma, "--pnp_sigma")
    model = load_model(
        args.checkpoint, args.task, max_iters=args.max_iters, tol=args.tol, pnp_sigma=sigma, log=log
    )
    datasets = [
        parse_data(spec, args.split, skip_bad_images=args.skip_bad_images)
        for spec in args.data.split(",")
        if spec.strip()
    ]
    if not datasets:
        raise ValueError("--data names no dataset")
    names = [d.name for d in datasets]  # two folders both called "val": keep their files apart
    datasets = [
        Dataset(f"{d.name}-{i + 1}" if names.count(d.name) > 1 else d.name, d.source)
        for i, d in enumerate(datasets)
    ]
    op = build.build_physics(model.task_config)
    restorers = [
        initial_restorer(op),
        tikhonov_restorer(resolve_tikhonov_mu(model.task_config, log)),
    ]
    pretrained = None
    if not args.no_pnp and (args.pretrained or model.pretrained):
        what = "--pretrained" if args.pretrained else "the run's config.model.init"
        try:
            pretrained = resolve_path(args.pretrained or model.pretrained, what)
        except ValueError as err:
            raise ValueError(
                f"{err} (give the PnP baseline's denoiser with --pretrained, or --no_pnp)"
            ) from err
    checkpoint_file = Path(args.checkpoint) if Path(args.checkpoint).is_file() else None
    prior = None if pretrained is None else load_prior(pretrained)
    if prior is not None and prior.model.channels != model.channels:
        raise ValueError(
            f"the PnP baseline's denoiser {pretrained} has {prior.model.channels} channel(s), "
            f"the model {model.channels} (give another with --pretrained, or --no_pnp)"
        )
    if prior is not None and not _same_file(pretrained, checkpoint_file):
        restorers.append(
            pnp_restorer(
                prior.denoiser,
                op,
                sigma=resolve_pnp_sigma(sigma, prior, model.task_config, log),
                max_iters=args.max_iters,
                tol=args.tol,
            )
        )
    # DPIR with the PnP baseline's denoiser, or with the params file being evaluated as PnP.
    if prior is None and checkpoint_file is not None and not args.no_pnp:
        prior = load_prior(checkpoint_file)
    if prior is not None:
        restorers.append(
            dpir_restorer(prior.denoiser, op, noise_sigma=model.task_config.noise_sigma)
        )
    restorers.append(model.restorer)
    name = f"{slug(Path(args.checkpoint).resolve().stem)}_{slug(model.task)}"
    out = Path(args.out) if args.out else Path("results") / "eval" / name
    out.mkdir(parents=True, exist_ok=True)  # an unwritable --out fails now, not after an image
    pnp = [dict(r.info, denoiser=str(pretrained)) for r in restorers if r.slug == "pnp"]
    dpir_denoiser = str(pretrained or checkpoint_file)
    dpir = [dict(r.info, denoiser=dpir_denoiser) for r in restorers if r.slug == "dpir"]
    settings = {
        "checkpoint": str(args.checkpoint),
        "model": dict(model.info),
        "task": {"name": model.task, **measurement_fields(model.task_config)},
        "data": [d.name for d in datasets],
        "max_iters": args.max_iters,
        "tol": args.tol,
        "pnp": pnp[0] if pnp else None,
        "dpir": dpir[0] if dpir else None,
        "metrics": METRICS_NOTE,
    }
    start = time.perf_counter()
    results = evaluate(
        datasets,
        restorers,
        model.task_config,
        out=out,
        max_images=args.max_images,
        grid_images=args.grid_images,
        channels=model.channels,
        log=log,
    )
    settings["seconds"] = round(time.perf_counter() - start, 1)
    report = Report(model.task, op.scale, [r.label for r in restorers], results, settings)
    return report, write_report(report, out)


def main(argv: Sequence[str] | None = None) -> int:
    """``evaluate.py``: returns 0, or exits with status 2 and a one-line error."""
    parser = _parser()
    args = parser.parse_args(argv)
    cli.quiet_logs(args.verbosity)
    with cli.reporting_errors(parser, args.verbosity):
        report, paths = run(args)
    print(format_tables(report))
    names = ", ".join(p.name for p in paths.values())
    print(f"Wrote {names}, the restored images and the grids to {paths['json'].parent}/")
    return 0
