"""The command-line convention every entry point shares (suppa_jax.cli)."""

import importlib.util
from pathlib import Path

import pytest

from suppa_jax import cli, convert, demo, evaluation, restoration
from suppa_jax import config as config_lib

ROOT = Path(__file__).resolve().parents[1]


def _train_main():
    spec = importlib.util.spec_from_file_location("train_entry", ROOT / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


ENTRY_POINTS = {
    "train.py": _train_main(),
    "evaluate.py": evaluation.main,
    "restore.py": restoration.main,
    "python -m suppa_jax.demo": demo.main,
    "python -m suppa_jax.convert": convert.main,
}


def test_overrides_take_the_type_of_their_field():
    config = config_lib.experiment("sr", scale=2, cpu=True)
    overrides = cli.config_overrides(
        [
            "--config.train.lr=1e-5",
            "--config.train.epochs=3",
            "--config.model.widths=(8, 16, 32, 32)",
            "--config.data.augment=False",
            "--config.method=deq",
            "--config.data.source=0.5*deadleaves; 0.5*samples",
            "--config.model.init=123.msgpack",
        ],
        config,
    )
    assert overrides == {
        "train.lr": 1e-5,
        "train.epochs": 3,
        "model.widths": (8, 16, 32, 32),
        "data.augment": False,
        "method": "deq",
        "data.source": "0.5*deadleaves; 0.5*samples",
        "model.init": "123.msgpack",
    }
    config_lib.apply_overrides(config, overrides)
    config_lib.validate(config)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("--config.train.lrr=1", "config.train.lrr is not a known field"),
        ("--config.data.augment=maybe", "config.data.augment must be True or False"),
        ("--config.model.widths=wide", "cannot read 'wide' as a tuple"),
        ("--workers=2", "unrecognised argument '--workers=2'"),
    ],
)
def test_bad_overrides_name_the_field(item, message):
    with pytest.raises(ValueError, match=message):
        cli.config_overrides([item], config_lib.experiment("sr", scale=2, cpu=True))


@pytest.mark.parametrize("prog", ENTRY_POINTS)
def test_help_lists_the_options(prog, capsys):
    with pytest.raises(SystemExit) as exit_info:
        ENTRY_POINTS[prog](["--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: {prog}")


@pytest.mark.parametrize(
    ("prog", "argv", "message"),
    [
        ("train.py", ["--config=configs/none.py", "--workdir=w"], "no such file"),
        ("train.py", ["--config=configs/sr_x2_cpu.py", "--workdir=w", "--config.x=1"], "config.x"),
        ("evaluate.py", ["--checkpoint=/absent"], "'/absent' does not exist"),
        ("python -m suppa_jax.convert", ["/absent.pth", "out.msgpack"], "cannot read"),
        ("restore.py", ["y.png", "--model=/absent"], "'/absent' does not exist"),
        ("python -m suppa_jax.demo", ["--outt=x"], "unrecognized arguments"),
        ("python -m suppa_jax.demo", [f"--out={ROOT / 'README.md' / 'x'}"], "Not a directory"),
        (
            "evaluate.py",
            ["--checkpoint=weights/suppa_sr2", f"--out={ROOT / 'README.md' / 'x'}"],
            "Not a directory",
        ),
    ],
)
def test_errors_are_one_line_with_status_2(prog, argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        ENTRY_POINTS[prog](argv)
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"{prog}: error: ")
    assert message in line


@pytest.mark.parametrize(
    ("prog", "argv"),
    [
        ("train.py", ["--config=configs/none.py", "--workdir=w"]),
        ("evaluate.py", ["--checkpoint=/absent"]),
        ("python -m suppa_jax.convert", ["/absent.pth", "out.msgpack"]),
    ],
)
def test_verbosity_1_adds_the_traceback(prog, argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        ENTRY_POINTS[prog]([*argv, "--verbosity=1"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert err.strip().splitlines()[-1].startswith(f"{prog}: error: ")
