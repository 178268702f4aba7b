"""Restore your own degraded images with a trained model or a denoiser.

    python restore.py y.png --model=weights/suppa_sr2 --out=restored/
    python restore.py blurred.tif --model=drunet_color.pth --scale=1 --kernel=psf.npy --sigma=0.03
    python restore.py y.png --model=weights/drunet_cpu_denoiser.msgpack --task=sr2 --trace

See :mod:`suppa_jax.restoration` and ``python restore.py --help``.
"""

from suppa_jax import use_fast_xla_cpu_flags
from suppa_jax.restoration import main

if __name__ == "__main__":
    use_fast_xla_cpu_flags()
    raise SystemExit(main())
