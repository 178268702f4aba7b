"""Side-by-side speed of ``suppa_jax`` and the PyTorch reference, in one run on one machine.

What is timed, for each DRUNet size, with the same weights and the same inputs in both
frameworks (PyTorch: :mod:`benchmarks.torch_reference`):

* ``forward``: DRUNet on a batch (no gradient: ``jax.jit`` of ``apply``; ``torch.inference_mode``);
* ``forward+backward``: the gradient of an MSE loss with respect to the weights;
* ``suppa K=…``: one SUPPA training step (SR ×2) — the no-grad forward loop run for exactly K
  iterations (tolerance 0), the two differentiable steps, backward and the Adam update
  (:func:`suppa_jax.training.update` jitted with the state donated, as in the README; PyTorch:
  :func:`benchmarks.torch_reference.suppa_step`);
* ``restore``: ADMM restoration of one 256×256 image (SR ×2, LR 128×128) for a fixed number of
  iterations (tolerance 0, so both do the same work): :func:`suppa_jax.solvers.admm.solve` jitted;
  PyTorch :func:`benchmarks.torch_reference.restore`.

How: each function is called once to warm up (JAX: compilation; its time is reported), then the
two frameworks alternate, one call each, ``repeats`` times, so that load from other processes
on a shared machine falls on both alike; calls under a second get an untimed settling call
first (:func:`time_pair` says why). Reported: median and minimum per framework, the ratio
JAX/PyTorch of the medians (and of the minima), and the achieved GFLOP/s against the machine's
measured float32 matmul peak (best of NumPy, JAX and PyTorch on a 4096² product, measured in the
same run). FLOPs are counted analytically: 2·MACs of DRUNet's convolutions (3×3 and the 2×2
stride-2 layers); backward = 2× forward; a SUPPA step = K forwards at batch B plus forward and
backward at batch 2B; a restoration = iterations × forward. The FFT data step and elementwise
work are not counted (they are a few % of the FLOPs). The forward count is cross-checked against
XLA's cost analysis (in the JSON).

Threads: PyTorch ``torch.set_num_threads(os.cpu_count())``; JAX/XLA its default (one intra-op
thread pool over all cores).

On a GPU (JAX's default backend is ``gpu`` and PyTorch sees CUDA) both frameworks run there with
their default settings (cuDNN convolutions in both, TF32 where each allows it by default), every
PyTorch call ends with ``torch.cuda.synchronize()`` and every JAX call with
``block_until_ready``; the sizes grow to the paper's training batch (:data:`ACCELERATOR_SIZES`).
The matmul peak is then that of the GPU (JAX and PyTorch; NumPy is left out).

Environment knobs that change speed (``XLA_FLAGS``,
``OMP_NUM_THREADS``, ``OPENBLAS_CORETYPE``, ...) are recorded in the JSON; none is set here
except the XLA:CPU flags the entry points add (:func:`suppa_jax.use_fast_xla_cpu_flags`, applied
when run as ``python -m benchmarks.speed``).

Outputs, in ``--out`` (default ``results/speed``): ``speed.md`` (the table, also printed) and
``speed.json`` (every sample, the settings, FLOP counts, load averages, versions).

Reproduce (about 10 minutes on 2 CPU cores; ``--sizes small`` takes about 3)::

    python -m benchmarks.speed
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import torch

from benchmarks import common
from benchmarks import torch_reference as ref
from suppa_jax import methods, physics, training
from suppa_jax.models import drunet, weights
from suppa_jax.solvers import admm
from suppa_jax.xla import use_fast_xla_cpu_flags

SCALE = 2  # SR ×2 for the training step and the restoration
SIGMA = 0.1
TAIL_DAMPING = 0.1
"""Random weights with the tail conv scaled down: a prior contractive enough that 50 ADMM
iterations stay bounded (an undamped random DRUNet makes the iterates grow without limit)."""
ENV_KNOBS = (
    "XLA_FLAGS",
    "JAX_PLATFORMS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "OPENBLAS_CORETYPE",
    "TF_ENABLE_ONEDNN_OPTS",
)


@dataclasses.dataclass(frozen=True)
class Size:
    """One DRUNet size and the workload sizes timed with it."""

    name: str
    widths: tuple[int, int, int, int]
    num_blocks: int
    batch: int  # forward and forward+backward
    patch: int  # their image side
    train_batch: int  # SUPPA step
    train_patch: int  # its HR patch side
    restore_size: int  # HR side of the restored image
    restore_iters: int
    repeats: int
    torch_memory_format: str  # the faster one on a 2-core AVX-512 CPU (benchmarks/NOTES.md)


SIZES = {
    "small": Size("small", (16, 32, 64, 128), 1, 16, 48, 16, 48, 256, 50, 7, "channels_last"),
    "paper": Size("paper", (64, 128, 256, 512), 4, 16, 48, 2, 48, 256, 10, 3, "contiguous"),
}
ACCELERATOR_SIZES = {
    "small": dataclasses.replace(SIZES["small"], repeats=20, torch_memory_format="contiguous"),
    "paper": dataclasses.replace(SIZES["paper"], train_batch=16, restore_iters=50, repeats=10),
}
"""On a GPU: the paper's training batch (16) and 50 restoration iterations, more repeats."""
MEMORY_FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}


# ---------------------------------------------------------------------------------- FLOPs


def drunet_flops(widths: Sequence[int], num_blocks: int, height: int, width: int) -> int:
    """FLOPs (2·MACs) of one DRUNet forward on one ``height × width`` RGB image.

    The convolutions only: head 3×3 (4 → c0), 2·nb 3×3 convs per stage at each of the seven
    stages, the 2×2 stride-2 down convs and transposed convs (4 MACs per output pixel of
    the finer level per input-output channel pair, counted at the coarse level), tail 3×3.
    """
    height, width = -(-height // 8) * 8, -(-width // 8) * 8  # the pad to a multiple of 8
    pixels = [height * width // 4**level for level in range(4)]
    c = list(widths)
    macs = pixels[0] * 4 * c[0] * 9 + pixels[0] * c[0] * 3 * 9  # head, tail
    for level in range(3):
        macs += 2 * (2 * num_blocks) * pixels[level] * c[level] ** 2 * 9  # down and up stages
        macs += 2 * pixels[level + 1] * 4 * c[level] * c[level + 1]  # the 2×2 conv, both ways
    macs += 2 * num_blocks * pixels[3] * c[3] ** 2 * 9  # body
    return 2 * macs


def xla_flops(fn: Callable[..., Any], *args: Any) -> float | None:
    """XLA's own FLOP estimate of ``jax.jit(fn)(*args)`` (None where the backend has none)."""
    cost = jax.jit(fn).lower(*args).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list | tuple) else cost
    return None if not cost or "flops" not in cost else float(cost["flops"])


# ---------------------------------------------------------------------------------- timing


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def torch_device() -> torch.device:
    """CUDA when JAX runs on a GPU too (and PyTorch sees one), else the CPU."""
    on_gpu = jax.default_backend() == "gpu" and torch.cuda.is_available()
    return torch.device("cuda" if on_gpu else "cpu")


def synchronised(fn: Callable[[], Any], device: torch.device) -> Callable[[], Any]:
    """``fn`` followed by waiting for the device's queued kernels (CUDA runs asynchronously)."""
    if device.type != "cuda":
        return fn

    def call() -> None:
        fn()
        torch.cuda.synchronize(device)

    return call


SETTLE_BELOW = 1.0
"""Seconds: calls shorter than this get an untimed settling call before each timed one."""


def time_pair(
    jax_fn: Callable[[], Any], torch_fn: Callable[[], Any], repeats: int
) -> dict[str, Any]:
    """Warm both up, then alternate them ``repeats`` times; each call runs to completion.

    On a small CPU a call right after the other framework's runs slower: that framework's
    worker threads keep spinning for a few milliseconds after it returns (after a PyTorch call,
    the small DRUNet's JAX forward took 27.5 ms instead of 21.7; benchmarks/NOTES.md). So a
    function whose warm-up call took under :data:`SETTLE_BELOW` seconds is called once, untimed,
    right before each of its timed calls; each framework is then timed as if it ran alone, while
    load from other processes still falls on both alike.
    """
    fns = {"jax": jax_fn, "torch": torch_fn}
    warm = {k: _timed(fn) for k, fn in fns.items()}
    samples: dict[str, list[float]] = {"jax": [], "torch": []}
    for _ in range(repeats):
        for k, fn in fns.items():
            if warm[k] < SETTLE_BELOW:
                fn()
            samples[k].append(_timed(fn))
    return {
        "warmup_seconds": warm,
        "samples_seconds": samples,
        "median_seconds": {k: statistics.median(v) for k, v in samples.items()},
        "min_seconds": {k: min(v) for k, v in samples.items()},
    }


def matmul_peak(device: torch.device, n: int = 4096, repeats: int = 5) -> dict[str, float]:
    """Best float32 GFLOP/s of an ``n × n`` matmul in NumPy (CPU only), JAX and PyTorch.

    Each framework at its default precision (on a GPU, JAX's default lets XLA use TF32).
    """
    rng = np.random.default_rng(0)
    a, b = (rng.random((n, n), dtype=np.float32) for _ in range(2))
    aj, bj = jnp.asarray(a), jnp.asarray(b)
    at, bt = torch.from_numpy(a).to(device), torch.from_numpy(b).to(device)
    dot = jax.jit(jnp.dot)
    fns = {
        "numpy": lambda: a @ b,
        "jax": lambda: dot(aj, bj).block_until_ready(),
        "torch": synchronised(lambda: at @ bt, device),
    }
    if device.type != "cpu":
        del fns["numpy"]
    peaks = {}
    for name, fn in fns.items():
        fn()
        peaks[name] = 2 * n**3 / min(_timed(fn) for _ in range(repeats)) / 1e9
    peaks["best"] = max(peaks.values())
    return peaks


# ---------------------------------------------------------------------------------- workloads


@dataclasses.dataclass
class Workload:
    """One row: a name, what it does, its FLOPs, and the two zero-argument callables."""

    name: str
    work: str
    flops: int
    jax_fn: Callable[[], Any]
    torch_fn: Callable[[], Any]
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    jax_program: tuple[Callable[..., Any], tuple[Any, ...]] | None = None
    """Where ``jax_fn`` is one jitted call: the function and its arguments (for profiling)."""


class Nets:
    """The same random-init DRUNet in both frameworks (PyTorch's init, tail damped)."""

    def __init__(
        self,
        size: Size,
        memory_format: torch.memory_format,
        device: torch.device,
        seed: int = 0,
    ) -> None:
        torch.manual_seed(seed)
        self.device = device
        self.torch_net = ref.TorchDRUNet(size.widths, size.num_blocks)
        with torch.no_grad():
            self.torch_net.m_tail.weight.mul_(TAIL_DAMPING)
        self.state_dict = {k: v.clone() for k, v in self.torch_net.state_dict().items()}
        self.torch_net = self.torch_net.to(device, memory_format=memory_format)
        self.memory_format = memory_format
        self.model = drunet.DRUNet(size.widths, size.num_blocks)
        self.params = weights.params_from_torch(self.state_dict)

    def apply(self, params: Any, x: jax.Array, sigma: Any) -> jax.Array:
        return self.model.apply({"params": params}, x, sigma)

    def fresh_torch(self) -> ref.TorchDRUNet:
        """A new PyTorch DRUNet with the initial weights (training steps change them)."""
        net = ref.TorchDRUNet(self.model.widths, self.model.num_blocks)
        net.load_state_dict(self.state_dict)
        return net.to(self.device, memory_format=self.memory_format)

    def to_torch(self, x: Any) -> torch.Tensor:
        """NHWC array → NCHW tensor on the device, in the chosen memory format."""
        t = torch.from_numpy(np.array(x).transpose(0, 3, 1, 2)).to(self.device)
        return t.contiguous(memory_format=self.memory_format)


def photo_crops(batch: int, side: int, seed: int) -> np.ndarray:
    """``(batch, side, side, 3)`` float32 crops of scikit-image's colour sample photographs."""
    from skimage import data

    images = [data.astronaut(), data.chelsea(), data.coffee()]
    rng = np.random.default_rng(seed)
    crops = []
    for i in range(batch):
        image = images[i % len(images)]
        top = rng.integers(0, image.shape[0] - side + 1)
        left = rng.integers(0, image.shape[1] - side + 1)
        crops.append(image[top : top + side, left : left + side, :3])
    return np.stack(crops).astype(np.float32) / 255.0


def drunet_workloads(size: Size, nets: Nets) -> list[Workload]:
    """DRUNet forward, and forward+backward of an MSE loss w.r.t. the weights."""
    x = photo_crops(size.batch, size.patch, seed=1)
    target = photo_crops(size.batch, size.patch, seed=2)
    xj, tj = jnp.asarray(x), jnp.asarray(target)
    xt, tt = nets.to_torch(x), nets.to_torch(target)
    net = nets.torch_net

    forward = jax.jit(lambda p, x: nets.apply(p, x, SIGMA))

    def loss(p: Any, x: jax.Array, t: jax.Array) -> jax.Array:
        return jnp.mean((nets.apply(p, x, SIGMA) - t) ** 2)

    grad = jax.jit(jax.grad(loss))

    def torch_forward() -> None:
        with torch.inference_mode():
            net(xt, SIGMA)

    def torch_grad() -> None:
        net.zero_grad(set_to_none=True)
        torch.nn.functional.mse_loss(net(xt, SIGMA), tt).backward()

    flops = size.batch * drunet_flops(size.widths, size.num_blocks, size.patch, size.patch)
    shape = f"batch {size.batch}, {size.patch}×{size.patch}"
    check = {"xla_forward_flops": xla_flops(lambda p, x: nets.apply(p, x, SIGMA), nets.params, xj)}
    return [
        Workload(
            "forward",
            shape,
            flops,
            lambda: forward(nets.params, xj).block_until_ready(),
            torch_forward,
            check,
            jax_program=(forward, (nets.params, xj)),
        ),
        Workload(
            "forward+backward",
            shape,
            3 * flops,
            lambda: jax.block_until_ready(grad(nets.params, xj, tj)),
            torch_grad,
            jax_program=(grad, (nets.params, xj, tj)),
        ),
    ]


def sr_problem(
    batch: int, side: int, seed: int
) -> tuple[physics.CirculantOperator, np.ndarray, ...]:
    """``(op, gt, y)``: SR ×2 of photo crops, 8-bit measurements (the training setting)."""
    op = physics.SuperResolution(SCALE)
    gt = photo_crops(batch, side, seed)
    y = np.asarray(physics.degrade(op, jnp.asarray(gt), jax.random.key(seed), 0.0, quantize=True))
    return op, gt, y


def suppa_workload(size: Size, nets: Nets, k: int) -> Workload:
    """One SUPPA training step with exactly ``k`` forward iterations in both frameworks."""
    op, gt, y = sr_problem(size.train_batch, size.train_patch, seed=3)
    rho = admm.reference_rho(op)
    method = methods.suppa(nets.apply, op, rho=rho, max_iters=k, tol=0.0)
    optimizer = training.make_optimizer(lr=1e-4, scalar_lr=0.1)
    update = functools.partial(training.update, method, optimizer)
    step = jax.jit(update, donate_argnums=0)
    params = jax.tree.map(jnp.copy, nets.params)  # the step donates (and deletes) its state
    holder = {"state": training.init_state(method, optimizer, params)}
    batch, key = {"y": jnp.asarray(y), "gt": jnp.asarray(gt)}, jax.random.key(0)

    def jax_step() -> None:
        holder["state"], metrics = step(holder["state"], batch, key)
        holder["metrics"] = jax.block_until_ready(metrics)

    model = ref.Suppa(nets.fresh_torch()).to(nets.device)
    torch_opt = ref.make_optimizer(model, lr=1e-4, scalar_lr=0.1)
    t_op = ref.FourierOperator(np.asarray(op.kernel), op.scale, gt.shape[1:3], nets.device)
    y_t, gt_t = nets.to_torch(y), nets.to_torch(gt)
    torch_loss: dict[str, float] = {}

    def torch_step() -> None:
        loss, _ = ref.suppa_step(model, torch_opt, t_op, y_t, gt_t, rho=rho, max_iters=k, tol=0.0)
        torch_loss["loss"] = float(loss)

    forward = drunet_flops(size.widths, size.num_blocks, size.train_patch, size.train_patch)
    flops = (k + 6) * size.train_batch * forward
    work = f"batch {size.train_batch}, {size.train_patch}×{size.train_patch} HR, K={k}"

    def losses() -> dict[str, float]:
        return {"jax_loss": float(holder["metrics"]["loss"]), "torch_loss": torch_loss["loss"]}

    return Workload(f"suppa step K={k}", work, flops, jax_step, torch_step, {"losses": losses})


def restore_workload(size: Size, nets: Nets) -> Workload:
    """ADMM restoration of one image, a fixed number of iterations in both frameworks."""
    op, gt, y = sr_problem(1, size.restore_size, seed=4)
    rho, iters = admm.reference_rho(op), size.restore_iters
    denoise = jax.tree_util.Partial(nets.apply, nets.params)
    solve = jax.jit(admm.solve, static_argnames=("max_iters", "trace"))
    yj = jnp.asarray(y)

    def jax_restore() -> None:
        solution = solve(denoise, op, yj, rho=rho, sigma=SIGMA, max_iters=iters, tol=0.0)
        jax.block_until_ready(solution.x)

    t_op = ref.FourierOperator(np.asarray(op.kernel), op.scale, gt.shape[1:3], nets.device)
    y_t, net = nets.to_torch(y), nets.torch_net

    def torch_restore() -> None:
        ref.restore(net, t_op, y_t, rho=rho, sigma=SIGMA, max_iters=iters, tol=0.0)

    side = size.restore_size
    flops = iters * drunet_flops(size.widths, size.num_blocks, side, side)
    return Workload(
        "restore", f"1 image {side}×{side}, {iters} iterations", flops, jax_restore, torch_restore
    )


def workloads(size: Size, nets: Nets, ks: Sequence[int]) -> list[Workload]:
    return [
        *drunet_workloads(size, nets),
        *(suppa_workload(size, nets, k) for k in ks),
        restore_workload(size, nets),
    ]


# ---------------------------------------------------------------------------------- reporting


def environment(device: torch.device) -> dict[str, Any]:
    """Machine, versions, threads and the environment variables that change speed."""
    return {
        **common.environment(),
        "torch_device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_mkldnn": torch.backends.mkldnn.is_available(),
        "env": {k: os.environ[k] for k in ENV_KNOBS if k in os.environ},
    }


def _ms(seconds: float) -> str:
    ms = 1e3 * seconds
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.3g}"


def markdown_table(results: Sequence[dict[str, Any]], peak: float) -> str:
    header = [
        "size",
        "benchmark",
        "work",
        "JAX ms (median / min)",
        "PyTorch ms (median / min)",
        "JAX/PyTorch (median)",
        "(min)",
        "JAX GFLOP/s",
        "JAX % peak",
        "PyTorch GFLOP/s",
        "PyTorch % peak",
    ]
    rows = []
    for r in results:
        med, low = r["median_seconds"], r["min_seconds"]
        gflops = {k: r["flops"] / med[k] / 1e9 for k in med}
        row = [
            r["size"],
            r["name"],
            r["work"],
            f"{_ms(med['jax'])} / {_ms(low['jax'])}",
            f"{_ms(med['torch'])} / {_ms(low['torch'])}",
            f"**{med['jax'] / med['torch']:.2f}**",
            f"{low['jax'] / low['torch']:.2f}",
            f"{gflops['jax']:.0f}",
            f"{100 * gflops['jax'] / peak:.0f}%",
            f"{gflops['torch']:.0f}",
            f"{100 * gflops['torch'] / peak:.0f}%",
        ]
        rows.append(row)
    return common.table(header, rows)


def report(record: dict[str, Any]) -> str:
    env, peak = record["environment"], record["matmul_peak_gflops"]
    sizes = "; ".join(
        f"{s['name']}: DRUNet {'-'.join(map(str, s['widths']))} ×{s['num_blocks']}"
        f" ({s['params'] / 1e6:.2f}M params), {s['repeats']} repeats, PyTorch "
        f"{s['torch_memory_format'].replace('_', '-')}"
        for s in record["sizes"]
    )
    flags = env["env"].get("XLA_FLAGS")
    title = (
        f"JAX (jax {env['jax_version']}"
        + (f", XLA_FLAGS={flags}" if flags else "")
        + f") vs PyTorch ({env['torch_version']}, {env['torch_threads']} threads) on "
        + (env["gpu"] if env.get("gpu") else f"{env['cpu_count']} CPU cores")
        + f"; {sizes}. Times per call after a warm-up call, the two "
        "frameworks alternating; ratio < 1: JAX is faster."
    )
    each = ", ".join(f"{k} {v:.0f}" for k, v in peak.items() if k != "best")
    peak_line = (
        f"Measured float32 matmul peak (4096²): {peak['best']:.0f} GFLOP/s ({each}). GFLOP/s from "
        "the median time and the analytic count of DRUNet's convolution FLOPs (FFT and "
        "elementwise work not counted). Load average during the run: "
        f"{record['load_average']['start'][0]:.2f} at start, "
        f"{record['load_average']['end'][0]:.2f} at the end."
    )
    return "\n\n".join([title, markdown_table(record["results"], peak["best"]), peak_line])


def run_size(
    size: Size,
    ks: Sequence[int],
    memory_format: str,
    repeats: int | None,
    device: torch.device,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Time every workload of one size; returns the rows and the size's description.

    ``memory_format``: PyTorch's activation layout, ``auto`` for the size's default.
    """
    if memory_format == "auto":
        memory_format = size.torch_memory_format
    nets = Nets(size, MEMORY_FORMATS[memory_format], device)
    repeats = repeats or size.repeats
    rows = []
    for w in workloads(size, nets, ks):
        timing = time_pair(w.jax_fn, synchronised(w.torch_fn, device), repeats)
        extra = {k: (v() if callable(v) else v) for k, v in w.extra.items()}
        row = {"size": size.name, "name": w.name, "work": w.work, "flops": w.flops}
        rows.append({**row, **timing, **extra})
        med = timing["median_seconds"]
        print(
            f"  {size.name:>5} {w.name:>18}: JAX {_ms(med['jax'])} ms, "
            f"PyTorch {_ms(med['torch'])} ms, ratio {med['jax'] / med['torch']:.2f}",
            file=sys.stderr,
            flush=True,
        )
    info = {
        **dataclasses.asdict(size),
        "torch_memory_format": memory_format,
        "widths": list(size.widths),
        "repeats": repeats,
        "params": weights.count_params(nets.params),
    }
    return rows, info


def run(
    sizes: Sequence[str],
    ks: Sequence[int],
    out: Path,
    memory_format: str = "auto",
    repeats: int | None = None,
) -> dict[str, Any]:
    """Run the benchmark; write ``speed.{md,json}`` to ``out``; return the record."""
    start = time.perf_counter()
    torch.set_num_threads(os.cpu_count())
    device = torch_device()
    presets = SIZES if device.type == "cpu" else ACCELERATOR_SIZES
    load_start = os.getloadavg()
    peak = matmul_peak(device)
    results, infos = [], []
    for name in sizes:
        rows, info = run_size(presets[name], ks, memory_format, repeats, device)
        results += rows
        infos.append(info)
    record = {
        "benchmark": "speed",
        "environment": environment(device),
        "ks": list(ks),
        "sizes": infos,
        "matmul_peak_gflops": peak,
        "load_average": {"start": load_start, "end": os.getloadavg()},
        "results": results,
        "wall_seconds": round(time.perf_counter() - start, 1),
    }
    out.mkdir(parents=True, exist_ok=True)
    common.write_results(out, "speed", report(record), record)
    return record


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(","))


def _sizes(text: str) -> tuple[str, ...]:
    names = tuple(text.split(","))
    unknown = [n for n in names if n not in SIZES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown size(s) {unknown}; choose from {list(SIZES)}")
    return names


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=_sizes, default=tuple(SIZES), help="small,paper")
    p.add_argument("--ks", type=_ints, default=(5, 20, 50), help="SUPPA forward iterations")
    p.add_argument("--repeats", type=int, default=None, help="timed calls (default per size)")
    p.add_argument(
        "--torch-memory-format",
        choices=("auto", *MEMORY_FORMATS),
        default="auto",
        help="PyTorch activation layout; auto: channels-last for small, contiguous for paper",
    )
    p.add_argument("--out", type=Path, default=Path("results/speed"))
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parser().parse_args(argv)
    record = run(args.sizes, args.ks, args.out, args.torch_memory_format, args.repeats)
    print(report(record))
    print(f"\nWrote {args.out}/speed.{{md,json}} in {record['wall_seconds']:.0f} s.")
    return record


if __name__ == "__main__":
    use_fast_xla_cpu_flags()  # as the entry points do, before JAX starts its backends
    main()
