"""The experiment configs: every file loads and validates, has the paper's values, takes
command-line overrides, and bad values or unknown keys fail at start-up naming the key."""

import math
from pathlib import Path

import numpy as np
import pytest
from ml_collections import ConfigDict

from suppa_jax import cli, evaluation, methods, physics
from suppa_jax import config as cfg
from suppa_jax.data import DeadLeaves, build_source
from suppa_jax.solvers import admm

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
PAPER = {
    "sr_x2.py": ("sr", 2),
    "sr_x3.py": ("sr", 3),
    "sr_x4.py": ("sr", 4),
    "deblur_gaussian.py": ("deblur", 1),
}
DENOISER = "denoiser.py"
#: The files of named tasks beyond the paper's (config.task_experiment).
NAMED = {
    f"{task}.py": task
    for task in (
        "demosaic",
        "inpaint_pixels",
        "inpaint_boxes",
        "deblur_random",
        "deblur_valid",
        "sr2_imresize",
    )
}
CPU = {name.replace(".py", "_cpu.py"): name for name in [*PAPER, DENOISER, *NAMED]}
ALL_FILES = sorted([*PAPER, DENOISER, *NAMED, *CPU])


def parse(*args: str, config_file: str = "sr_x2.py") -> ConfigDict:
    """``--config=configs/<config_file> *args`` as ``train.py`` reads them (suppa_jax.cli)."""
    config = cli.load_config(str(CONFIGS / config_file))
    return cfg.apply_overrides(config, cli.config_overrides(args, config))


def overridden(overrides: dict, config_file: str = "sr_x2.py") -> ConfigDict:
    return cfg.apply_overrides(parse(config_file=config_file), overrides)


# ------------------------------------------------------------------------------ the files


def test_config_folder_holds_exactly_the_documented_files():
    assert sorted(p.name for p in CONFIGS.glob("*.py")) == ALL_FILES
    readme = (CONFIGS / "README.md").read_text()
    for name in ALL_FILES:
        assert f"`{name}`" in readme, name


@pytest.mark.parametrize("name", ALL_FILES)
def test_every_config_file_loads_locked_and_validates(name):
    config = parse(config_file=name)
    cfg.validate(config)
    assert config.is_locked
    assert set(cfg.flatten(config)) == set(cfg.flatten(cfg.base()))


@pytest.mark.parametrize("name", sorted(PAPER))
def test_paper_configs_have_the_papers_hyperparameters(name):
    kind, scale = PAPER[name]
    config = parse(config_file=name)
    operator = physics.SuperResolution(scale) if kind == "sr" else physics.Blur(np.ones((3, 3)))
    assert config.method == "suppa"
    assert (config.task.kind, config.task.scale) == (kind, scale)
    assert (config.train.batch_size, config.train.epochs) == (16, 75)
    assert (config.train.lr, config.train.scalar_lr) == (1e-4, 0.1)
    assert (config.train.decay_epochs, config.train.decay_rate) == (40, 0.1)
    assert config.model.widths == (64, 128, 256, 512)
    assert config.model.num_blocks == 4
    assert config.model.init == cfg.DPIR_DENOISER
    assert (config.admm.sigma, config.admm.lam, config.admm.random_states) == (0.1, 1.0, 1)
    assert (config.admm.unrolled_iters, config.admm.max_iters, config.admm.tol) == (6, 50, 1e-3)
    assert config.admm.rho == 0.1 * scale**2 == pytest.approx(admm.reference_rho(operator))
    assert (config.data.patch * scale) % 8 == 0
    assert config.data.patches_per_image == 1
    assert config.data.eval_crop == 0
    assert config.task.quantize
    if kind == "sr":
        assert (config.task.kernel, config.task.bicubic_a, config.task.noise_sigma) == (
            "bicubic",
            -0.75,
            0.0,
        )
        assert (config.data.patch, config.data.source, config.data.feature) == (48, cfg.DIV2K, "hr")
    else:
        assert (config.task.kernel, config.task.blur_sigma, config.task.blur_size) == (
            "gaussian",
            2.0,
            11,
        )
        assert (config.task.noise_sigma, config.data.patch) == (0.01, 256)
        assert config.data.source.startswith("folder:")
        assert "waterloo" in config.data.source


@pytest.mark.parametrize("name", sorted(NAMED))
def test_named_task_configs_make_their_tasks_measurements(name):
    """Each file trains its named task with the paper's recipe."""
    task = NAMED[name]
    config = parse(config_file=name)
    assert config.method == "suppa"
    assert (config.train.batch_size, config.train.epochs, config.model.init) == (
        16,
        75,
        cfg.DPIR_DENOISER,
    )
    assert evaluation.task_name(config.task) == task


def test_denoiser_config_pretrains_from_random_init_over_the_noise_range():
    config = parse(config_file=DENOISER)
    assert (config.method, config.task.kind, config.task.scale) == ("denoiser", "denoise", 1)
    assert config.model.init == ""
    assert config.model.widths == (64, 128, 256, 512)
    assert (config.denoiser.sigma_min, config.denoiser.sigma_max) == (0.0, 50 / 255)
    assert config.task.noise_sigma == 25 / 255
    assert not config.task.quantize


@pytest.mark.parametrize(("cpu_name", "paper_name"), sorted(CPU.items()))
def test_cpu_variants_differ_from_paper_configs_only_in_the_documented_fields(cpu_name, paper_name):
    paper, cpu = (
        cfg.flatten(parse(config_file=paper_name)),
        cfg.flatten(parse(config_file=cpu_name)),
    )
    kind = cpu["task.kind"]
    documented = cfg.cpu_overrides(kind, NAMED.get(paper_name))
    assert {path: cpu[path] for path in paper} == paper | documented
    assert cpu["model.widths"] == (24, 48, 96, 192)
    assert cpu["model.num_blocks"] == 1
    assert cpu["data.source"] == cfg.CPU_DATA
    assert cpu["data.eval_source"] == "deadleaves"  # never the photos evaluation reports
    assert cpu["train.batch_size"] <= 8
    source = build_source(
        cpu["data.source"],
        "train",
        deadleaves=DeadLeaves(size=8),
        deadleaves_images=cpu["data.deadleaves_images"],
    )
    steps = cpu["train.epochs"] * cpu["data.patches_per_image"] * len(source)
    assert steps / cpu["train.batch_size"] <= 5_000  # at most an hour on a 2-core CPU
    assert cpu["model.init"] == ("" if kind == "denoise" else cfg.CPU_DENOISER)
    if kind != "denoise":
        assert cpu["admm.max_iters"] <= paper["admm.max_iters"]


# ---------------------------------------------------------------------- command line


def test_command_line_overrides_set_fields_with_their_types():
    config = parse(
        "--config.train.lr=1e-5",
        "--config.method=deq",
        "--config.model.widths=(16, 32, 64, 64)",
        "--config.data.augment=False",
        "--config.admm.max_iters=7",
    )
    assert config.train.lr == 1e-5
    assert isinstance(config.train.lr, float)
    assert config.method == "deq"
    assert config.model.widths == (16, 32, 64, 64)
    assert config.data.augment is False
    assert config.admm.max_iters == 7
    assert isinstance(config.admm.max_iters, int)
    cfg.validate(config)


@pytest.mark.parametrize(("flag", "key"), [("train.lrr", "lrr"), ("trian.lr", "trian")])
def test_unknown_override_key_fails_naming_the_key(flag, key):
    with pytest.raises(ValueError, match=key):
        parse(f"--config.{flag}=1")


def test_override_of_the_wrong_type_fails_naming_the_flag():
    with pytest.raises(ValueError, match=r"config\.train\.lr"):
        parse("--config.train.lr=abc")


def test_locked_config_refuses_new_keys():
    config = parse()
    with pytest.raises(AttributeError, match="lrr"):
        config.train.lrr = 1e-5
    with pytest.raises(KeyError, match=r"config\.train\.lrr is not a known field"):
        cfg.apply_overrides(config, {"train.lrr": 1e-5})
    with pytest.raises(KeyError, match=r"config\.trian\.lr is not a known field"):
        cfg.apply_overrides(config, {"trian.lr": 1e-5})


# ------------------------------------------------------------------------- validation

INVALID = [
    # (overrides, config file, expected message, a regular expression)
    ({"train.lr": -1e-5}, "sr_x2.py", r"^config\.train\.lr must be > 0, got -1e-05$"),
    ({"train.lr": 0.0}, "sr_x2.py", r"config\.train\.lr must be > 0"),
    ({"train.lr": math.nan}, "sr_x2.py", r"config\.train\.lr must be finite, got nan"),
    ({"train.scalar_lr": 0.0}, "sr_x2.py", r"config\.train\.scalar_lr must be > 0"),
    ({"train.admm_lr": -1.0}, "sr_x2.py", r"config\.train\.admm_lr must be > 0"),
    ({"train.epochs": 0}, "sr_x2.py", r"config\.train\.epochs must be >= 1, got 0"),
    ({"train.batch_size": -16}, "sr_x2.py", r"config\.train\.batch_size must be >= 1"),
    ({"train.decay_epochs": 0}, "sr_x2.py", r"config\.train\.decay_epochs must be >= 1"),
    ({"train.decay_rate": 0.0}, "sr_x2.py", r"config\.train\.decay_rate must be in \(0, 1\]"),
    ({"train.decay_rate": 1.5}, "sr_x2.py", r"config\.train\.decay_rate must be in \(0, 1\]"),
    ({"train.seed": -1}, "sr_x2.py", r"config\.train\.seed must be >= 0"),
    ({"train.log_every_steps": 0}, "sr_x2.py", r"config\.train\.log_every_steps must be >= 1"),
    ({"train.keep_checkpoints": 0}, "sr_x2.py", r"config\.train\.keep_checkpoints must be >= 1"),
    ({"method": "sgd"}, "sr_x2.py", r"config\.method must be one of .*'jfb'.*, got 'sgd'"),
    ({"method": "denoiser"}, "sr_x2.py", r"config\.method 'denoiser' does not fit .*'sr'"),
    ({"method": "suppa"}, "denoiser.py", r"config\.method 'suppa' does not fit .*'denoise'"),
    ({"task.kind": "dehaze"}, "sr_x2.py", r"config\.task\.kind must be one of"),
    ({"task.scale": 5}, "sr_x2.py", r"config\.task\.scale must be one of \[2, 3, 4\].*got 5"),
    ({"task.scale": 1}, "sr_x2.py", r"config\.task\.scale must be one of \[2, 3, 4\]"),
    ({"task.scale": 2}, "deblur_gaussian.py", r"config\.task\.scale must be 1 for kind 'deblur'"),
    ({"task.kernel": "box"}, "sr_x2.py", r"config\.task\.kernel must be one of \['bicubic', 'ga"),
    ({"task.kernel": "bicubic"}, "deblur_gaussian.py", r"config\.task\.kernel must be one of \["),
    ({"task.kernel": "gaussian"}, "denoiser.py", r"config\.task\.kernel must be one of \['id"),
    ({"task.noise_sigma": -0.01}, "sr_x2.py", r"config\.task\.noise_sigma must be in \[0, 1\]"),
    ({"task.noise_sigma": 2.55}, "deblur_gaussian.py", r"config\.task\.noise_sigma .*25/255"),
    ({"task.blur_sigma": 0.0}, "deblur_gaussian.py", r"config\.task\.blur_sigma must be > 0"),
    ({"task.blur_size": 0}, "deblur_gaussian.py", r"config\.task\.blur_size must be >= 1"),
    ({"admm.rho": 0.0}, "sr_x2.py", r"config\.admm\.rho must be > 0, got 0\.0"),
    ({"admm.sigma": -0.1}, "sr_x2.py", r"config\.admm\.sigma must be in \(0, 1\]"),
    ({"admm.sigma": 25.0}, "sr_x2.py", r"config\.admm\.sigma must be in \(0, 1\]"),
    ({"admm.tol": 0.0}, "sr_x2.py", r"config\.admm\.tol must be > 0"),
    ({"admm.max_iters": 0}, "sr_x2.py", r"config\.admm\.max_iters must be >= 1"),
    ({"admm.unrolled_iters": 0}, "sr_x2.py", r"config\.admm\.unrolled_iters must be >= 1"),
    ({"admm.lam": -1.0}, "sr_x2.py", r"config\.admm\.lam must be >= 0"),
    ({"admm.random_states": 0}, "sr_x2.py", r"config\.admm\.random_states must be >= 1"),
    ({"admm.backward_tol": 0.0}, "sr_x2.py", r"config\.admm\.backward_tol must be > 0"),
    ({"admm.backward_max_iters": 0}, "sr_x2.py", r"config\.admm\.backward_max_iters must"),
    ({"admm.anderson_memory": -1}, "sr_x2.py", r"config\.admm\.anderson_memory must be >= 0"),
    ({"denoiser.sigma_max": 0.0}, "denoiser.py", r"config\.denoiser\.sigma_max must be in"),
    ({"denoiser.sigma_max": 50.0}, "denoiser.py", r"config\.denoiser\.sigma_max .*25/255"),
    ({"denoiser.sigma_min": 0.3}, "denoiser.py", r"config\.denoiser\.sigma_min must be <="),
    ({"model.widths": (16, 32, 64)}, "sr_x2.py", r"config\.model\.widths must be 4 positive"),
    ({"model.widths": (16, 0, 64, 64)}, "sr_x2.py", r"config\.model\.widths must be 4 positive"),
    ({"model.num_blocks": 0}, "sr_x2.py", r"config\.model\.num_blocks must be >= 1"),
    (
        {"model.compute_dtype": "float16"},
        "sr_x2.py",
        r"config\.model\.compute_dtype must be one of",
    ),
    ({"model.init": ""}, "sr_x2.py", r"config\.model\.init must name pre-trained .*'suppa'"),
    ({"model.init": "w.npz"}, "sr_x2.py", r"config\.model\.init must be '' .*got 'w\.npz'"),
    ({"data.patch": 0}, "sr_x2.py", r"config\.data\.patch must be >= 1"),
    ({"data.patch": 47}, "sr_x2.py", r"config\.data\.patch .*47·2 = 94 .*multiple of 8"),
    ({"data.patch": 44}, "sr_x3.py", r"config\.data\.patch .*44·3 = 132 .*multiple of 8"),
    ({"data.patch": 100}, "deblur_gaussian.py", r"config\.data\.patch .*multiple of 8"),
    ({"data.source": "div2k"}, "sr_x2.py", r"config\.data\.source must be 'samples', 'deadleaves'"),
    ({"data.source": "folder:"}, "sr_x2.py", r"config\.data\.source must be"),
    ({"data.source": "samples:x"}, "sr_x2.py", r"config\.data\.source must be"),
    ({"data.eval_source": "tfds:"}, "sr_x2.py", r"config\.data\.eval_source must be"),
    ({"data.train_split": "test"}, "sr_x2_cpu.py", r"config\.data\.train_split must be one of"),
    (
        {"data.eval_source": "samples", "data.eval_split": "val"},
        "sr_x2_cpu.py",
        r"config\.data\.eval_split must be one of",
    ),
    ({"data.eval_split": ""}, "sr_x2.py", r"config\.data\.eval_split must name a TFDS split"),
    ({"data.feature": ""}, "sr_x2.py", r"config\.data\.feature must be"),
    ({"data.patches_per_image": 0}, "sr_x2.py", r"config\.data\.patches_per_image must be >= 1"),
    ({"data.worker_count": -1}, "sr_x2.py", r"config\.data\.worker_count must be >= 0"),
    ({"data.read_threads": 0}, "sr_x2.py", r"config\.data\.read_threads must be >= 1"),
    ({"data.max_eval_images": -1}, "sr_x2.py", r"config\.data\.max_eval_images must be >= 0"),
    ({"data.eval_crop": -1}, "sr_x2.py", r"config\.data\.eval_crop must be >= 0"),
    (
        {"parallel.coordinator_address": "10.0.0.1:1234"},
        "sr_x2.py",
        r"config\.parallel\.coordinator_address must stay '' unless .*multi_host",
    ),
    (
        {"parallel.multi_host": True, "parallel.coordinator_address": "host"},
        "sr_x2.py",
        r"config\.parallel\.coordinator_address must be 'host:port'",
    ),
    (
        {"parallel.multi_host": True, "parallel.num_processes": 2, "parallel.process_id": 2},
        "sr_x2.py",
        r"config\.parallel\.process_id must be < config\.parallel\.num_processes \(2\), got 2",
    ),
    (
        {"parallel.multi_host": True, "parallel.process_id": -2},
        "sr_x2.py",
        r"config\.parallel\.process_id must be >= 0, or -1",
    ),
]


def _case_id(case: tuple) -> str:
    overrides, config_file, _ = case
    return f"{config_file[:-3]}:" + ",".join(f"{k}={v!r}" for k, v in overrides.items())


@pytest.mark.parametrize(
    ("overrides", "config_file", "message"), INVALID, ids=map(_case_id, INVALID)
)
def test_invalid_value_fails_naming_the_key_and_the_value(overrides, config_file, message):
    config = overridden(overrides, config_file)
    with pytest.raises(ValueError, match=message):
        cfg.validate(config)


@pytest.mark.parametrize(
    "overrides",
    [
        {"method": "unrolled_remat", "admm.anderson_memory": 5},
        {"data.source": "folder:/data/images", "data.train_split": ""},
        {"data.source": "tfds:div2k/bicubic_x4", "data.eval_source": "samples"},
        {"data.patch": 36, "task.bicubic_a": -0.5, "train.decay_rate": 1.0},
        {"task.kernel": "gaussian", "task.blur_sigma": 1.0, "task.blur_size": 7},
        {
            "parallel.multi_host": True,
            "parallel.coordinator_address": "10.0.0.1:1234",
            "parallel.num_processes": 2,
            "parallel.process_id": 1,
        },
    ],
)
def test_valid_variations_pass(overrides):
    cfg.validate(overridden(overrides))


def test_hand_built_configs_are_checked_against_the_schema():
    extra = cfg.base()
    extra.train.lrr = 1e-5
    with pytest.raises(
        ValueError,
        match=r"config\.train\.lrr is not a known field; those of config\.train: .*\blr\b",
    ):
        cfg.validate(extra)
    missing = cfg.base().to_dict()
    del missing["train"]["lr"]
    with pytest.raises(ValueError, match=r"^config\.train\.lr is missing$"):
        cfg.validate(missing)
    wrong_type = cfg.base().to_dict()
    wrong_type["train"]["epochs"] = 7.5
    with pytest.raises(ValueError, match=r"config\.train\.epochs must be of type int, got 7\.5"):
        cfg.validate(wrong_type)
    wrong_type["train"]["epochs"] = True
    with pytest.raises(ValueError, match=r"config\.train\.epochs must be of type int"):
        cfg.validate(wrong_type)
    cfg.validate(cfg.base().to_dict())  # a plain dict of valid values passes


def test_check_batch_divisible_names_the_key():
    config = parse()
    cfg.check_batch_divisible(config, 8)
    cfg.check_batch_divisible(config, 1)
    with pytest.raises(
        ValueError,
        match=r"^config\.train\.batch_size must be divisible by the number of devices \(6\), "
        r"got 16$",
    ):
        cfg.check_batch_divisible(config, 6)


# --------------------------------------------------------------------- builders, helpers


def test_methods_are_the_training_methods_and_the_denoiser():
    assert set(methods.names()) == {*methods.names(), "denoiser"}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: cfg.experiment("sr", scale=5), "scale must be one of"),
        (lambda: cfg.experiment("sr"), "scale must be one of"),
        (lambda: cfg.experiment("deblur", scale=2), r"one of \[1\] for kind 'deblur'"),
        (lambda: cfg.experiment("dehaze"), "unknown task kind"),
        (lambda: cfg.experiment("denoise"), "use denoiser()"),
        (lambda: cfg.cpu_overrides("dehaze"), "unknown task kind"),
    ],
)
def test_builders_reject_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_flatten_gives_dotted_paths():
    flat = cfg.flatten(parse())
    assert flat["train.lr"] == 1e-4
    assert flat["model.widths"] == (64, 128, 256, 512)
    assert all(not isinstance(v, dict | ConfigDict) for v in flat.values())


def test_a_field_added_after_a_run_was_saved_counts_as_its_default():
    """A run saved before model.name or admm.sequential_steps existed resumes unchanged."""
    from suppa_jax.config import changes

    current = cfg.experiment("sr", scale=2, cpu=True)
    stored = changes.as_json(current)
    del stored["model"]["name"], stored["admm"]["sequential_steps"]
    assert changes.differences(stored, current) == {}
    stored["model"]["widths"] = [4, 4, 4, 4]
    assert set(changes.differences(stored, current)) == {"model.widths"}
    current.model.name = "dncnn"
    assert changes.differences(stored, current)["model.name"] == ("drunet", "dncnn")
