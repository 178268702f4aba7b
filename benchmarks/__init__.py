"""Benchmarks: training-step memory versus K (:mod:`benchmarks.memory`) and step wall time
(:mod:`benchmarks.step_time`). Run them as scripts from the repository root, e.g.
``python -m benchmarks.memory --small``."""
