"""The paper's comparison at CPU scale: SUPPA and its three rivals, the same budget, one table.

For SR ×2 and Gaussian deblurring, starting from the shipped denoiser
(``weights/drunet_cpu_denoiser.msgpack``), each of ``suppa``, ``unrolled`` (K = 6, the
paper's), ``deq`` and ``jfb`` is fine-tuned by ``train.py``'s own loop
(:func:`suppa_jax.loop.train_and_evaluate`) with the task's CPU config
(``configs/sr_x2_cpu.py``, ``configs/deblur_gaussian_cpu.py``): the same images, patches,
batches, epochs, learning rates and forward cap for every method; only ``config.method``
differs. Then the six held-out photos (:func:`suppa_jax.data.held_out_photos`) are restored,
whole, by the baselines (bicubic or ``initial(y)``, Tikhonov, plug-and-play ADMM with the
pre-trained denoiser) and by each fine-tuned model
(best validation checkpoint, to convergence: cap 50, tolerance 1e-3), with the metrics of
``evaluate.py``.

Reported per task: PSNR (RGB, no crop: the paper's), PSNR-Y, SSIM and iterations for every row;
per method the training wall time on this machine and the peak memory of one training step
(XLA's compiled memory analysis, as in ``benchmarks/memory.py``). Files, in ``--out`` (default
``results/reproduce``): ``reproduce.md`` (the tables, also printed), ``reproduce.json``, and per
task the evaluation's files (``<task>/``: tables, images, grid, and the PSNR-per-iteration
figure ``curves.png``, the paper's Fig. 3).

Runs are kept in ``--workdir`` (default ``runs/reproduce/<task>_<method>``); a finished run is
not retrained (its recorded time is reused) and an interrupted one resumes (its time adds up
over the segments that ended normally, by Ctrl-C or by an error). Reproduce (about 2 hours on
2 CPU cores: a ``unrolled`` or ``deq`` step costs about 10 SUPPA steps)::

    python -m benchmarks.reproduce
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from benchmarks import common, memory
from suppa_jax import build, data, evaluation, tasks, training
from suppa_jax import config as config_lib
from suppa_jax.training import loop

ROOT = Path(__file__).resolve().parents[1]
TASKS = {"sr2": ("sr", 2), "deblur": ("deblur", 1)}
METHODS = ("suppa", "unrolled", "deq", "jfb")
MIB = 2**20


def task_config(task: str, method: str, overrides: dict[str, Any]) -> ml_collections.ConfigDict:
    """The task's CPU config with ``method`` (and any ``key=value`` overrides) applied."""
    kind, scale = TASKS[task]
    config = config_lib.experiment(kind, scale, cpu=True)
    config_lib.apply_overrides(config, {"method": method, **overrides})
    with config.unlocked():
        config.model.init = str(ROOT / config.model.init)
    config_lib.validate(config)
    return config


def step_memory(config: ml_collections.ConfigDict) -> int:
    """Peak bytes of one compiled training step of ``config`` (argument + output + temp − alias)."""
    op, model = build.build_operator(config.task), build.build_model(config)
    method = build.build_method(config, model, op)
    optimizer = training.make_optimizer(
        lr=config.train.lr, scalar_lr=config.train.scalar_lr, admm_lr=config.train.admm_lr
    )
    params = build.initial_params(config, model)
    state = jax.eval_shape(functools.partial(training.init_state, method, optimizer), params)
    hr, batch = config.data.patch * config.task.scale, config.train.batch_size
    shapes = {"y": (batch, config.data.patch, config.data.patch, 3), "gt": (batch, hr, hr, 3)}
    inputs = {k: jax.ShapeDtypeStruct(v, jnp.float32) for k, v in shapes.items()}
    step = memory.jitted_step(method, optimizer)
    compiled = step.lower(state, inputs, jax.eval_shape(jax.random.key, 0)).compile()
    return memory.memory_of(compiled)["peak_bytes"]


def _validation_at_step_0(workdir: Path) -> float | None:
    """The validation PSNR before training, from the run's ``metrics.jsonl`` (kept on resume)."""
    with (workdir / "metrics.jsonl").open() as lines:
        for record in map(json.loads, lines):
            if record.get("step") == 0 and "val_psnr" in record:
                return record["val_psnr"]
    return None


def train(config: ml_collections.ConfigDict, workdir: Path) -> dict[str, Any]:
    """Fine-tune (or reuse a finished run); returns its summary with the training seconds."""
    record = workdir / "reproduce_run.json"
    if record.exists():
        return json.loads(record.read_text())
    workdir.mkdir(parents=True, exist_ok=True)
    elapsed = workdir / "reproduce_seconds.txt"  # training time of earlier, interrupted segments
    earlier = float(elapsed.read_text()) if elapsed.exists() else 0.0
    start = time.perf_counter()
    try:
        summary = loop.train_and_evaluate(config, workdir)
    finally:
        seconds = earlier + time.perf_counter() - start
        elapsed.write_text(f"{seconds:.1f}")
    if summary.get("interrupted"):
        raise SystemExit(f"{workdir}: training was interrupted; run again to resume")
    result = {
        "seconds": round(seconds, 1),
        "steps": summary["step"],
        "validation_psnr": {
            "start": _validation_at_step_0(workdir),
            "end": (summary.get("final") or {}).get("val_psnr"),
        },
        "lam": summary["train"].get("lam"),
        "sigma": summary["train"].get("sigma"),
    }
    record.write_text(json.dumps(result, indent=2) + "\n")
    return result


def evaluate_task(
    task: str, workdirs: dict[str, Path], out: Path, max_images: int = 0
) -> evaluation.Report:
    """Baselines and every fine-tuned model on the held-out photos, written to ``out``."""
    models = {m: evaluation.load_model(str(w), task, log=None) for m, w in workdirs.items()}
    first = next(iter(models.values()))
    op = build.build_operator(first.task_config)
    pretrained = evaluation.load_prior(first.pretrained)
    pnp_sigma = evaluation.resolve_pnp_sigma("default", pretrained, first.task_config, log=None)
    restorers = [
        evaluation.initial_restorer(op),
        evaluation.tikhonov_restorer(tasks.get_task(task).tikhonov_mu),
        evaluation.pnp_restorer(pretrained.denoiser, op, sigma=pnp_sigma),
        *(model.restorer for model in models.values()),
    ]
    datasets = [evaluation.Dataset("photos", data.held_out_photos())]
    results = evaluation.evaluate(
        datasets, restorers, first.task_config, out=out, max_images=max_images, log=None
    )
    settings = {"pnp_sigma": pnp_sigma, "models": {m: dict(v.info) for m, v in models.items()}}
    report = evaluation.Report(task, op.scale, [r.label for r in restorers], results, settings)
    evaluation.write_report(report, out)
    return report


def _number(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def cost_table(task: str, runs: dict[str, dict[str, Any]]) -> str:
    lines = [
        f"Training cost, {task} (same budget for every method):",
        "",
        "| method | steps | training time (s) | step memory (MiB) | val. PSNR start → end | λ |",
        "|---|---|---|---|---|---|",
    ]
    for method, run in runs.items():
        start, end = (_number(run["validation_psnr"][k]) for k in ("start", "end"))
        lines.append(
            f"| `{method}` | {run['steps']} | {run['seconds']:.0f} | "
            f"{run['memory_bytes'] / MIB:.0f} | {start} → {end} | {_number(run['lam'], 3)} |"
        )
    return "\n".join(lines)


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["train.epochs=2", ...]`` → ``{"train.epochs": 2, ...}`` (values as Python literals)."""
    import ast

    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set expects key=value, got {item!r}")
        try:
            overrides[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            overrides[key] = value
    return overrides


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", default=",".join(TASKS), help="comma-separated: sr2,deblur")
    p.add_argument("--methods", default=",".join(METHODS), help="comma-separated")
    p.add_argument("--set", nargs="*", default=[], help="config overrides for every run")
    p.add_argument("--max-images", type=int, default=0, help="held-out photos (0: all 6)")
    p.add_argument("--workdir", type=Path, default=ROOT / "runs" / "reproduce")
    p.add_argument("--out", type=Path, default=Path("results/reproduce"))
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parser().parse_args(argv)
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.ERROR)  # orbax warns about optional metadata files
    task_names, method_names = args.tasks.split(","), args.methods.split(",")
    for name, allowed, given in (("task", TASKS, task_names), ("method", METHODS, method_names)):
        if unknown := [g for g in given if g not in allowed]:
            raise SystemExit(f"unknown {name}(s) {unknown}; choose from {list(allowed)}")
    overrides = parse_overrides(args.set)
    start = time.perf_counter()
    record: dict[str, Any] = {"overrides": overrides, "tasks": {}}
    sections = []
    for task in task_names:
        runs, workdirs = {}, {}
        for method in method_names:
            config = task_config(task, method, overrides)
            workdirs[method] = args.workdir.resolve() / f"{task}_{method}"
            print(f"[{task}] training {method} in {workdirs[method]}", flush=True)
            runs[method] = train(config, workdirs[method])
            runs[method]["memory_bytes"] = step_memory(config)
        print(f"[{task}] evaluating", flush=True)
        report = evaluate_task(task, workdirs, args.out / task, args.max_images)
        sections += [evaluation.format_tables(report), cost_table(task, runs)]
        record["tasks"][task] = {"runs": runs, "settings": report.settings}
    record["wall_seconds"] = round(time.perf_counter() - start, 1)
    text = "\n\n".join(sections)
    args.out.mkdir(parents=True, exist_ok=True)
    common.write_results(args.out, "reproduce", text, record)
    print(text)
    print(
        f"\nWrote {args.out}/reproduce.{{md,json}} and {args.out}/<task>/ in "
        f"{record['wall_seconds']:.0f} s."
    )
    return record


if __name__ == "__main__":
    main()
