"""Package-level behaviour: importing changes nothing; the XLA:CPU flags are one call, which
every entry point makes."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import jaxlib
import pytest

import suppa_jax
from suppa_jax import xla

FLAG = " ".join(suppa_jax.XLA_CPU_FLAGS)


def test_the_installed_jaxlib_has_measured_flags():
    """Both CI environments run a measured release; a new one is measured before it is used."""
    assert suppa_jax.XLA_CPU_FLAGS, (
        f"jaxlib {jaxlib.__version__} is not in suppa_jax.xla.MEASURED_CPU_FLAGS: "
        "run python -m benchmarks.xla_flags on it and enter the flags that win"
    )


def test_flags_are_looked_up_by_release():
    assert xla.cpu_flags("0.10.2") == xla.MEASURED_CPU_FLAGS["0.10"]
    assert xla.cpu_flags("0.12.0.1") == xla.MEASURED_CPU_FLAGS["0.12"]
    assert xla.cpu_flags("0.11.0") == ()
    assert xla.cpu_flags("1.10.2") == ()


def test_the_installed_jaxlib_accepts_its_flags():
    """Compiled with each flag as a compile option: XLA refuses an option it does not know
    (in ``XLA_FLAGS`` the same flag would abort the process)."""
    lowered = jax.jit(jnp.sin).lower(jnp.ones(2))
    for flag in suppa_jax.XLA_CPU_FLAGS:
        name, value = flag.removeprefix("--").split("=", 1)
        lowered.compile(compiler_options={name: value})


def test_flags_are_appended_once():
    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    assert suppa_jax.use_fast_xla_cpu_flags(env)
    assert env["XLA_FLAGS"] == f"--xla_force_host_platform_device_count=4 {FLAG}"
    assert not suppa_jax.use_fast_xla_cpu_flags(env)
    assert env["XLA_FLAGS"].count(FLAG) == 1


@pytest.mark.parametrize(
    "env",
    [
        {"SUPPA_JAX_XLA_CPU_FLAGS": "0"},
        {"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type=LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"},
    ],
    ids=["opt-out", "user-setting"],
)
def test_flags_leave_the_users_choice(env):
    before = dict(env)
    assert not suppa_jax.use_fast_xla_cpu_flags(env)
    assert env == before


PROBE = """
import suppa_jax, jax, jax.numpy as jnp
if CALL:
    suppa_jax.use_fast_xla_cpu_flags()
x = jnp.ones((2, 24, 24, 32)); k = jnp.ones((3, 3, 32, 32))
conv = lambda x, k: jax.lax.conv_general_dilated(
    x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
print("ynn" in jax.jit(conv).lower(x, k).compile().as_text())
"""


def _clean_environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "SUPPA_JAX_XLA_CPU_FLAGS")}
    return {**env, **extra}


@pytest.mark.parametrize(("call", "uses_ynnpack"), [(False, True), (True, False)])
def test_import_changes_nothing_and_the_call_turns_off_ynnpack(call, uses_ynnpack):
    out = subprocess.run(
        [sys.executable, "-c", PROBE.replace("CALL", str(call))],
        env=_clean_environment(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split()[-1] == str(uses_ynnpack)


ENTRY_PROBE = """
import os, runpy, sys
sys.argv = [ENTRY, "--help"]
try:
    runpy.RUN(ENTRY, run_name="__main__")
except SystemExit:
    pass
print("XLA_FLAGS=" + os.environ.get("XLA_FLAGS", ""))
"""


@pytest.mark.parametrize(
    ("runner", "entry"),
    [
        ("run_path", "train.py"),
        ("run_path", "evaluate.py"),
        ("run_module", "suppa_jax.demo"),
        ("run_module", "suppa_jax.convert"),
    ],
)
def test_entry_points_apply_the_flags(runner, entry):
    script = ENTRY_PROBE.replace("RUN", runner).replace("ENTRY", repr(entry))
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).resolve().parents[1],
        env=_clean_environment(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.splitlines()[-1] == f"XLA_FLAGS={FLAG}"


def test_a_non_editable_install_ships_the_weights(tmp_path):
    """``pip install .`` (a wheel, not the repository) carries the shipped weights: from a
    directory without them, the demo's rows load and ``restore.py``'s module restores."""
    # Built from a copy of the tracked files: setuptools writes build/ into the source tree.
    root = Path(__file__).resolve().parents[1]
    tracked = (
        subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    source, wheels, target = tmp_path / "source", tmp_path / "wheels", tmp_path / "site"
    for name in filter(None, tracked):
        path = root / name
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink():
            (source / name).symlink_to(os.readlink(path))
        else:
            shutil.copy2(path, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)]
    subprocess.run(build, check=True, capture_output=True, timeout=300)
    (wheel,) = wheels.glob("*.whl")
    subprocess.run(
        [*pip, "install", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    probe = (
        "import suppa_jax, numpy as np\n"
        "from suppa_jax import demo, images, paths, restoration\n"
        f"assert str(paths.PACKAGE) == {str((target / 'suppa_jax').resolve())!r}, paths.PACKAGE\n"
        "assert paths.resolve_path('weights/suppa_sr2', 'x') == paths.WEIGHTS / 'suppa_sr2'\n"
        "print([r.label for r in demo.restorers('sr2')])\n"
        "images.write_image('y.png', np.full((8, 8, 3), 0.5), 8)\n"
        "restoration.main(['y.png', '--model=weights/suppa_sr2', '--max_iters=2', '--out=out'])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = "['bicubic', 'Tikhonov', 'PnP-ADMM (pre-trained)', 'DPIR-HQS (pre-trained)', 'SUPPA']"
    assert rows in result.stdout
    assert (tmp_path / "out" / "y.png").is_file()
