"""Evaluation: metrics against direct formulas, ``evaluate.py`` end to end, and its errors.

The end-to-end runs use a tiny DRUNet, two random images of odd sizes and three iterations, so
that compilation dominates; the workdir is faked with just the files ``evaluate.py`` reads
(``config.json`` and an orbax ``best/<step>/trainable``).
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from PIL import Image

from suppa_jax import build, classical, convert, demo, evaluation, metrics, physics, tasks
from suppa_jax import config as config_lib
from suppa_jax.models import drunet, weights

ROOT = Path(__file__).resolve().parents[1]
SIZES = ((37, 45), (41, 35))  # odd: neither multiples of 8 nor of the scale
STORED_SIGMA = {"sr2": 0.04, "deblur": 0.06}


def numpy_psnr(x: np.ndarray, reference: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((np.float64(x) - np.float64(reference)) ** 2)))


@pytest.fixture(scope="module")
def params_file(tmp_path_factory) -> Path:
    """A tiny random DRUNet, shrunk so that the ADMM iteration stays bounded, with the PnP
    levels :data:`STORED_SIGMA` stored in its file."""
    model = drunet.DRUNet(widths=(8, 8, 8, 8), num_blocks=1)
    params = jax.jit(model.init)(jax.random.key(0), np.zeros((1, 8, 8, 3), np.float32), 0.1)
    path = tmp_path_factory.mktemp("weights") / "tiny.msgpack"
    weights.save_params(path, jax.tree.map(lambda p: 0.3 * p, params["params"]), STORED_SIGMA)
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Two random RGB PNGs of odd sizes."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(1)
    for i, (h, w) in enumerate(SIZES):
        smooth = rng.uniform(0, 255, (h // 4 + 2, w // 4 + 2, 3))
        image = np.asarray(Image.fromarray(smooth.astype(np.uint8)).resize((w, h), Image.BICUBIC))
        noisy = np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(root / f"img{i}.png")
    return root


def write_workdir(
    path: Path, params_file: Path, config_overrides: dict | None = None, **overrides
) -> Path:
    """The files evaluate.py reads from a train.py workdir: config.json and best/3/trainable
    (an SR ×2 SUPPA run unless ``config_overrides`` say otherwise)."""
    config = config_lib.apply_overrides(
        config_lib.experiment("sr", scale=2, cpu=True),
        {
            "model.widths": (8, 8, 8, 8),
            "model.num_blocks": 1,
            "model.residual": False,
            "model.init": str(params_file),
            **(config_overrides or {}),
        },
    )
    path.mkdir(parents=True)
    (path / "config.json").write_text(config.to_json_best_effort(indent=2))
    trainable = {
        "denoiser": weights.load_params(params_file)[1],
        "sigma": jnp.float32(0.05),
        "lam": jnp.float32(0.5),
        **overrides,
    }
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save((path / "best" / "3" / "trainable").resolve(), trainable)
    checkpointer.wait_until_finished()
    return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, params_file) -> Path:
    return write_workdir(tmp_path_factory.mktemp("run") / "sr2_run", params_file)


# ------------------------------------------------------------------------------------ metrics


def test_psnr_y_matches_the_bt601_formula_with_border(rng):
    x = rng.uniform(0, 1, (2, 20, 24, 3)).astype(np.float32)
    reference = np.clip(x + rng.normal(0, 0.05, x.shape), 0, 1).astype(np.float32)
    w = np.array([65.481, 128.553, 24.966])

    def luma(a: np.ndarray) -> np.ndarray:
        return 16 / 255 + (np.float64(a) @ w) / 255

    for border in (0, 2, 3):
        got = np.asarray(metrics.psnr_y(jnp.asarray(x), jnp.asarray(reference), border))
        crop = (slice(None), slice(border, 20 - border), slice(border, 24 - border))
        want = [numpy_psnr(luma(x)[crop][i], luma(reference)[crop][i]) for i in range(2)]
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-4)
    # The border matters: errors placed only in the border do not count once it is cropped.
    edged = reference.copy()
    edged[:, :2] = 1 - edged[:, :2]
    assert float(metrics.psnr_y(jnp.asarray(edged), jnp.asarray(reference), 2)[0]) == np.inf
    assert np.isfinite(float(metrics.psnr_y(jnp.asarray(edged), jnp.asarray(reference), 1)[0]))
    np.testing.assert_allclose(
        np.asarray(metrics.rgb_to_y(jnp.ones((1, 1, 3)))), [[[235 / 255]]], atol=1e-6
    )
    with pytest.raises(ValueError, match="border of 12"):
        metrics.psnr_y(jnp.asarray(x), jnp.asarray(reference), 12)


def test_ssim_is_one_for_identical_images_and_drops_with_noise(rng):
    x = jnp.asarray(rng.uniform(0, 1, (2, 32, 40, 3)), jnp.float32)
    noise = jnp.asarray(rng.normal(size=x.shape), jnp.float32)
    np.testing.assert_allclose(np.asarray(metrics.ssim(x, x)), [1.0, 1.0], atol=1e-5)
    mild = np.asarray(metrics.ssim(jnp.clip(x + 0.1 * noise, 0, 1), x))
    strong = np.asarray(metrics.ssim(jnp.clip(x + 0.3 * noise, 0, 1), x))
    assert np.all(np.isfinite(strong))
    assert np.all(strong < mild)
    assert np.all(mild < 0.99)


def test_task_names_and_mismatch_messages():
    for task in tasks.task_names():
        assert evaluation.task_name(evaluation.task_config(task)) == task
    assert build.build_operator(evaluation.task_config("sr3")).scale == 3
    with pytest.raises(ValueError, match=r"--task=deblur but run was trained for sr2.*task.kind"):
        evaluation.check_task("deblur", evaluation.task_config("sr2"), "run")
    with pytest.raises(ValueError, match="unknown task 'sr5'"):
        evaluation.task_config("sr5")


def test_tune_pnp_sigma_picks_the_best_of_the_grid(params_file, rng):
    denoiser = weights.load_prior(params_file).denoiser
    crops = rng.uniform(0, 1, (2, 16, 16, 3)).astype(np.float32)
    op = physics.SuperResolution(2)
    best, scores = evaluation.tune_pnp_sigma(
        denoiser, op, crops, noise_sigma=0.0, grid=(0.01, 0.3), max_iters=2
    )
    assert list(scores) == [0.01, 0.3]
    assert all(np.isfinite(list(scores.values())))
    assert scores[0.01] != scores[0.3]
    assert best == max(scores, key=scores.get)


def test_demo_rows_use_the_shipped_denoiser():
    for task in demo.TASKS:
        rows = demo.restorers(task)
        assert [r.label for r in rows][:4] == [
            "bicubic" if task.startswith("sr") else "initial(y)",
            "Tikhonov",
            "PnP-ADMM (pre-trained)",
            "DPIR-HQS (pre-trained)",
        ]
        assert rows[1].info["mu"] == tasks.get_task(task).tikhonov_mu
        assert rows[2].info["sigma"] == weights.load_prior(demo.DENOISER).pnp_sigma[task]
        assert len(rows) == 4 + len(demo.MODELS[task])


# ------------------------------------------------------------------------------- end to end


def test_evaluate_workdir_end_to_end(workdir, folder, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--checkpoint", str(workdir), "--task", "sr2", "--data", f"folder:{folder}"]
    assert evaluation.main([*argv, "--max_iters", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| bicubic | ×2 |" in printed
    assert "| SUPPA |" in printed
    assert "RGB PSNR (dB) per image:" in printed

    report = json.loads((out / "results.json").read_text())
    assert report["task"] == "sr2"
    assert report["methods"] == [
        "bicubic",
        "Tikhonov",
        "PnP-ADMM (pre-trained)",
        "DPIR-HQS (pre-trained)",
        "SUPPA",
    ]
    assert report["settings"]["pnp"]["sigma"] == STORED_SIGMA["sr2"]  # the prior's own
    assert report["settings"]["dpir"]["iterations"] == 24  # DPIR's count for SR
    assert report["settings"]["dpir"]["noise_sigma"] == 0.0
    assert report["settings"]["model"]["step"] == 3
    (dataset,) = report["datasets"]
    assert dataset["images"] == 2
    rows = dataset["per_image"]
    assert len(rows) == 10
    dpir_curve = dataset["psnr_per_iteration"]["DPIR-HQS (pre-trained)"]
    assert len(dpir_curve) == 25  # z_0 .. z_24, a fixed schedule
    assert dpir_curve[0] == pytest.approx(dataset["mean"]["bicubic"]["psnr_rgb"], abs=1e-4)
    assert dpir_curve[-1] == pytest.approx(
        dataset["mean"]["DPIR-HQS (pre-trained)"]["psnr_rgb"], abs=1e-4
    )
    for method in ("PnP-ADMM (pre-trained)", "SUPPA"):
        curve = dataset["psnr_per_iteration"][method]
        assert len(curve) == 4  # x_0 .. x_3
        its = [r["iterations"] for r in rows if r["method"] == method]
        assert all(1 <= i <= 3 for i in its)
        assert dataset["mean"][method]["iterations"] == pytest.approx(np.mean(its))
        psnrs = [r["psnr_rgb"] for r in rows if r["method"] == method]
        assert dataset["mean"][method]["psnr_rgb"] == pytest.approx(np.mean(psnrs))
        drops = [r["drop"] for r in rows if r["method"] == method]
        assert min(drops) >= 0
        assert dataset["mean"][method]["drop"] == pytest.approx(max(drops))
        # The curve starts at the bicubic estimate and ends at the reported estimate.
        assert curve[0] == pytest.approx(dataset["mean"]["bicubic"]["psnr_rgb"], abs=1e-4)
        assert curve[-1] == pytest.approx(np.mean(psnrs), abs=1e-4)

    # Recompute the bicubic PSNR of each image independently from the files.
    op = physics.SuperResolution(2)
    for index, (h, w) in enumerate(SIZES):
        image = np.asarray(Image.open(folder / f"img{index}.png"), np.float32) / 255
        hr = image[None, : h // 2 * 2, : w // 2 * 2]
        y = physics.degrade_batch(op, {"hr": hr, "seed": np.array([index], np.uint32)})["y"]
        x0 = np.asarray(physics.bicubic_upsample(y, 2))
        row = next(
            r for r in rows if r["method"] == "bicubic" and r["image"].endswith(f"{index}.png")
        )
        assert row["psnr_rgb"] == pytest.approx(numpy_psnr(x0[0], hr[0]), abs=1e-3)
        assert row["iterations"] == 0
        tikhonov = np.asarray(classical.tikhonov(op, y, tasks.get_task("sr2").tikhonov_mu))
        row = next(
            r for r in rows if r["method"] == "Tikhonov" and r["image"].endswith(f"{index}.png")
        )
        assert row["psnr_rgb"] == pytest.approx(numpy_psnr(tikhonov[0], hr[0]), abs=1e-3)
        saved_y = np.asarray(
            Image.open(out / "images" / folder.name / f"{index:03d}_img{index}_y.png")
        )
        np.testing.assert_array_equal(saved_y, np.round(np.asarray(y[0]) * 255).astype(np.uint8))

    names = {p.name for p in (out / "images" / folder.name).iterdir()}
    for index in range(2):
        for suffix in ("gt", "y", "bicubic", "tikhonov", "pnp", "dpir", "suppa"):
            assert f"{index:03d}_img{index}_{suffix}.png" in names
    gt = Image.open(out / "images" / folder.name / "000_img0_gt.png")
    assert gt.size == (44, 36)  # cropped to a multiple of the scale, not resized
    for name in ("results.md", "results.csv", "psnr_per_iteration.png", f"grid_{folder.name}.png"):
        assert (out / name).stat().st_size > 0
    csv_lines = (out / "results.csv").read_text().splitlines()
    assert csv_lines[0] == "dataset,image,method,psnr_rgb,psnr_y,ssim,iterations,drop"
    assert len(csv_lines) == 1 + 10 + 5  # a row per image and method, then the means
    assert "| Method | Scale |" in (out / "results.md").read_text()


def test_params_file_checkpoint_is_pnp_on_several_datasets(params_file, folder, tmp_path):
    second = tmp_path / "second"
    second.mkdir()
    shutil.copy(folder / "img0.png", second / "only.png")
    out = tmp_path / "out"
    argv = ["--checkpoint", str(params_file), "--task", "sr2", "--max_iters", "3"]
    assert evaluation.main([*argv, "--data", f"{folder},folder:{second}", "--out", str(out)]) == 0
    report = json.loads((out / "results.json").read_text())
    assert report["methods"] == ["bicubic", "Tikhonov", "DPIR-HQS (pre-trained)", "PnP-ADMM (tiny)"]
    assert [d["images"] for d in report["datasets"]] == [2, 1]
    first, other = report["datasets"]
    # The same image and seed index give the same measurement and restoration.
    assert other["per_image"][1]["psnr_rgb"] == pytest.approx(first["per_image"][1]["psnr_rgb"])
    assert (out / "grid_second.png").is_file()


def test_a_run_on_an_unnamed_task_is_evaluated_on_its_own_task(
    params_file, folder, tmp_path, capsys, monkeypatch
):
    """A run trained with a Gaussian SR kernel and noise is evaluated on exactly that task: its
    Tikhonov μ is tuned (no stored one), and so is the PnP σ (the prior stores one for sr2)."""
    task = {"task.kernel": "gaussian", "task.blur_sigma": 0.8, "task.blur_size": 5}
    run = write_workdir(tmp_path / "run", params_file, {**task, "task.noise_sigma": 0.02})
    crops = np.random.default_rng(0).uniform(0, 1, (2, 24, 24, 3)).astype(np.float32)
    tuned = []

    def small_tuning(*args, **kwargs):
        tuned.append(kwargs["noise_sigma"])
        return real_tuning(*args, **kwargs, grid=(0.02, 0.1), max_iters=2)

    real_tuning = evaluation.tuning.tune_pnp_sigma
    monkeypatch.setattr(evaluation.tuning, "_training_crops", lambda: crops)
    monkeypatch.setattr(evaluation.tuning, "tune_pnp_sigma", small_tuning)
    out = tmp_path / "out"
    argv = ["--checkpoint", str(run), "--data", f"folder:{folder}", "--max_iters", "2"]
    assert evaluation.main([*argv, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    label = "sr2 (kernel='gaussian', noise_sigma=0.02, blur_sigma=0.8, blur_size=5)"
    assert f"task {label}" in printed
    assert f"no PnP σ is stored with {params_file} for {label}: tuning it" in printed
    assert f"Tikhonov μ on the training crops ({label})" in printed
    assert tuned == [0.02]  # tuned on measurements with the run's noise
    report = json.loads((out / "results.json").read_text())
    assert report["task"] == label
    assert report["settings"]["task"]["noise_sigma"] == 0.02
    assert report["settings"]["task"]["blur_sigma"] == 0.8
    assert report["settings"]["pnp"]["sigma"] in (0.02, 0.1)
    assert report["settings"]["model"]["method"] == "suppa"
    # A named task other than the run's is refused, naming the fields that differ.
    message = error_of([*argv, "--task", "sr2", "--out", str(out)], capsys)
    assert "task mismatch: --task=sr2" in message
    assert "task.noise_sigma 0.0 vs 0.02" in message
    assert "task.kernel 'bicubic' vs 'gaussian'" in message


def test_pnp_sigma_is_the_priors_own(params_file, monkeypatch):
    """'default' is the level stored in the prior's file for the named task; a prior without
    one for that task is tuned (never another denoiser's level)."""
    prior = weights.load_prior(params_file)
    assert prior.pnp_sigma == STORED_SIGMA
    logs = []
    sr2, sr3 = evaluation.task_config("sr2"), evaluation.task_config("sr3")
    assert evaluation.resolve_pnp_sigma("default", prior, sr2, logs.append) == 0.04
    assert evaluation.resolve_pnp_sigma(0.07, prior, sr2, logs.append) == 0.07
    assert logs == []
    monkeypatch.setattr(
        evaluation.tuning, "tune_pnp_sigma", lambda *a, **k: (0.015, {0.015: 30.0, 0.03: 29.0})
    )
    monkeypatch.setattr(evaluation.tuning, "_training_crops", lambda: np.zeros((1, 8, 8, 3)))
    assert evaluation.resolve_pnp_sigma("default", prior, sr3, logs.append) == 0.015
    assert logs[0].endswith("for sr3: tuning it")
    assert logs[1].endswith("0.015: 30.00 dB, 0.03: 29.00 dB → 0.015")
    assert evaluation.resolve_pnp_sigma("tune", prior, sr2, logs.append) == 0.015  # asked


def test_stored_pnp_sigma_round_trips_and_bad_levels_are_named(params_file, tmp_path, capsys):
    out = tmp_path / "with_sigma.msgpack"
    assert convert.main([str(params_file), str(out), "--pnp_sigma", "sr3=0.02,deblur=0.05"]) == 0
    assert "PnP σ {'sr3': 0.02, 'deblur': 0.05}" in capsys.readouterr().out
    assert weights.load_prior(out).pnp_sigma == {"sr3": 0.02, "deblur": 0.05}
    kept = tmp_path / "kept.msgpack"
    assert convert.main([str(params_file), str(kept)]) == 0  # a msgpack keeps its levels
    assert weights.load_prior(kept).pnp_sigma == STORED_SIGMA
    params = weights.load_prior(params_file).params
    with pytest.raises(ValueError, match=r"pnp_sigma\['sr2'\] must be a noise level in \(0, 1\]"):
        weights.save_params(tmp_path / "bad.msgpack", params, {"sr2": 8})
    with pytest.raises(SystemExit):
        convert.main([str(params_file), str(out), "--pnp_sigma", "sr9=0.1"])
    assert "'sr9' is not a named task" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ errors


def error_of(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        evaluation.main(argv)
    assert exit_info.value.code == 2
    message = capsys.readouterr().err.strip()
    assert len(message.splitlines()) == 1
    return message


def test_bad_checkpoints_are_one_line_errors(workdir, params_file, folder, tmp_path, capsys):
    data_args = ["--data", f"folder:{folder}", "--out", str(tmp_path / "out")]
    missing = error_of(
        ["--checkpoint", str(tmp_path / "nope"), "--task", "sr2", *data_args], capsys
    )
    assert "does not exist" in missing
    assert "nope" in missing

    mismatch = error_of(["--checkpoint", str(workdir), "--task", "deblur", *data_args], capsys)
    assert "task mismatch: --task=deblur" in mismatch
    assert "trained for sr2" in mismatch

    wrong_arch = tmp_path / "wrong_arch"
    shutil.copytree(workdir, wrong_arch)
    config = json.loads((wrong_arch / "config.json").read_text())
    config["model"]["widths"] = [16, 16, 16, 16]
    (wrong_arch / "config.json").write_text(json.dumps(config))
    arch = error_of(["--checkpoint", str(wrong_arch), *data_args], capsys)
    assert "architecture mismatch" in arch
    assert "the parameters of drunet (widths (16, 16, 16, 16)" in arch  # what the config says
    assert "has shape (3, 3, 8, 8), expected (3, 3, 16, 16)" in arch  # what the checkpoint holds

    wrong_method = write_workdir(tmp_path / "wrong_method", params_file, lam=jnp.ones(3))
    assert "method mismatch" in error_of(["--checkpoint", str(wrong_method), *data_args], capsys)

    not_a_run = tmp_path / "empty_dir"
    not_a_run.mkdir()
    not_a_run_error = error_of(["--checkpoint", str(not_a_run), *data_args], capsys)
    assert "not a train.py workdir" in not_a_run_error

    text = tmp_path / "weights.txt"
    text.write_text("not weights")
    assert "not a params file" in error_of(
        ["--checkpoint", str(text), "--task", "sr2", *data_args], capsys
    )
    assert "--task is needed" in error_of(["--checkpoint", str(params_file), *data_args], capsys)


def test_bad_data_is_a_clear_error(workdir, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    base = ["--checkpoint", str(workdir), "--out", str(tmp_path / "out")]
    assert "no images" in error_of([*base, "--data", f"folder:{empty}"], capsys)
    assert "not 'samples'" in error_of([*base, "--data", str(tmp_path / "absent")], capsys)
    assert "--pnp_sigma must be in (0, 1]" in error_of([*base, "--pnp_sigma", "8"], capsys)
    absent = error_of([*base, "--pretrained", str(tmp_path / "absent.msgpack")], capsys)
    assert "absent.msgpack' does not exist" in absent
    assert "--no_pnp" in absent


def test_evaluate_script_exits_with_status_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "evaluate.py", "--checkpoint", str(tmp_path / "absent"), "--task", "sr2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "evaluate.py: error: checkpoint" in result.stderr
    assert "does not exist" in result.stderr
