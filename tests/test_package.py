"""Package-level behaviour: importing changes nothing; the XLA:CPU flags are one call, which
every entry point makes."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import suppa_jax

FLAG = suppa_jax.XLA_CPU_FLAGS[0]


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
