"""Evaluate a trained model against the baselines on whole images.

    python evaluate.py --checkpoint=runs/sr2_suppa --data=samples
    python evaluate.py --checkpoint=runs/deblur_suppa --task=deblur --data=folder:data/BSDS500/val
    python evaluate.py --checkpoint=weights/drunet_cpu_denoiser.msgpack --task=sr2 \\
        --data=samples,path/to/Set5

``--checkpoint`` is a ``train.py`` workdir (its best validation checkpoint, restored as its
method is used at test time: ADMM to convergence, at most 50 iterations, tolerance 1e-3) or a
DRUNet params file (then the model is plug-and-play ADMM with that denoiser). Rows: ``bicubic``
(or ``initial(y)`` for deblurring), ``PnP-ADMM (pre-trained)`` with the denoiser the run started
from (``--pretrained`` to choose another) and the model. Columns: PSNR on RGB without border
crop (the paper's protocol), PSNR-Y with a border of ``scale`` pixels, SSIM and iterations; one
table per dataset, written with CSV, JSON, the restored images, side-by-side grids and the
PSNR-per-iteration curve under ``--out`` (default ``results/eval/<checkpoint>_<task>``).
See ``suppa_jax.evaluation`` and ``python evaluate.py --help``.
"""

from suppa_jax import use_fast_xla_cpu_flags
from suppa_jax.evaluation import main

if __name__ == "__main__":
    use_fast_xla_cpu_flags()
    raise SystemExit(main())
