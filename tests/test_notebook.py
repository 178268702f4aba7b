"""Executes ``notebooks/quickstart.ipynb`` end to end, so that it cannot rot.

The notebook runs in a fresh IPython kernel of *this* interpreter (a kernel spec written for
the test, so a ``python3`` kernel registered elsewhere on the machine cannot stand in), from
``notebooks/`` as the working directory, with the working tree's ``suppa_jax`` first on the
path. The checks read the numbers the notebook prints, so the test fails when the notebook
errors, when restoration stops improving on the measurements, or when the batched and
``vmap``-ped solvers disagree.
"""

import json
import os
import re
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "quickstart.ipynb"
CELL_TIMEOUT_S = 300  # the whole notebook takes well under a minute; this is for a busy machine
NUMBER = r"(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)"

# Appended to the executed copy only: where the kernel's Python and suppa_jax come from.
PROBE = (
    "import json, sys, suppa_jax\n"
    "print('PROBE ' + json.dumps({'prefix': sys.prefix, 'suppa_jax': suppa_jax.__file__}))"
)


def _kernel_manager(spec_dir: Path, sockets: str) -> AsyncKernelManager:
    """A kernel manager whose only ``python3`` kernel is this interpreter.

    It talks to the kernel over IPC sockets in ``sockets`` (absolute paths, since the kernel runs
    in ``notebooks/``; a short directory, since socket paths are limited to ~100 characters):
    no TCP ports on a shared machine.
    """
    kernel = spec_dir / "python3"
    kernel.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (test interpreter)",
        "language": "python",
    }
    (kernel / "kernel.json").write_text(json.dumps(spec))
    specs = KernelSpecManager(kernel_dirs=[str(spec_dir)], ensure_native_kernel=False)
    return AsyncKernelManager(
        kernel_name="python3",
        kernel_spec_manager=specs,
        transport="ipc",
        ip=os.path.join(sockets, "kernel"),
    )


def _kernel_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["IPYTHONDIR"] = str(tmp / "ipython")
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    # The suite's persistent XLA cache (tests/conftest.py): re-runs skip most compilation.
    env.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.expanduser("~/.cache/suppa_jax/xla"))
    env.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
    env.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
    return env


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> nbformat.NotebookNode:
    tmp = tmp_path_factory.mktemp("notebook")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    with tempfile.TemporaryDirectory(prefix="nb-") as sockets:
        client = NotebookClient(
            nb,
            km=_kernel_manager(tmp / "kernels", sockets),
            timeout=CELL_TIMEOUT_S,
            startup_timeout=120,
            resources={"metadata": {"path": str(NOTEBOOK.parent)}},
        )
        # cleanup_kc: shut the kernel down afterwards although the client does not own its manager.
        client.execute(env=_kernel_env(tmp), cleanup_kc=True)
    return nb


def _text(nb: nbformat.NotebookNode) -> str:
    """Everything the code cells printed (stdout and text/plain results), in order."""
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                parts.append(output.text)
            elif "text/plain" in output.get("data", {}):
                parts.append(output.data["text/plain"] + "\n")
    return "".join(parts)


def _find(pattern: str, text: str) -> list[float]:
    match = re.search(pattern, text)
    assert match, f"the notebook no longer prints a line matching {pattern!r}:\n{text}"
    return [float(group) for group in match.groups()]


def test_stored_clean() -> None:
    """Stored without outputs (clean diffs), valid, for a ``python3`` kernel."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code
    for cell in code:
        assert cell.outputs == [], "store the notebook without outputs"
        assert cell.execution_count is None, "store the notebook without execution counts"


def test_runs_in_this_interpreter(executed: nbformat.NotebookNode) -> None:
    (probe,) = re.findall(r"^PROBE (.*)$", _text(executed), flags=re.MULTILINE)
    probe = json.loads(probe)
    assert Path(probe["prefix"]).resolve() == Path(sys.prefix).resolve()
    assert Path(probe["suppa_jax"]).resolve().is_relative_to(ROOT / "suppa_jax")


def test_restores(executed: nbformat.NotebookNode) -> None:
    text = _text(executed)
    # Section 2: the adjoint identity and the data step's normal equations hold.
    gaps = [float(g) for g in re.findall(r"relative gap " + NUMBER, text)]
    assert len(gaps) == 2
    assert max(gaps) < 1e-4
    (normal_equations,) = _find(r"‖ / ‖Aᵀy \+ ρz‖ = " + NUMBER, text)
    assert normal_equations < 1e-4
    # Section 4: restoring the deblurring measurements beats the measurements themselves.
    blurred, restored, _, iterations = _find(
        rf"deblur: +x₀ = y {NUMBER} dB → restored {NUMBER} dB \(\+?{NUMBER} dB\) in {NUMBER} "
        "iterations",
        text,
    )
    assert restored > blurred + 0.5, (blurred, restored)
    assert 1 <= iterations <= 30
    bicubic, restored_sr = _find(rf"×2 SR: +bicubic {NUMBER} dB → restored {NUMBER} dB", text)
    assert 20 < bicubic < 50
    assert 20 < restored_sr < 50
    # Section 6: solve with the same DRUNet reproduces restore; both denoisers produce images.
    (gap,) = _find(r"max \|solve − restore\| with the same DRUNet: " + NUMBER, text)
    assert gap < 1e-4
    assert len(re.findall(r"deblur with .*: " + NUMBER + " dB", text)) == 2
    # Section 7: per-image stopping, and vmap agrees with the batched solve.
    vmap_iterations = json.loads(_find_list(r"vmap: +iterations per image (\[.*\])", text))
    batched_iterations = json.loads(_find_list(r"batched: iterations per image (\[.*?\])", text))
    assert len(vmap_iterations) == 3
    assert vmap_iterations == batched_iterations
    assert all(1 <= k <= 30 for k in vmap_iterations)
    (batch_gap,) = _find(r"max \|vmap − batched\| = " + NUMBER, text)
    assert batch_gap < 1e-4
    blurred = json.loads(_find_list(r"PSNR blurred +(\[.*\])", text))
    restored = json.loads(_find_list(r"PSNR restored +(\[.*\])", text))
    assert sum(restored) / 3 > sum(blurred) / 3, (blurred, restored)
    # Section 9: a user's matrix-free operator, restored with the shipped prior.
    start, restored_own, iterations = _find(
        rf"own operator: y \(124, 128\), x₀ {NUMBER} dB → restored {NUMBER} dB in {NUMBER} "
        "iterations",
        text,
    )
    assert restored_own > start + 1, (start, restored_own)
    assert 1 <= iterations <= 50


def test_plots(executed: nbformat.NotebookNode) -> None:
    figures = [
        output
        for cell in executed.cells
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    ]
    assert len(figures) == 3


def _find_list(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    assert match, f"the notebook no longer prints a line matching {pattern!r}:\n{text}"
    return match.group(1)
