"""The command-line convention of every entry point: ``train.py``, ``evaluate.py``,
``restore.py``, ``python -m suppa_jax.demo`` and ``python -m suppa_jax.convert``.

* Options are ``--name=value`` (or ``--name value``), names with underscores; ``--help`` lists
  them. ``train.py`` also takes ``--config.<field>=<value>`` for any config field.
* Each has ``main(argv) -> int``, callable from Python (tests, notebooks) as well as the shell.
* A user error (an unknown option, a bad config field or value, a missing or unreadable file,
  a damaged checkpoint, a full disk: :data:`USER_ERRORS`) is one line,
  ``<prog>: error: <what is wrong, naming it>``, on stderr, and exit status 2
  (:func:`reporting_errors`). ``--verbosity=1`` adds the traceback and the libraries' logs.
* Each applies :func:`suppa_jax.use_fast_xla_cpu_flags` before JAX starts (when run from the
  shell) and keeps the libraries' logs (orbax logs every checkpoint, and the tracebacks of
  its writer threads) out of the output (:func:`quiet_logs`).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib.util
import logging
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

import ml_collections

from suppa_jax import config as config_lib
from suppa_jax.errors import WorkdirError

__all__ = [
    "USER_ERRORS",
    "config_overrides",
    "fail",
    "load_config",
    "parser",
    "quiet_logs",
    "reporting_errors",
]

#: The exceptions that are a user's to fix, each reported as one line.
USER_ERRORS = (ValueError, KeyError, TypeError, OSError, FloatingPointError, WorkdirError)

CONFIG_PREFIX = "--config."


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line too (no usage block before it)."""

    def error(self, message: str) -> NoReturn:
        fail(self, f"{message} (see --help)")


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    """An entry point's parser: no abbreviated options, the description shown as written,
    usage errors in the one-line form of :func:`fail`, and ``--verbosity``."""
    result = _Parser(
        prog=prog,
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    result.add_argument(
        "--verbosity",
        type=int,
        default=0,
        help="0: errors in one line; 1: with their traceback, and the libraries' logs",
    )
    return result


def fail(parser: argparse.ArgumentParser, message: object) -> NoReturn:
    """Exit with status 2 and ``<prog>: error: <message>`` on stderr."""
    parser.exit(2, f"{parser.prog}: error: {message}\n")


def quiet_logs(verbosity: int = 0) -> None:
    """Keep the libraries' logs out of the output: orbax logs every checkpoint at INFO and, at
    ERROR, the traceback of a failed save in each of its threads and tasks (the failure itself
    is reported once, by :func:`reporting_errors`). ``verbosity`` ≥ 1 keeps their warnings
    and errors."""
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.WARNING if verbosity >= 1 else absl_logging.FATAL)
    for name in ("absl", "asyncio"):  # asyncio: orbax's unretrieved writer tasks at exit
        logging.getLogger(name).setLevel(logging.WARNING if verbosity >= 1 else logging.CRITICAL)
    if verbosity < 1 and not hasattr(sys.unraisablehook, "without_closed_loop_noise"):
        sys.unraisablehook = _without_closed_loop_noise(sys.unraisablehook)
        # The writer coroutines a failed save leaves behind, reported at interpreter exit.
        warnings.filterwarnings("ignore", message="coroutine .* was never awaited")


def _without_closed_loop_noise(hook: Callable[[Any], None]) -> Callable[[Any], None]:
    """``hook`` but silent on ``RuntimeError: Event loop is closed``: after orbax fails to read
    a damaged checkpoint, tensorstore's pending callbacks reach the event loop orbax has
    closed, one traceback each. The failure itself is reported (and the next one tried)."""

    def unraisable(report: Any) -> None:
        exc = report.exc_value
        if not (isinstance(exc, RuntimeError) and str(exc) == "Event loop is closed"):
            hook(report)

    unraisable.without_closed_loop_noise = True
    return unraisable


def _message(error: BaseException) -> str:
    if isinstance(error, KeyError | FloatingPointError) and error.args:
        return str(error.args[0])  # str() of a KeyError adds quotes
    return str(error)


@contextlib.contextmanager
def reporting_errors(parser: argparse.ArgumentParser, verbosity: int = 0) -> Iterator[None]:
    """Turn a :data:`USER_ERRORS` exception raised inside into :func:`fail`'s one line (after
    its traceback when ``verbosity`` ≥ 1)."""
    try:
        yield
    except USER_ERRORS as error:
        if verbosity >= 1:
            traceback.print_exc()
        fail(parser, _message(error))


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
