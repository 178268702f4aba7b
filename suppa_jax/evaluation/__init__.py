"""Evaluation: restore every image of a dataset with the baselines and a model, measure, report.

``python evaluate.py --checkpoint=… --task=… --data=…`` (:mod:`~suppa_jax.evaluation.cli`) and
``make demo`` (:mod:`suppa_jax.demo`) are built on these modules:

* :mod:`~suppa_jax.evaluation.restorers`: the rows (``initial(y)``, Tikhonov, plug-and-play,
  a trained method);
* :mod:`~suppa_jax.evaluation.evaluator`: the one loop (degrade, restore, measure), also used by
  validation during training;
* :mod:`~suppa_jax.evaluation.report`: tables, CSV/JSON, figures;
* :mod:`~suppa_jax.evaluation.checkpoints`: what ``--checkpoint`` names (a workdir or a
  params file), checked against its config;
* :mod:`~suppa_jax.evaluation.tuning`: the baselines' levels, tuned on training images;
* :mod:`~suppa_jax.evaluation.tasks`: named tasks and matching a run's task.
"""

from suppa_jax.evaluation.checkpoints import (
    Model,
    load_denoiser,
    load_model,
    load_prior,
    resolve_path,
)
from suppa_jax.evaluation.cli import main, run
from suppa_jax.evaluation.evaluator import (
    Dataset,
    DatasetResult,
    Evaluator,
    ImageResult,
    evaluate,
    image_metrics,
    parse_data,
)
from suppa_jax.evaluation.report import (
    COLUMNS,
    METRICS_NOTE,
    Report,
    format_tables,
    plot_curves,
    plot_grid,
    write_report,
)
from suppa_jax.evaluation.restorers import (
    Restorer,
    dpir_restorer,
    initial_restorer,
    jitted_predict,
    method_restorer,
    pnp_restorer,
    tikhonov_restorer,
)
from suppa_jax.evaluation.tasks import check_task, task_config, task_label, task_name
from suppa_jax.evaluation.tuning import (
    SIGMA_GRID,
    centre_crops,
    resolve_pnp_sigma,
    resolve_tikhonov_mu,
    tune_pnp_sigma,
    tune_tikhonov_mu,
)

__all__ = [
    "COLUMNS",
    "METRICS_NOTE",
    "SIGMA_GRID",
    "Dataset",
    "DatasetResult",
    "Evaluator",
    "ImageResult",
    "Model",
    "Report",
    "Restorer",
    "centre_crops",
    "check_task",
    "dpir_restorer",
    "evaluate",
    "format_tables",
    "image_metrics",
    "initial_restorer",
    "jitted_predict",
    "load_denoiser",
    "load_model",
    "load_prior",
    "main",
    "method_restorer",
    "parse_data",
    "plot_curves",
    "plot_grid",
    "pnp_restorer",
    "resolve_path",
    "resolve_pnp_sigma",
    "resolve_tikhonov_mu",
    "run",
    "task_config",
    "task_label",
    "task_name",
    "tikhonov_restorer",
    "tune_pnp_sigma",
    "tune_tikhonov_mu",
    "write_report",
]
