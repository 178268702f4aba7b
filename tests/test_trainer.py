"""The training program: resume reproducibility, NaN stop, signals, multi-device, multi-process.

Runs are the tiny ones of ``tests/tiny_runs.py``; runs that must be separate processes use
``train.py``. Damaged checkpoints, kills during saves and full disks: ``test_faults.py``.
"""

import json
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from tiny_runs import (
    ROOT,
    assert_trees_equal,
    environment,
    saved_state,
    start_training,
    tiny_config,
    tiny_overrides,
    wait_for,
    write_config,
)

from suppa_jax import convert, training
from suppa_jax.models import drunet, weights
from suppa_jax.training import checkpoints, loop


def test_resumed_run_is_bitwise_the_uninterrupted_one(init_file, tmp_path):
    straight = loop.train_and_evaluate(tiny_config(init_file), tmp_path / "straight")
    assert straight["step"] == 7
    first = loop.train_and_evaluate(tiny_config(init_file, **{"train.epochs": 1}), tmp_path / "b")
    assert first["step"] == 4
    resumed = loop.train_and_evaluate(tiny_config(init_file), tmp_path / "b")
    assert resumed["start_step"] == 4
    assert resumed["step"] == 7
    a, b = saved_state(tmp_path / "straight", 7), saved_state(tmp_path / "b", 7)
    assert_trees_equal(a, b)
    # Training changed the weights, and the logs hold every step and the validations.
    initial = weights.load_params(init_file)[1]
    assert not np.allclose(a["trainable"]["denoiser"]["head"]["kernel"], initial["head"]["kernel"])
    records = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").open()]
    assert {r["step"] for r in records if "loss" in r} == set(range(1, 8))
    assert all(0 <= r["data_wait_fraction"] <= 1 for r in records if "loss" in r)
    assert next(r["step"] for r in records if "val_psnr" in r) == 0
    # The best validation's denoiser exports to a params file (python -m suppa_jax.convert).
    assert convert.main([str(tmp_path / "b"), str(tmp_path / "best.msgpack")]) == 0
    model, exported = weights.load_params(tmp_path / "best.msgpack")
    assert model == drunet.DRUNet(widths=(8, 8, 8, 8), num_blocks=1)
    best = checkpoints.best_trainable(tmp_path / "b")
    assert_trees_equal(exported, best.trainable["denoiser"])


def test_non_finite_loss_stops_and_keeps_the_last_checkpoint(init_file, tmp_path):
    loop.train_and_evaluate(tiny_config(init_file, **{"train.epochs": 1}), tmp_path)
    good = saved_state(tmp_path, 4)
    diverging = tiny_config(init_file, **{"train.lr": 1e30, "train.scalar_lr": 1e30})
    with pytest.raises(FloatingPointError, match="last good checkpoint \\(step 4\\) is untouched"):
        loop.train_and_evaluate(diverging, tmp_path, allow_config_change=True)
    steps = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
    assert steps[-1] == 4
    assert_trees_equal(saved_state(tmp_path, 4), good)
    assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(good["trainable"]))


class _Lines:
    def __init__(self) -> None:
        self.written: list[tuple[int, dict]] = []

    def write(self, step: int, values: dict) -> None:
        self.written.append((step, values))


def test_data_waits_are_logged_and_an_input_bound_run_says_so_once(capsys):
    log = _Lines()
    metrics = loop._Metrics(log)
    for _ in range(3):  # each step waits 30 ms for its batch and computes in no time
        time.sleep(0.03)
        metrics.append({"loss": np.float32(0.5)}, 0.03)
    metrics.flush(3, None)
    ((step, values),) = log.written
    assert step == 3
    assert values["data_wait_ms"] == pytest.approx(30)
    assert 0.8 < values["data_wait_fraction"] <= 1
    assert loop._postfix(values)["wait"].endswith("%")
    assert "warning: input-bound: up to step 3" in capsys.readouterr().err
    for _ in range(3):  # still input-bound: no second warning
        time.sleep(0.03)
        metrics.append({"loss": np.float32(0.5)}, 0.03)
    metrics.flush(6, None)
    assert "input-bound" not in capsys.readouterr().err


def test_a_compute_bound_run_does_not_warn(capsys):
    log = _Lines()
    metrics = loop._Metrics(log)
    for _ in range(3):  # the step takes 30 ms, its batch was ready
        time.sleep(0.03)
        metrics.append({"loss": np.float32(0.5)}, 0.0001)
    metrics.flush(3, None)
    assert log.written[0][1]["data_wait_fraction"] < loop.INPUT_BOUND_FRACTION
    assert "input-bound" not in capsys.readouterr().err


def test_optimizer_groups_have_their_own_rates():
    """Adam's first step moves each parameter by its group's rate: network, λ, ADMM scalars."""
    trainable = {"denoiser": {"w": np.ones(3)}, "lam": np.float32(1.0), "sigma": np.float32(0.1)}
    optimizer = training.make_optimizer(lr=1e-3, scalar_lr=0.1, admm_lr=1e-4)
    grads = jax.tree.map(lambda v: np.ones_like(v) * 0.37, trainable)
    updates, _ = optimizer.update(grads, optimizer.init(trainable), trainable)
    np.testing.assert_allclose(updates["denoiser"]["w"], -1e-3, rtol=1e-4)
    np.testing.assert_allclose(updates["lam"], -0.1, rtol=1e-4)
    np.testing.assert_allclose(updates["sigma"], -1e-4, rtol=1e-4)


def test_bad_init_file_is_named(init_file, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"config\.model\.init: no such file"):
        loop.train_and_evaluate(tiny_config(str(tmp_path / "missing.msgpack")), tmp_path)
    with pytest.raises(ValueError, match=r"config\.model asks for drunet \(widths \(16, 8, 8, 8\)"):
        loop.train_and_evaluate(tiny_config(init_file, **{"model.widths": (16, 8, 8, 8)}), tmp_path)
    with pytest.raises(
        ValueError, match=r"holds drunet \(widths .*residual False\), but .*residual True\)"
    ):
        loop.train_and_evaluate(tiny_config(init_file, **{"model.residual": True}), tmp_path)


# ---------------------------------------------------------------------------------- processes


def test_sigkill_then_sigterm_then_resume(init_file, tmp_path):
    """SIGKILL loses only the steps since the last checkpoint; SIGTERM saves and exits 0."""
    config = write_config(tmp_path / "tiny.py", init_file, **{"train.epochs": 12})
    workdir = tmp_path / "run"
    process = start_training(config, workdir)
    wait_for(workdir / "checkpoints" / "2", process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    process = start_training(config, workdir)
    wait_for(workdir / "checkpoints" / "6", process)
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 0, output
    assert "Resumed from" in output
    assert "Stopped by signal SIGTERM" in output
    stopped_at = int(output.split("Stopped by signal SIGTERM at step ")[1].split(";")[0])
    assert (workdir / "checkpoints" / str(stopped_at)).is_dir()
    finished = subprocess.run(
        [sys.executable, "train.py", f"--config={config}", f"--workdir={workdir}"],
        cwd=ROOT,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert f"at step {stopped_at}" in finished.stdout
    assert "train.py: step 39;" in finished.stdout  # ceil(12 · 13 / 4)


def test_bad_config_value_is_a_one_line_error(tmp_path, init_file):
    config = write_config(tmp_path / "tiny.py", init_file)
    result = subprocess.run(
        [
            sys.executable,
            "train.py",
            f"--config={config}",
            f"--workdir={tmp_path / 'w'}",
            "--config.train.lr=-1e-5",
        ],
        cwd=ROOT,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "config.train.lr must be > 0, got -1e-05" in result.stderr


# ---------------------------------------------------------------------------------- parallel

SHARDED_STEP_SCRIPT = """
import jax, numpy as np
from jax.sharding import Mesh
from suppa_jax import build, config as config_lib, data, training
from suppa_jax.training import loop

config = config_lib.apply_overrides(config_lib.experiment("sr", scale=2, cpu=True), OVERRIDES)
physics, model = build.build_physics(config.task), build.build_model(config)
method = build.build_method(config, model, physics.fixed)
optimizer = training.make_optimizer(lr=1e-3, scalar_lr=0.1)
params = jax.device_get(build.initial_params(config, model))  # host copy: the step donates
batch = next(iter(data.build_train_dataset(
    data.build_source("samples", "train", min_size=16), batch_size=8, patch=8, scale=2, seed=3)))
results = {}
for devices in (jax.devices()[:1], jax.devices()):
    mesh = Mesh(np.array(devices), ("data",))
    state = training.init_state(method, optimizer, params)
    step = loop._sharded_step(method, optimizer, physics, config.task, mesh)
    state, metrics = step(state, loop._global_batch(mesh, batch))
    results[len(devices)] = (jax.device_get(state.trainable), jax.device_get(metrics))
(p1, m1), (p4, m4) = results[1], results[4]
assert jax.device_count() == 4
worst = max(
    float(np.max(np.abs(a - b)) / (np.max(np.abs(a)) + 1e-30))
    for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p4))
)
print("loss", float(m1["loss"]), float(m4["loss"]), "worst", worst)
np.testing.assert_allclose(m4["loss"], m1["loss"], rtol=1e-5)
assert worst <= 1e-5, worst
"""


@pytest.mark.parametrize("method", ["suppa", "deq"])
def test_four_devices_match_one(init_file, method):
    script = SHARDED_STEP_SCRIPT.replace(
        "OVERRIDES", repr(tiny_overrides(init_file, method=method))
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=environment(XLA_FLAGS="--xla_force_host_platform_device_count=4"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "worst" in result.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one(init_file, tmp_path):
    """Two processes on loopback (jax.distributed, gloo) train two steps like one process."""
    config = write_config(tmp_path / "tiny.py", init_file, **{"train.epochs": 1})
    single = subprocess.run(
        [sys.executable, "train.py", f"--config={config}", f"--workdir={tmp_path / 'one'}"],
        cwd=ROOT,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert single.returncode == 0, single.stdout + single.stderr
    port = free_port()
    workers = [
        start_training(
            config,
            tmp_path / "two",
            "--config.parallel.multi_host=True",
            f"--config.parallel.coordinator_address=127.0.0.1:{port}",
            "--config.parallel.num_processes=2",
            f"--config.parallel.process_id={index}",
            log=tmp_path / f"process_{index}.log",
        )
        for index in range(2)
    ]
    try:
        for index, worker in enumerate(workers):
            worker.wait(timeout=300)
            assert worker.returncode == 0, (tmp_path / f"process_{index}.log").read_text()
    finally:  # a process left waiting for its peer must not outlive the test
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    one, two = saved_state(tmp_path / "one", 4), saved_state(tmp_path / "two", 4)
    for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(two), strict=True):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-7)
