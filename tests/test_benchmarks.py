"""Benchmarks at a tiny size: their files and fields, and the memory curves' shapes.

The memory benchmark runs once (module fixture) for SUPPA (batched and sequential steps) and
explicit unrolling at K ∈ {1, 2, 8}; the tests then read what it wrote. Explicit unrolling must
grow with K and SUPPA, in both variants, must not.
"""

import dataclasses
import importlib
import json
import time
from pathlib import Path
from types import ModuleType

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from suppa_jax import data

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--widths", "4,8,8,8", "--num-blocks", "1", "--batch", "1", "--patch", "16"]
BYTE_FIELDS = (
    "argument_bytes",
    "output_bytes",
    "temp_bytes",
    "alias_bytes",
    "generated_code_bytes",
    "peak_bytes",
)


def benchmark(name: str) -> ModuleType:
    """The module ``benchmarks.<name>`` (the repository root is on pytest's path)."""
    return importlib.import_module(f"benchmarks.{name}")


@pytest.fixture(scope="module")
def memory_out(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("memory")
    methods = "suppa,suppa_sequential,unrolled"
    argv = [*TINY, "--methods", methods, "--ks", "1,2,8", "--out", str(out)]
    benchmark("memory").main(argv)
    return out


@pytest.fixture(scope="module")
def memory_record(memory_out) -> dict:
    return json.loads((memory_out / "memory.json").read_text())


def peaks(record: dict, method: str) -> dict[int, int]:
    return {r["k"]: r["peak_bytes"] for r in record["results"] if r["method"] == method}


def test_memory_writes_table_json_and_plot(memory_out, memory_record, capsys):
    table = (memory_out / "memory.md").read_text()
    assert "| `suppa` |" in table
    assert "| `unrolled` |" in table
    assert "K=8" in table
    assert "unavailable on CPU" in table
    assert (memory_out / "memory.png").read_bytes()[:4] == b"\x89PNG"

    for field in ("setup", "params", "environment", "results", "measured", "wall_seconds"):
        assert field in memory_record
    assert memory_record["setup"]["task"] == "sr2"
    assert memory_record["setup"]["patch"] == 16
    assert memory_record["environment"]["jax_version"]
    assert memory_record["environment"]["device_kind"]
    assert memory_record["measured"] is False  # the suite runs on CPU
    assert memory_record["params"] > 0
    assert len(memory_record["results"]) == 9
    for cell in memory_record["results"]:
        assert all(isinstance(cell[f], int) and cell[f] >= 0 for f in BYTE_FIELDS)
        total = cell["argument_bytes"] + cell["output_bytes"] + cell["temp_bytes"]
        assert cell["peak_bytes"] == total - cell["alias_bytes"]
        assert cell["alias_bytes"] > 0  # the state is donated
        assert cell["temp_bytes"] > 0


def test_unrolled_memory_grows_with_k(memory_record):
    unrolled = peaks(memory_record, "unrolled")
    assert unrolled[1] < unrolled[2] < unrolled[8]


@pytest.mark.parametrize("variant", ["suppa", "suppa_sequential"])
def test_suppa_memory_is_flat_in_k(memory_record, variant):
    suppa = peaks(memory_record, variant)
    assert abs(suppa[8] - suppa[2]) <= 0.05 * suppa[2]
    assert peaks(memory_record, "unrolled")[8] > suppa[8]
    settings = next(r["settings"] for r in memory_record["results"] if r["method"] == variant)
    assert settings.get("sequential", False) == (variant == "suppa_sequential")


def test_memory_over_a_family_of_operators(tmp_path):
    """inpaint_pixels draws a mask per example: the batch carries them, SUPPA stays flat in K."""
    memory = benchmark("memory")
    setup = memory.setup_from(memory.parser().parse_args([*TINY, "--task", "inpaint_pixels"]))
    assert setup.operator is None
    batch = setup.abstract_batch()
    assert batch["op"].observed.shape == (1, 16, 16, 1)
    assert batch["op"].batch_shape == (1,)
    record = memory.run(setup, ["suppa", "unrolled"], [2, 8], tmp_path, echo=False)
    suppa, unrolled = peaks(record, "suppa"), peaks(record, "unrolled")
    assert abs(suppa[8] - suppa[2]) <= 0.05 * suppa[2]
    assert unrolled[2] < unrolled[8]


def test_markdown_table_uses_gib_for_large_values():
    memory = benchmark("memory")
    cells = [{"method": "m", "k": k, "peak_bytes": int(1.5 * 2**30) + k * 2**20} for k in (2, 4)]
    table = memory.markdown_table(cells)
    assert "| `m` | 1.50 | 1.50 | 0.1% | 1.0 |" in table
    assert "GiB" in table


def test_step_time_reports_medians_and_iterations(tmp_path):
    argv = [*TINY, "--methods", "suppa,unrolled", "--max-iters", "3", "--unrolled-iters", "2"]
    record = benchmark("step_time").main([*argv, "--repeats", "3", "--out", str(tmp_path)])
    assert (tmp_path / "step_time.md").read_text().count("| `") == 2
    saved = json.loads((tmp_path / "step_time.json").read_text())
    assert saved["results"] == json.loads(json.dumps(record["results"]))
    by_method = {r["method"]: r for r in saved["results"]}
    assert by_method["unrolled"]["forward_iterations"] == 2
    assert 1 <= by_method["suppa"]["forward_iterations"] <= 3
    for r in saved["results"]:
        assert len(r["samples_seconds"]) == 3
        assert 0 < r["min_seconds"] <= r["q25_seconds"] <= r["median_seconds"] <= r["q75_seconds"]
        assert r["first_call_seconds"] >= r["median_seconds"]


def test_presets_and_overrides():
    memory = benchmark("memory")
    small = memory.setup_from(memory.parser().parse_args(["--small", "--batch", "2"]))
    assert (small.widths, small.num_blocks, small.batch, small.patch) == (
        (16, 32, 64, 128),
        1,
        2,
        48,
    )
    paper = memory.setup_from(memory.parser().parse_args(["--task", "sr4"]))
    assert paper == memory.Setup(task="sr4")
    shapes = jax.tree.map(lambda a: a.shape, paper.abstract_batch())
    assert shapes == {"y": (16, 24, 24, 3), "gt": (16, 96, 96, 3)}
    with pytest.raises(SystemExit):  # the denoiser pre-training has no K
        memory.parser().parse_args(["--methods", "suppa,denoiser"])


def test_precision_compares_psnr_and_speed_of_both_dtypes(tmp_path):
    argv = ["--size", "small", "--crop", "32", "--batch", "1", "--patch", "16", "--k", "1"]
    record = benchmark("precision").main([*argv, "--repeats", "1", "--out", str(tmp_path)])
    assert [row["task"] for row in record["psnr"]] == ["sr2", "deblur"]
    for row in record["psnr"]:
        f32, bf16 = (np.array(row["per_image_psnr"][d]) for d in ("float32", "bfloat16"))
        assert row["images"] == 3
        assert np.all(f32 > 15)
        assert np.all(bf16 > 15)
        assert row["max_abs_delta_db"] == pytest.approx(np.abs(f32 - bf16).max())
    for dtype in ("float32", "bfloat16"):
        assert set(record["speed"]["seconds"][dtype]) == {
            "forward",
            "forward+backward",
            "suppa step K=1",
        }
    assert "Within 0.05 dB on every image" in (tmp_path / "precision.md").read_text()


def test_reproduce_trains_evaluates_and_tabulates(tmp_path):
    overrides = [
        "train.epochs=1",
        "train.decay_epochs=1",
        "data.source=samples",
        "data.patches_per_image=1",
        "data.max_eval_images=1",
        "data.eval_crop=64",
        "admm.max_iters=3",
    ]
    argv = ["--tasks", "sr2", "--methods", "jfb", "--max-images", "1", "--set", *overrides]
    out, runs = tmp_path / "out", tmp_path / "runs"
    record = benchmark("reproduce").main([*argv, "--workdir", str(runs), "--out", str(out)])
    run = record["tasks"]["sr2"]["runs"]["jfb"]
    assert run["steps"] == 4  # 13 images, one patch each, batch 4: ceil(13 / 4)
    assert run["seconds"] > 0
    assert run["memory_bytes"] > 0
    assert run["validation_psnr"]["start"] > 15
    table = (out / "reproduce.md").read_text()
    for row in (
        "| bicubic |",
        "| Tikhonov |",
        "| PnP-ADMM (pre-trained) |",
        "| JFB |",
        "| `jfb` | 4 |",
    ):
        assert row in table
    assert (out / "sr2" / "psnr_per_iteration.png").stat().st_size > 0
    again = benchmark("reproduce").main([*argv, "--workdir", str(runs), "--out", str(out)])
    assert again["tasks"]["sr2"]["runs"]["jfb"]["seconds"] == run["seconds"]  # reused, not rerun


def test_time_pair_settles_short_calls_only(monkeypatch):
    speed = benchmark("speed")
    calls = {"fast": 0, "slow": 0}

    def fast():
        calls["fast"] += 1

    def slow():
        calls["slow"] += 1
        time.sleep(0.002)

    monkeypatch.setattr(speed, "SETTLE_BELOW", 0.001)
    timing = speed.time_pair(fast, slow, repeats=4)
    assert calls == {"fast": 1 + 2 * 4, "slow": 1 + 4}  # warm-up, (settle +) timed calls
    assert [len(v) for v in timing["samples_seconds"].values()] == [4, 4]
    assert timing["min_seconds"]["torch"] >= 0.002


@pytest.fixture(scope="module")
def profile_rows():
    speed, profile = benchmark("speed"), benchmark("profile_kernels")
    tiny = dataclasses.replace(speed.SIZES["small"], name="tiny", widths=(4, 8, 8, 8), batch=2)
    return profile.profile_size(dataclasses.replace(tiny, patch=16), calls=2)


def test_profile_sorts_xla_instructions_by_their_hlo():
    profile = benchmark("profile_kernels")

    def fn(x, k):
        dims = ("NHWC", "HWIO", "NHWC")
        y = jax.lax.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=dims)
        return jnp.transpose(y, (0, 2, 1, 3)) @ jnp.ones((3, 3)) + 1.0

    x, k = jnp.ones((2, 8, 8, 3)), jnp.ones((3, 3, 3, 3))
    categories = profile.hlo_instructions(jax.jit(fn).lower(x, k).compile().as_text())
    assert set(categories.values()) <= set(profile.CATEGORIES)
    kinds = {name.split(".")[0]: c for name, c in categories.items()}
    assert kinds["conv_general_dilated"] == kinds["dot"] == "convolutions"
    assert kinds["copy_bitcast_fusion"] == "layout copies"  # the transpose
    assert kinds["add_bitcast_fusion"] == "elementwise and other"


def test_profile_accounts_for_the_wall_time(profile_rows):
    """Busy times are positive and at most the wall time on 2 threads. (No lower bound: on a
    loaded machine the process is descheduled, which adds wall time and no busy time; the
    benchmark reports the ratio.)"""
    assert [r["pass"] for r in profile_rows] == ["forward", "forward+backward"]
    for row in profile_rows:
        for framework in ("jax", "torch"):
            seconds = row[framework]
            assert seconds["convolutions"] > 0
            assert all(seconds[c] >= 0 for c in benchmark("profile_kernels").CATEGORIES)
        jax_busy = sum(row["jax"][c] for c in benchmark("profile_kernels").CATEGORIES)
        assert 0 < jax_busy <= 2 * row["jax"]["wall"]  # 2 threads


def test_grid_score_finds_periodic_texture(rng):
    grid_score = benchmark("denoise").grid_score
    noise = rng.standard_normal((64, 64, 3))
    assert 0.5 < grid_score(noise) < 2
    rows = np.arange(64)[:, None, None] * np.ones((1, 64, 3))
    lattice = np.cos(2 * np.pi * rows / 8)
    assert grid_score(0.1 * noise + lattice) > 50


def test_denoise_benchmark_tabulates_every_denoiser(tmp_path, capsys):
    weights = ROOT / "weights" / "drunet_cpu_denoiser.msgpack"
    argv = ["--weights", str(weights), "--max_images", "1", "--crop", "64", "--levels", "25"]
    assert benchmark("denoise").main([*argv, "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "denoise.json").read_text())
    (row,) = record["rows"]
    assert row["image"] == "photo:chelsea"
    assert row["level"] == 25
    for name in ("drunet_cpu_denoiser", "BM3D", "wavelet", "NLM"):
        assert row[name] > row["noisy"] + 3, (name, row)
    (identity,) = record["identity"]["drunet_cpu_denoiser"]
    assert 25 < identity["psnr"] < 80
    assert identity["colour_shift"] >= 0
    assert "| BM3D |" in (tmp_path / "denoise.md").read_text()


def test_gallery_restores_crops_with_every_row(tmp_path):
    gallery = importlib.import_module("benchmarks.gallery")
    crops = data.ArraySource(
        [np.asarray(data.held_out_photos()[i])[:32, :48] for i in range(2)], ["a", "b"]
    )
    result = gallery.gallery("sr2", crops, tmp_path)
    rows = ["bicubic", "Tikhonov", "PnP-ADMM (pre-trained)", "DPIR-HQS (pre-trained)", "SUPPA"]
    assert list(result.means) == rows
    assert len(result.rows) == 2 * len(rows)
    assert all(np.isfinite(row["psnr_rgb"]) for row in result.rows)
    assert (tmp_path / "gallery_sr2.jpg").stat().st_size > 0


def test_pipeline_measures_every_setting_and_cache_state(tmp_path):
    argv = ["--images", "2", "--size", "260,300", "--batches", "2", "--uncached-batches", "1"]
    record = benchmark("pipeline").main([*argv, "--out", str(tmp_path)])
    rows = {(r["setting"], r["cache"]): r for r in record["results"]}
    assert set(rows) == {(s, c) for s in ("sr2", "deblur") for c in ("no cache", "cold", "warm")}
    assert rows["sr2", "warm"]["patch"] * rows["sr2", "warm"]["scale"] == 96
    assert all(
        r["patches_per_second"] > 0 and r["patches_per_cpu_second"] > 0 for r in rows.values()
    )
    assert rows["sr2", "cold"]["patches"] == 2 * rows["sr2", "cold"]["batch"]
    table = (tmp_path / "pipeline.md").read_text()
    assert "| deblur (patch 256²) | warm |" in table


def test_xla_flags_times_each_accepted_candidate_and_names_refused_ones(tmp_path, monkeypatch):
    xla_flags = benchmark("xla_flags")
    monkeypatch.setattr(xla_flags, "SIZES", {"small": ((4, 8, 8, 8), 1)})
    monkeypatch.setattr(xla_flags, "BATCH", 2)
    monkeypatch.setattr(xla_flags, "PATCH", 16)
    known = dict(xla_flags.CANDIDATES)
    monkeypatch.setitem(xla_flags.CANDIDATES, "unknown", {"xla_cpu_no_such_option": "1"})
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    xla_flags.main(["--repeats", "2", "--out", str(tmp_path)])
    (written,) = tmp_path.glob("jaxlib-*.json")
    record = json.loads(written.read_text())
    timed = [r for r in record["rows"] if "refused" not in r]
    assert {(r["candidate"], r["workload"]) for r in timed} == {
        (c, w) for c in known for w in ("forward", "forward+backward")
    }
    assert all(len(r["samples_seconds"]["default"]) == 2 for r in timed)
    assert all(r["default_ms"] > 0 and r["with_option_ms"] > 0 for r in timed)
    (refused,) = [r for r in record["rows"] if "refused" in r]
    assert refused["candidate"] == "unknown"
    assert "xla_cpu_no_such_option" in refused["refused"]
    assert "not accepted" in written.with_suffix(".md").read_text()
