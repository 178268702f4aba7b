"""Faults a run must survive: damaged checkpoints, another config, kills during saves, a full or
read-only disk, and user errors that end every entry point with one line (README, "Faults").

Runs are the tiny ones of ``tests/tiny_runs.py`` (13 images, batch 4: 3.25 steps per epoch,
a checkpoint every 2 steps).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tiny_runs import (
    ROOT,
    assert_trees_equal,
    environment,
    saved_state,
    start_training,
    tiny_config,
    wait_for,
    write_config,
)

from suppa_jax import evaluation
from suppa_jax.errors import WorkdirError
from suppa_jax.training import checkpoints, loop

TMP_MARK = "orbax-checkpoint-tmp"  # in the name of a save in progress


def complete_steps(directory: Path) -> list[int]:
    """The complete checkpoints in ``directory``: orbax renames a save's temporary directory to
    its step when the save is complete."""
    return sorted(int(p.name) for p in directory.glob("*") if p.name.isdigit())


def saves_in_progress(directory: Path) -> list[str]:
    return [p.name for p in directory.glob(f"*{TMP_MARK}*")]


def truncate_arrays(step_directory: Path) -> None:
    """What a dying disk or a full quota leaves: every array data file cut to half its size."""
    files = [p for p in step_directory.rglob("*") if p.is_file() and p.parent.name == "d"]
    assert files, f"no array files under {step_directory}"
    for path in files:
        with path.open("r+b") as file:
            file.truncate(path.stat().st_size // 2)


def run_train(config: Path, workdir: Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "train.py", f"--config={config}", f"--workdir={workdir}", *flags],
        cwd=ROOT,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=600,
    )


def resumed_step(output: str) -> int:
    return int(output.split("Resumed from ")[1].split(" at step ")[1].split(".")[0])


def error_line(stderr: str, prog: str, *fragments: str) -> str:
    """The one error line of ``stderr`` (warnings may precede it), which names every fragment;
    no traceback and no library noise."""
    errors = [line for line in stderr.splitlines() if line.startswith(f"{prog}: error: ")]
    assert len(errors) == 1, stderr
    for noise in ("Traceback", "Event loop is closed", "ERROR:absl", "Exception in thread"):
        assert noise not in stderr, stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


# ------------------------------------------------------------------------- damaged checkpoints


def test_unusable_checkpoints_are_set_aside_and_the_newest_usable_one_resumes(
    init_file, tmp_path, capsys
):
    """Checkpoint 7 with truncated arrays, 6 without its metadata and 4 from a run with another
    learning rate are each set aside with a warning; the run resumes from 2 and ends bitwise as
    an uninterrupted one. The best checkpoints, one truncated and one with its metrics cut
    short, are set aside the same way."""
    straight = tmp_path / "straight"
    loop.train_and_evaluate(tiny_config(init_file, **{"train.epochs": 3}), straight)
    run, other = tmp_path / "run", tmp_path / "other"
    loop.train_and_evaluate(tiny_config(init_file), run)  # 7 steps
    loop.train_and_evaluate(tiny_config(init_file, **{"train.lr": 3e-4}), other)
    assert complete_steps(run / "checkpoints") == [2, 4, 6, 7]
    truncate_arrays(run / "checkpoints" / "7")
    (run / "checkpoints" / "6" / "state" / "_METADATA").unlink()
    shutil.rmtree(run / "checkpoints" / "4")
    shutil.copytree(other / "checkpoints" / "4", run / "checkpoints" / "4")
    best = checkpoints.best_steps(run / "best")
    assert len(best) == checkpoints.BEST_KEPT
    truncate_arrays(run / "best" / str(best[0]))
    (run / "best" / str(best[1]) / "metrics" / "metrics").write_text('{"val_psnr": ')
    capsys.readouterr()

    summary = loop.train_and_evaluate(tiny_config(init_file, **{"train.epochs": 3}), run)

    warnings = capsys.readouterr().err
    assert (summary["start_step"], summary["step"]) == (2, 10)
    where = run.resolve() / "checkpoints"
    assert f"checkpoint in {where}, step 7, cannot be used (ValueError: OUT_OF_RANGE" in warnings
    assert f"checkpoint in {where}, step 6, cannot be used (ValueError: pytree" in warnings
    assert (
        f"checkpoint in {where}, step 4, cannot be used (OtherConfigError: saved with another "
        "config: train.lr: 0.0003 → 0.0001)" in warnings
    )
    assert f"best checkpoint in {run.resolve() / 'best'}, step {best[0]}, cannot be" in warnings
    assert f"step {best[1]}, cannot be used (its metrics cannot be read)" in warnings
    aside = sorted(p.name for p in (run / "set_aside").iterdir())
    expected = [f"best-{best[0]}", f"best-{best[1]}", "checkpoints-4", "checkpoints-6"]
    assert aside == sorted([*expected, "checkpoints-7"])
    assert_trees_equal(saved_state(run, 10), saved_state(straight, 10))


def test_no_usable_checkpoint_is_one_error_listing_them_and_moves_nothing(init_file, tmp_path):
    config = write_config(tmp_path / "tiny.py", init_file, **{"train.epochs": 1})
    run = tmp_path / "run"
    loop.train_and_evaluate(tiny_config(init_file, **{"train.epochs": 1}), run)  # 2, 4
    for step in (2, 4):
        truncate_arrays(run / "checkpoints" / str(step))
    result = run_train(config, run)
    assert result.returncode == 2, result.stdout + result.stderr
    line = error_line(result.stderr, "train.py", f"no checkpoint in {run.resolve()}")
    assert "step 4: ValueError: OUT_OF_RANGE" in line
    assert "step 2: ValueError: OUT_OF_RANGE" in line
    assert complete_steps(run / "checkpoints") == [2, 4]
    assert not (run / "set_aside").exists()
    verbose = run_train(config, run, "--verbosity=1")
    assert verbose.returncode == 2
    assert "Traceback" in verbose.stderr
    assert "WorkdirError" in verbose.stderr


def test_evaluation_uses_the_best_readable_checkpoint_and_its_own_config(init_file, tmp_path):
    run = tmp_path / "run"
    loop.train_and_evaluate(tiny_config(init_file), run)
    first, second = checkpoints.best_steps(run / "best")
    # config.json is the run's; each checkpoint's own config describes it.
    stored = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**stored, "method": "deq"}))
    assert checkpoints.best_trainable(run).step == first
    assert evaluation.load_model(str(run), None, log=None).info["step"] == first
    truncate_arrays(run / "best" / str(first))
    warnings = []
    assert checkpoints.best_trainable(run, warn=warnings.append).step == second
    assert f"step {first}, cannot be used (ValueError: the array metadata" in warnings[0]
    assert evaluation.load_model(str(run), None, log=None).info["step"] == second
    truncate_arrays(run / "best" / str(second))
    with pytest.raises(WorkdirError, match=f"no best checkpoint .* \\(step {first}: .*; step"):
        evaluation.load_model(str(run), None, log=None)
    assert checkpoints.best_steps(run / "best") == [first, second]  # left where they are


# ------------------------------------------------------------------------------ another config


def test_resuming_with_another_config_is_refused_unless_allowed(init_file, tmp_path):
    run = tmp_path / "run"
    loop.train_and_evaluate(tiny_config(init_file, **{"train.epochs": 1}), run)
    before = (run / "config.json").read_text()
    faster = tiny_config(init_file, **{"train.lr": 3e-4, "model.num_blocks": 2})
    with pytest.raises(ValueError, match="another config") as refused:
        loop.train_and_evaluate(faster, run)
    message = str(refused.value)
    assert "model.num_blocks: 1 → 2, train.lr: 0.0001 → 0.0003" in message
    assert "--allow_config_change" in message
    assert (run / "config.json").read_text() == before
    assert complete_steps(run / "checkpoints") == [2, 4]

    # Asked for explicitly, with a change the checkpoints can take: resumed, and recorded.
    lr_only = tiny_config(init_file, **{"train.lr": 3e-4, "train.epochs": 2})
    summary = loop.train_and_evaluate(lr_only, run, allow_config_change=True)
    assert (summary["start_step"], summary["step"]) == (4, 7)
    assert json.loads((run / "config.json").read_text())["train"]["lr"] == 3e-4
    assert checkpoints.stored_config(run / "checkpoints" / "4")["train"]["lr"] == 1e-4
    assert checkpoints.stored_config(run / "checkpoints" / "7")["train"]["lr"] == 3e-4
    # The run is now the changed one: the original config is refused in turn.
    with pytest.raises(ValueError, match=r"train.lr: 0.0003 → 0.0001"):
        loop.train_and_evaluate(tiny_config(init_file, **{"train.epochs": 3}), run)


# --------------------------------------------------------------------------------------- kills


def test_sigkill_at_random_moments_and_during_saves_loses_nothing_saved(init_file, tmp_path):
    """Ten SIGKILLs (seeded): half as soon as a save is in progress, half at a random moment
    after the run has made progress. Each restart resumes from the newest complete
    checkpoint, and the final params are bitwise those of an uninterrupted run."""
    overrides = {"train.epochs": 30, "train.keep_checkpoints": 3, "train.eval_every_epochs": 4}
    config = write_config(tmp_path / "tiny.py", init_file, **overrides)  # 98 steps
    straight = run_train(config, tmp_path / "straight")
    assert straight.returncode == 0, straight.stdout + straight.stderr
    run = tmp_path / "run"
    saves = run / "checkpoints"
    rng = np.random.default_rng(20261203)
    newest, during_saves = None, 0
    for kill in range(10):
        log = tmp_path / f"attempt_{kill}.log"
        left_over = set(saves_in_progress(saves))  # by the last kill; cleaned up on start
        process = start_training(config, run, log=log)
        deadline = time.monotonic() + 240
        if rng.random() < 0.5:
            # As soon as a save is in progress.
            while set(saves_in_progress(saves)) & left_over or not saves_in_progress(saves):
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "no save seen"
                time.sleep(0.001)
        else:
            # At a random moment once a checkpoint newer than the last one is complete.
            while max(complete_steps(saves), default=-1) <= (newest or 0):
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "no progress"
                time.sleep(0.01)
            time.sleep(rng.uniform(0, 0.2))
        assert process.poll() is None, "the run ended before its kill: make it longer"
        process.send_signal(signal.SIGKILL)
        process.wait()
        during_saves += bool(saves_in_progress(saves))
        if newest is not None and kill > 0:
            assert resumed_step(log.read_text()) == newest, log.read_text()
        newest = max(complete_steps(saves), default=None)
    assert during_saves >= 3, during_saves  # kills that left a save unfinished
    finished = run_train(config, run)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert resumed_step(finished.stdout) == newest
    assert "train.py: step 98;" in finished.stdout
    assert_trees_equal(saved_state(run, 98), saved_state(tmp_path / "straight", 98))


# ------------------------------------------------------------------------ full or read-only disk


def fill(disk: Path) -> None:
    """Write ``disk/filler`` until the filesystem has no byte left."""
    with (disk / "filler").open("wb", buffering=0) as filler:
        for chunk in (2**20, 2**14, 2**10, 1):
            try:
                while True:
                    filler.write(b"\0" * chunk)
            except OSError:
                continue


def mount_tmpfs(directory: Path, size: str) -> None:
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)], check=True
    )


def remount_read_only(directory: Path) -> None:
    """Remount ``directory``'s filesystem read-only; Linux refuses while a file on it is open
    for writing (a save in progress), so try again until it is not."""
    deadline = time.monotonic() + 60
    while subprocess.run(["mount", "-o", "remount,ro", str(directory)]).returncode != 0:
        assert time.monotonic() < deadline, f"{directory} stayed busy"
        time.sleep(0.01)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small filesystem needs root")
def test_full_then_read_only_disk_stop_the_run_cleanly_and_it_resumes(init_file, tmp_path):
    """A run on a 32 MiB tmpfs whose disk fills up mid-run; then, space back, its checkpoints
    directory (a filesystem of its own) is made read-only mid-run. Each time the run stops with
    one line naming the directory, exit 2; every complete checkpoint stays readable, and once
    the disk is writable the run resumes from the newest and goes to the end."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mount_tmpfs(disk, "32m")
    run = disk / "run"
    saves = run / "checkpoints"
    mounted = [disk]
    try:
        overrides = {"train.epochs": 60, "train.eval_every_epochs": 100}  # 195 steps
        config = write_config(tmp_path / "tiny.py", init_file, **overrides)
        for fault, symptom in (("full", "No space left on device"), ("ro", "Read-only")):
            if fault == "ro":  # the checkpoints on a filesystem of their own
                saves.rename(run / "checkpoints_before")
                saves.mkdir()
                mount_tmpfs(saves, "16m")
                mounted.insert(0, saves)
                for path in (run / "checkpoints_before").iterdir():
                    shutil.move(path, saves / path.name)
            log = tmp_path / f"{fault}.log"
            before = max(complete_steps(saves), default=0)
            process = start_training(config, run, log=log)
            wait_for(saves / str(before + 4), process)
            if fault == "full":
                fill(disk)
            else:
                remount_read_only(saves)
            assert process.wait(timeout=120) == 2, log.read_text()
            error_line(log.read_text(), "train.py", str(run.resolve()), symptom, "to resume")
            intact = complete_steps(saves)
            assert intact[-1] >= before + 4
            for step in intact:
                saved_state(run, step)  # every complete checkpoint is readable
            if fault == "full":
                (disk / "filler").unlink()
            else:
                subprocess.run(["mount", "-o", "remount,rw", str(saves)], check=True)
        finished = run_train(config, run)
        assert finished.returncode == 0, finished.stdout + finished.stderr
        assert resumed_step(finished.stdout) == intact[-1]
        assert "train.py: step 195;" in finished.stdout
    finally:
        for directory in mounted:
            subprocess.run(["umount", "-l", str(directory)], check=False)


# ------------------------------------------------------------------------------- user errors


def test_a_bad_image_names_the_option_of_the_command_that_met_it(init_file, tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / "good.png")
    (folder / "broken.png").write_bytes((folder / "good.png").read_bytes()[:100])
    argv = [
        f"--checkpoint={init_file}",
        "--task=sr2",
        f"--data=folder:{folder}",
        "--no_pnp",
        "--max_iters=2",
        f"--out={tmp_path / 'out'}",
    ]
    with pytest.raises(SystemExit) as exit_info:
        evaluation.main(argv)
    assert exit_info.value.code == 2
    error_line(
        capsys.readouterr().err, "evaluate.py", "broken.png", "evaluate.py --skip_bad_images"
    )
    assert evaluation.main([*argv, "--skip_bad_images"]) == 0
    assert "good" in capsys.readouterr().out
