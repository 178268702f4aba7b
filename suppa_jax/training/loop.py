"""The training program behind ``train.py``: data, sharded steps, validation, checkpoints, logs.

``train_and_evaluate(config, workdir)`` trains ``config.method`` on ``config.task`` and writes
into ``workdir``::

    checkpoints/<step>/   orbax: TrainState (params, Adam moments, step), the grain iterator
                          state of every process and the config; the last
                          ``keep_checkpoints`` kept
    best/<step>/          the trainables (and config) of the best validations so far
                          (:mod:`suppa_jax.training.checkpoints`)
    set_aside/            checkpoints that could not be used on resuming, kept
    metrics.jsonl         one JSON object per logged step / validation
    tensorboard/          the same, for TensorBoard
    config.json           the configuration of the run (written whole or not at all)

Input stalls: the time each step waits for its batch (``next`` on the grain iterator, while the
device may still be busy with the previous step under asynchronous dispatch) is logged as
``data_wait_fraction`` (the share of the wall time between two log lines spent waiting) and
``data_wait_ms`` (per step), in ``metrics.jsonl``, TensorBoard and the progress bar (``wait``);
above :data:`INPUT_BOUND_FRACTION` the run is input-bound and says so once, with what to change.

Validation runs the evaluator of ``evaluate.py`` (:class:`suppa_jax.evaluation.Evaluator`) on
the validation images at the end of every ``eval_every_epochs`` epochs.

Parallelism: one jitted step over a ``Mesh`` with a ``"data"`` axis spanning every device of
every process (``jax.shard_map``): the global batch is sharded, params are replicated and
gradients are averaged with ``lax.pmean``. Each process reads its own shard of the data.

Robustness (README, "Faults"): a run is resumed from the newest usable checkpoint in
``workdir`` (params, optimiser, step and data position), so a resumed run reproduces an
uninterrupted one bit for bit on CPU. A checkpoint that cannot be read, or was saved with
another config, is moved to ``set_aside/`` with a warning and the next older one is tried; if
none can be used, the run stops with one error listing them. A run is resumed only with its
own config (:mod:`suppa_jax.config.changes`) unless ``allow_config_change``. SIGINT (Ctrl-C)
and SIGTERM save a checkpoint at the next step boundary and exit cleanly; a SIGKILL loses only
the steps since the last complete checkpoint (orbax writes each checkpoint to a temporary
directory and renames it when complete; the temporary directory of an interrupted save is
removed on the next start). A save or log write that fails (a full disk, a read-only
directory) stops the run with a ``WorkdirError`` naming the directory; the complete
checkpoints are untouched and the run resumes once the disk is writable. A non-finite loss
stops the run before any checkpoint of the diverged state is written.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np
import optax
import tqdm
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from suppa_jax import build, data, methods
from suppa_jax import config as config_lib
from suppa_jax.config import changes
from suppa_jax.evaluation.evaluator import Evaluator
from suppa_jax.evaluation.restorers import jitted_predict, method_restorer
from suppa_jax.physics import OperatorFamily
from suppa_jax.training import checkpoints
from suppa_jax.training import step as training
from suppa_jax.typing import ExampleBatch, Trainable

__all__ = ["initialize_distributed", "train_and_evaluate"]

DATA_AXIS = "data"


# ---------------------------------------------------------------------------------- set-up


def initialize_distributed(config: ml_collections.ConfigDict) -> None:
    """``jax.distributed.initialize`` when ``config.parallel.multi_host`` (gloo on CPU)."""
    parallel = config.parallel
    if not parallel.multi_host:
        return
    if jax.config.jax_platforms in (None, "", "cpu"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=parallel.coordinator_address or None,
        num_processes=parallel.num_processes or None,
        process_id=parallel.process_id if parallel.process_id >= 0 else None,
    )


# ---------------------------------------------------------------------------------- steps


def _sharded_step(
    method: methods.Method,
    optimizer: optax.GradientTransformation,
    physics: OperatorFamily,
    task: ml_collections.ConfigDict,
    mesh: Mesh,
):
    """One jitted training step over the mesh: batch sharded on ``"data"``, state replicated."""
    step = functools.partial(
        training.train_step,
        method,
        optimizer,
        physics,
        noise_sigma=task.noise_sigma,
        noise_sigma_max=task.noise_sigma_max,
        quantize=task.quantize,
        axis_name=DATA_AXIS,
    )
    sharded = jax.shard_map(
        step,
        mesh=mesh,
        in_specs=(PartitionSpec(), PartitionSpec(DATA_AXIS)),
        out_specs=(PartitionSpec(), PartitionSpec()),
        # The solvers build per-sample loop state (masks, counters, reservoirs) with jnp.ones /
        # jnp.zeros inside the device-local step; with varying-manual-axes checks on, every
        # such initial value would need a pcast. The step is a plain per-device program whose
        # only collective is the pmean of gradients and metrics.
        check_vma=False,
    )
    return jax.jit(sharded, donate_argnums=0)


def _global_batch(mesh: Mesh, local: dict[str, np.ndarray]) -> dict[str, jax.Array]:
    """This process's batch as its shard of one global batch array per key."""
    sharding = NamedSharding(mesh, PartitionSpec(DATA_AXIS))
    return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in local.items()}


def _local_copy(tree: Any) -> Any:
    """A replicated global pytree as host NumPy arrays (one addressable copy)."""
    return jax.tree.map(lambda a: np.asarray(a.addressable_data(0)), tree)


class _Validation:
    """Validation during training: the evaluator of ``evaluate.py`` on the validation images,
    with the method's ``predict`` compiled once per image size."""

    def __init__(
        self, config: ml_collections.ConfigDict, images: list[tuple[str, ExampleBatch]]
    ) -> None:
        self.config, self.images = config, images
        self._evaluator = Evaluator(config.task)
        self._predict = jitted_predict(config, self._evaluator.physics.fixed)

    def __call__(self, trainable: Trainable) -> dict[str, float]:
        row = method_restorer(self.config, trainable, self._predict)
        means = self._evaluator.mean(self.images, row)
        return {"val_psnr": means["psnr_rgb"], "val_iterations": means["iterations"]}


def _centre_crop(batch: dict[str, np.ndarray], size: int, scale: int) -> dict[str, np.ndarray]:
    """Crop ``hr`` to at most ``size × size`` around its centre, keeping multiples of ``scale``."""
    hr = batch["hr"]
    height, width = hr.shape[1:3]
    h = min(height, size) // scale * scale
    w = min(width, size) // scale * scale
    top, left = (height - h) // 2, (width - w) // 2
    return {**batch, "hr": hr[:, top : top + h, left : left + w]}


def _validation_images(config, source) -> list[tuple[str, dict[str, np.ndarray]]]:
    images = list(data.eval_images(source, config.task.scale, config.model.channels))
    if config.data.max_eval_images:
        images = images[: config.data.max_eval_images]
    if config.data.eval_crop:
        images = [
            (name, _centre_crop(b, config.data.eval_crop, config.task.scale)) for name, b in images
        ]
    return images


# ---------------------------------------------------------------------------------- logging


class _Log:
    """metrics.jsonl and TensorBoard, written by process 0 only."""

    def __init__(self, workdir: Path) -> None:
        self.enabled = jax.process_index() == 0
        if self.enabled:
            from tensorboardX import SummaryWriter

            self._file = (workdir / "metrics.jsonl").open("a")
            self._writer = SummaryWriter(str(workdir / "tensorboard"))

    def write(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        try:
            self._file.write(json.dumps({"step": step, **values}) + "\n")
            self._file.flush()
        except OSError as error:  # a full disk, a directory made read-only
            raise checkpoints.WorkdirError(
                f"cannot write {self._file.name} ({checkpoints.reason(error)}); stopped. The "
                "complete checkpoints are untouched: free space (or make the directory "
                "writable) and run the same command to resume"
            ) from error
        for name, value in values.items():
            self._writer.add_scalar(name, value, step)
        self._writer.flush()

    def close(self) -> None:
        if self.enabled:
            # What cannot be flushed any more was reported by write(), which flushes each line.
            with contextlib.suppress(OSError):
                self._file.close()
            self._writer.close()


class _StopSignal:
    """Turns SIGINT/SIGTERM into a flag the loop checks at step boundaries."""

    def __init__(self) -> None:
        self.received: int | None = None

    @contextlib.contextmanager
    def installed(self) -> Iterator[_StopSignal]:
        handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        for sig in handlers:
            signal.signal(sig, lambda signum, frame: setattr(self, "received", signum))
        try:
            yield self
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)


# ---------------------------------------------------------------------------------- the loop


def _check_finite(step: int, values: dict[str, float], last_saved: int | None) -> None:
    if not math.isfinite(values["loss"]):
        where = "none yet" if last_saved is None else f"step {last_saved}"
        raise FloatingPointError(
            f"the training loss is {values['loss']} at step {step}: stopping. No checkpoint of "
            f"the diverged state was written; the last good checkpoint ({where}) is untouched."
        )


def _sources(config: ml_collections.ConfigDict) -> tuple[data.ImageSource, data.ImageSource]:
    """The training and validation images of ``config.data``."""
    scale = config.task.scale
    common = dict(
        feature=config.data.feature,
        data_dir=config.data.data_dir or None,
        skip_bad_images=config.data.skip_bad_images,
        deadleaves=data.DeadLeaves(size=config.data.deadleaves_size or config.data.patch * scale),
        deadleaves_images=config.data.deadleaves_images,
        seed=config.data.seed,
        cache_dir=config.data.cache_dir or None,
    )
    train = data.build_source(
        config.data.source, config.data.train_split, min_size=config.data.patch * scale, **common
    )
    validation = data.build_source(
        config.data.eval_source or config.data.source, config.data.eval_split, **common
    )
    return train, validation


def _train_dataset(config: ml_collections.ConfigDict, source: data.ImageSource) -> Any:
    """This process's share of the training stream (:func:`suppa_jax.data.build_train_dataset`)."""
    return data.build_train_dataset(
        source,
        batch_size=config.train.batch_size // jax.process_count(),
        patch=config.data.patch,
        scale=config.task.scale,
        augment=config.data.augment,
        permute_channels=config.data.permute_channels,
        channels=config.model.channels,
        seed=config.data.seed,
        patches_per_image=config.data.patches_per_image,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
        worker_count=config.data.worker_count,
        read_threads=config.data.read_threads,
    )


#: A run whose steps wait for data longer than this share of the wall time is input-bound.
INPUT_BOUND_FRACTION = 0.25


class _Metrics:
    """Training metrics kept on the device between logging steps, fetched in one host sync, and
    the seconds each step waited for its batch."""

    def __init__(self, log: _Log) -> None:
        self.log, self.pending, self.waits, self.last = log, [], [], {}
        self.clock = time.perf_counter()
        self.warned = False

    def append(self, metrics: dict[str, jax.Array], data_wait: float) -> None:
        self.pending.append(metrics)
        self.waits.append(data_wait)

    def flush(self, step: int, last_saved: int | None) -> None:
        """Log the mean of the metrics since the last flush, the steps per second and the data
        wait; stop on a non-finite loss; warn once when the run is input-bound."""
        if not self.pending:
            return
        fetched = jax.device_get(self.pending)
        now = time.perf_counter()
        elapsed = now - self.clock
        values = {k: float(np.mean([m[k] for m in fetched])) for k in fetched[0]}
        values["steps_per_second"] = len(fetched) / elapsed
        values["data_wait_ms"] = 1000 * float(np.mean(self.waits))
        values["data_wait_fraction"] = min(1.0, sum(self.waits) / elapsed)
        self.clock = now
        self.pending.clear()
        self.waits.clear()
        _check_finite(step, values, last_saved)
        self.log.write(step, values)
        self.last = values
        if values["data_wait_fraction"] > INPUT_BOUND_FRACTION and not self.warned:
            self.warned = True
            tqdm.tqdm.write(
                f"warning: input-bound: up to step {step} the steps waited for data "
                f"{100 * values['data_wait_fraction']:.0f}% of the time "
                f"({values['data_wait_ms']:.1f} ms per step); reading and cropping images is the "
                "bottleneck: raise config.data.worker_count (grain worker processes), or train "
                "on smaller or pre-cropped images",
                file=sys.stderr,
            )


def _write_json(path: Path, values: dict[str, Any]) -> None:
    """Write ``path`` whole or not at all (a kill mid-write leaves the previous file)."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(values, indent=2))
    os.replace(partial, path)


def train_and_evaluate(
    config: ml_collections.ConfigDict,
    workdir: str | Path,
    *,
    allow_config_change: bool = False,
) -> dict[str, Any]:
    """Train ``config.method`` as configured, resuming from ``workdir`` if it holds a run.

    A run is resumed only with its own config, up to the fields of
    :data:`~suppa_jax.config.changes.RESUMABLE_FIELDS` (the number of epochs, logging,
    checkpointing); ``allow_config_change`` resumes it with any change, from checkpoints saved
    under another config too. Returns a summary: the final step, the last training metrics,
    and the validation PSNR at the start of this run and at its end.
    """
    config_lib.validate(config)
    config_lib.check_batch_divisible(config, jax.device_count())
    workdir = Path(workdir).resolve()  # orbax wants absolute paths
    workdir.mkdir(parents=True, exist_ok=True)
    config_json = changes.as_json(config)
    checkpoints.check_resumable(workdir, config_json, allow_config_change)

    mesh = Mesh(np.array(jax.devices()), (DATA_AXIS,))
    physics, model = build.build_physics(config.task), build.build_model(config)
    method = build.build_method(config, model, physics.fixed)
    train_source, validation_source = _sources(config)
    validation = _Validation(config, _validation_images(config, validation_source))

    steps_per_epoch = len(train_source) * config.data.patches_per_image / config.train.batch_size
    total_steps = math.ceil(config.train.epochs * steps_per_epoch)
    optimizer = training.make_optimizer(
        lr=config.train.lr,
        scalar_lr=config.train.scalar_lr,
        admm_lr=config.train.admm_lr,
        decay_steps=max(1, round(config.train.decay_epochs * steps_per_epoch)),
        decay_rate=config.train.decay_rate,
    )
    iterator = iter(_train_dataset(config, train_source))
    step_fn = _sharded_step(method, optimizer, physics, config.task, mesh)
    store = checkpoints.RunCheckpoints(
        workdir, config.train.keep_checkpoints, iterator, config_json, allow_config_change
    )

    replicated = NamedSharding(mesh, PartitionSpec())

    def start() -> training.TrainState:
        return training.init_state(method, optimizer, build.initial_params(config, model))

    abstract = jax.tree.map(
        lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=replicated),
        jax.eval_shape(start),
    )
    state = store.restore(abstract)
    store.check_best(abstract.trainable)
    if state is None:
        state = jax.device_put(start(), replicated)
    if jax.process_index() == 0:
        _write_json(workdir / "config.json", config_json)

    log = _Log(workdir)
    step = int(_local_copy(state.step))
    summary: dict[str, Any] = {"start_step": step}
    metrics = _Metrics(log)

    def validate(step: int, state: training.TrainState) -> dict[str, float]:
        trainable = _local_copy(state.trainable)
        values = validation(trainable)
        log.write(step, values)
        store.save_best(step, trainable, values)
        return values

    if step == 0:
        summary["initial"] = validate(0, state)
    stop = _StopSignal()
    bar = tqdm.tqdm(
        total=total_steps,
        initial=step,
        disable=jax.process_index() != 0,
        desc=f"{config.method} {config.task.kind}×{config.task.scale}",
        dynamic_ncols=True,
    )
    try:
        with stop.installed():
            while step < total_steps:
                waiting = time.perf_counter()
                batch = next(iterator)
                data_wait = time.perf_counter() - waiting
                state, step_metrics = step_fn(state, _global_batch(mesh, batch))
                metrics.append(step_metrics, data_wait)
                step += 1
                bar.update(1)
                epoch = math.floor(step / steps_per_epoch)
                epoch_ended = epoch > math.floor((step - 1) / steps_per_epoch)
                last = step == total_steps
                if step % config.train.log_every_steps == 0 or last:
                    metrics.flush(step, store.last_saved)
                    bar.set_postfix(_postfix(metrics.last), refresh=False)
                if (epoch_ended and epoch % config.train.eval_every_epochs == 0) or last:
                    metrics.flush(step, store.last_saved)
                    summary["final"] = validate(step, state)
                    store.save(step, state)
                if step % config.train.checkpoint_every_steps == 0:
                    metrics.flush(step, store.last_saved)
                    store.save(step, state)
                if stop.received is not None:
                    metrics.flush(step, store.last_saved)
                    store.save(step, state)
                    print(
                        f"\nStopped by signal {signal.Signals(stop.received).name} at step "
                        f"{step}; checkpoint saved. Run the same command to resume."
                    )
                    break
            metrics.flush(step, store.last_saved)
            store.save(step, state)
    except BaseException:
        store.close(failing=True)
        raise
    else:
        store.close()
    finally:
        bar.close()
        log.close()
    summary.update(step=step, train=metrics.last, interrupted=stop.received is not None)
    return summary


def _postfix(values: dict[str, float]) -> dict[str, str]:
    names = ("loss", "psnr", "lam", "sigma", "iterations", "steps_per_second")
    short = {"steps_per_second": "it/s", "iterations": "iters"}
    postfix = {short.get(n, n): f"{values[n]:.4g}" for n in names if n in values}
    if "data_wait_fraction" in values:
        postfix["wait"] = f"{100 * values['data_wait_fraction']:.0f}%"
    return postfix
