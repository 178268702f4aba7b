"""Convert a PyTorch DRUNet state dict (DPIR's ``drunet_color.pth`` layout) to a params file.

Usage::

    python -m suppa_jax.convert drunet_color.pth drunet_color.msgpack
    python -m suppa_jax.convert runs/denoiser denoiser.msgpack     # a train.py workdir


The input is read with ``torch.load(..., map_location="cpu", weights_only=True)``; it may be a
bare state dict or one nested under a ``state_dict`` or ``params`` key. The architecture
(widths, blocks, channels) is inferred from the tensor shapes, and the output is the
self-describing msgpack file of :func:`suppa_jax.models.weights.save_params`, read back with
:func:`suppa_jax.models.weights.load_params`. A ``train.py`` workdir as input exports the
denoiser of its best validation checkpoint. Errors name the file or key and exit with status 2.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from suppa_jax import cli
from suppa_jax.models.weights import count_params, load_denoiser, model_from_params, save_params
from suppa_jax.training.checkpoints import best_trainable
from suppa_jax.xla import use_fast_xla_cpu_flags


def _best_denoiser(workdir: str) -> Mapping[str, Any]:
    return best_trainable(workdir).trainable["denoiser"]


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns 0, or exits with status 2 and a one-line error."""
    parser = cli.parser(
        "python -m suppa_jax.convert",
        "Convert a PyTorch DRUNet state dict (.pth), or the best denoiser of a train.py workdir, "
        "to a suppa_jax params file.",
    )
    parser.add_argument(
        "input", help="PyTorch state dict (e.g. drunet_color.pth) or a train.py workdir"
    )
    parser.add_argument("output", help="params file to write, e.g. drunet_color.msgpack")
    args = parser.parse_args(argv)
    cli.quiet_logs(args.verbosity)
    with cli.reporting_errors(parser, args.verbosity):
        if Path(args.input).is_dir():
            params = _best_denoiser(args.input)
        else:
            params = load_denoiser(args.input)
        try:
            save_params(args.output, params)
        except OSError as err:
            raise ValueError(f"{args.output}: cannot write ({err.strerror or err})") from err
    model = model_from_params(params)
    print(
        f"{args.input} -> {args.output}: DRUNet(widths={model.widths}, "
        f"num_blocks={model.num_blocks}, channels={model.channels}), "
        f"{count_params(params):,} parameters"
    )
    return 0


if __name__ == "__main__":
    use_fast_xla_cpu_flags()
    raise SystemExit(main())
