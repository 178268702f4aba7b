"""The command-line convention of every entry point: ``train.py``, ``evaluate.py``,
``python -m suppa_jax.demo`` and ``python -m suppa_jax.convert``.

* Options are ``--name=value`` (or ``--name value``), names with underscores; ``--help`` lists
  them. ``train.py`` also takes ``--config.<field>=<value>`` for any config field.
* Each has ``main(argv) -> int``, callable from Python (tests, notebooks) as well as the shell.
* A user error (an unknown option, a bad config field or value, a missing or unreadable file) is
  one line, ``<prog>: error: <what is wrong, naming it>``, on stderr, and exit status 2.
* Each applies :func:`suppa_jax.use_fast_xla_cpu_flags` before JAX starts (when run from the
  shell) and keeps orbax's per-checkpoint INFO logs out of the output.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import ml_collections

from suppa_jax import config as config_lib

__all__ = ["config_overrides", "fail", "load_config", "parser", "quiet_logs"]

CONFIG_PREFIX = "--config."


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line too (no usage block before it)."""

    def error(self, message: str) -> NoReturn:
        fail(self, f"{message} (see --help)")


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    """An entry point's parser: no abbreviated options, the description shown as written, and
    usage errors in the one-line form of :func:`fail`."""
    return _Parser(
        prog=prog,
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )


def fail(parser: argparse.ArgumentParser, message: object) -> NoReturn:
    """Exit with status 2 and ``<prog>: error: <message>`` on stderr."""
    parser.exit(2, f"{parser.prog}: error: {message}\n")


def quiet_logs() -> None:
    """Keep absl's INFO and WARNING logs (orbax logs every checkpoint step) out of the output."""
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.ERROR)


def load_config(path: str) -> ml_collections.ConfigDict:
    """``get_config()`` of the Python file ``path`` (``configs/*.py``)."""
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"--config: no such file {path!r}")
    spec = importlib.util.spec_from_file_location(f"_config_{file.stem}", file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "get_config", None)):
        raise ValueError(f"--config: {path} defines no get_config()")
    return module.get_config()


def _parse_value(text: str, current: Any, path: str) -> Any:
    """``text`` as a value of the type of the field's current value."""
    if isinstance(current, str):
        return text
    if isinstance(current, bool):
        if text.lower() in ("true", "1"):
            return True
        if text.lower() in ("false", "0"):
            return False
        raise ValueError(f"config.{path} must be True or False, got {text!r}")
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        what = type(current).__name__
        raise ValueError(f"config.{path}: cannot read {text!r} as a {what}") from None


def config_overrides(items: Sequence[str], config: ml_collections.ConfigDict) -> dict[str, Any]:
    """``["--config.train.lr=1e-5", ...]`` → ``{"train.lr": 1e-5, ...}``, each value read as the
    type of the field it sets (numbers and tuples as Python literals, booleans as True/False,
    strings as given). An item that is not ``--config.<field>=<value>`` or names no field is a
    ``ValueError`` naming it."""
    flat = config_lib.flatten(config)
    overrides = {}
    for item in items:
        if not item.startswith(CONFIG_PREFIX) or "=" not in item:
            raise ValueError(f"unrecognised argument {item!r} (config fields: --config.PATH=VALUE)")
        path, _, text = item[len(CONFIG_PREFIX) :].partition("=")
        if path not in flat:
            raise ValueError(f"config.{path} is not a known field")
        overrides[path] = _parse_value(text, flat[path], path)
    return overrides
