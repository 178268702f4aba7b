"""Package-level behaviour: the XLA:CPU flags set on import."""

import os
import subprocess
import sys

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
x = jnp.ones((2, 24, 24, 32)); k = jnp.ones((3, 3, 32, 32))
conv = lambda x, k: jax.lax.conv_general_dilated(
    x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
print("ynn" in jax.jit(conv).lower(x, k).compile().as_text())
"""


@pytest.mark.parametrize(("opt_out", "uses_ynnpack"), [("1", False), ("0", True)])
def test_import_turns_off_ynnpack_convolutions(opt_out, uses_ynnpack):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["SUPPA_JAX_XLA_CPU_FLAGS"] = opt_out
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split()[-1] == str(uses_ynnpack)
