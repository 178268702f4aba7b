"""Tiny ``train.py`` runs for the tests: configs, subprocesses, saved states.

Every run uses a tiny DRUNet on the bundled sample images (HR patches 16×16, batch 4) so that
compilation, not training, dominates. Subprocesses share the tests' persistent compilation
cache, so that a restarted run does not compile again.
"""

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp

from suppa_jax import config as config_lib

ROOT = Path(__file__).resolve().parents[1]


def tiny_overrides(init_file: str, **changes) -> dict:
    """13 training images, batch 4: 3.25 steps per epoch; epochs=2 → 7 steps."""
    return {
        "model.widths": (8, 8, 8, 8),
        "model.num_blocks": 1,
        "model.residual": False,
        "model.init": init_file,
        "data.source": "samples",
        "data.eval_source": "",
        "data.patch": 8,
        "data.patches_per_image": 1,
        "data.max_eval_images": 1,
        "data.eval_crop": 32,
        "train.batch_size": 4,
        "train.epochs": 2,
        "train.log_every_steps": 1,
        "train.checkpoint_every_steps": 2,
        "train.keep_checkpoints": 10,
        "admm.max_iters": 3,
        **changes,
    }


def tiny_config(init_file: str, **changes):
    return config_lib.apply_overrides(
        config_lib.experiment("sr", scale=2, cpu=True), tiny_overrides(init_file, **changes)
    )


def saved_state(workdir: Path, step: int):
    """The TrainState saved at ``step``, on this process's first device (whatever the topology
    of the run that saved it)."""
    path = workdir.resolve() / "checkpoints" / str(step) / "state"
    checkpointer = ocp.StandardCheckpointer()
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    target = jax.tree.map(
        lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
        checkpointer.metadata(path).item_metadata.tree,
    )
    return checkpointer.restore(path, target)


def assert_trees_equal(a, b) -> None:
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def write_config(path: Path, init_file: str, **changes) -> Path:
    """A config file for ``train.py`` with the tiny overrides."""
    path.write_text(
        textwrap.dedent(
            f"""
            from suppa_jax.config import apply_overrides, experiment

            def get_config():
                config = experiment("sr", scale=2, cpu=True)
                return apply_overrides(config, {tiny_overrides(init_file, **changes)!r})
            """
        )
    )
    return path


def environment(**extra: str) -> dict[str, str]:
    """The tests' environment for a subprocess: unbuffered, the entry point's own XLA flags,
    the tests' persistent compilation cache (as conftest sets it), and ``extra``."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("XLA_FLAGS", None)
    cache = {
        "JAX_COMPILATION_CACHE_DIR": str(jax.config.jax_compilation_cache_dir or ""),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0.2",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    }
    return {**env, **cache, **extra}


def start_training(
    config: Path, workdir: Path, *flags: str, log: Path | None = None
) -> subprocess.Popen:
    """``train.py`` in a subprocess; output to a pipe, or to ``log`` (processes that must not
    block on a full pipe while their peers wait for them)."""
    return subprocess.Popen(
        [sys.executable, "train.py", f"--config={config}", f"--workdir={workdir}", *flags],
        cwd=ROOT,
        env=environment(),
        stdout=subprocess.PIPE if log is None else log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, f"timed out waiting for {path}"
        time.sleep(0.2)
