"""Denoiser weight files: self-describing msgpack files (any registered architecture) and
DPIR's PyTorch state-dict layout (DRUNet).

A msgpack file records its architecture by name and fields (:mod:`suppa_jax.models.registry`)
beside the params, and optionally the plug-and-play noise levels tuned for them
(:class:`Prior`). A ``.pth`` file is read as a DRUNet in DPIR's layout, below.

Parameter names and their counterparts in DPIR's state dict (``drunet_color.pth``), for
``l = 1..3`` and block ``i = 0..nb-1``:

=====================================  ========================================  ===========
Flax path (``params`` collection)      PyTorch key                               transform
=====================================  ========================================  ===========
``head/kernel``                        ``m_head.weight``                         OIHW → HWIO
``down{l}/res_{i}/conv_{0,1}/kernel``  ``m_down{l}.{i}.res.{0,2}.weight``        OIHW → HWIO
``down{l}/down/kernel``                ``m_down{l}.{nb}.weight``                 OIHW → HWIO
``body/res_{i}/conv_{0,1}/kernel``     ``m_body.{i}.res.{0,2}.weight``           OIHW → HWIO
``up{l}/up/kernel``                    ``m_up{l}.0.weight``                      IOHW → HWIO
``up{l}/res_{i}/conv_{0,1}/kernel``    ``m_up{l}.{i+1}.res.{0,2}.weight``        OIHW → HWIO
``tail/kernel``                        ``m_tail.weight``                         OIHW → HWIO
=====================================  ========================================  ===========

(PyTorch stores transposed-conv weights as (in, out, kh, kw).) A DRUNet's architecture is read
off the shapes of its params tree or state dict (:func:`model_from_params`), so DPIR's files need
no side information; ``drunet_gray.pth`` (one channel) converts like ``drunet_color.pth``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization
from flax.core import unfreeze

from suppa_jax.models import registry
from suppa_jax.models.base import Denoiser
from suppa_jax.models.drunet import DRUNet
from suppa_jax.typing import Params

__all__ = [
    "FORMAT_TAG",
    "FORMAT_TAG_V1",
    "PARAMS_SUFFIXES",
    "Prior",
    "count_params",
    "load_denoiser",
    "load_params",
    "load_prior",
    "model_from_params",
    "params_from_torch",
    "params_to_torch",
    "read_state_dict",
    "save_params",
]

FORMAT_TAG = "suppa_jax.denoiser.v2"
"""Format tag written by :func:`save_params` and required by :func:`load_params`."""
#: The tag of files written before the model registry: a DRUNet, its record without a name.
FORMAT_TAG_V1 = "suppa_jax.drunet.v1"

#: The params files :func:`load_denoiser` reads: ours, or a PyTorch state dict.
PARAMS_SUFFIXES = (".msgpack", ".pth", ".pt")

_NESTED_KEYS = ("state_dict", "params")


class _Entry(NamedTuple):
    """One weight: PyTorch key, Flax path, PyTorch shape, whether it is a transposed conv."""

    torch_key: str
    path: tuple[str, ...]
    torch_shape: tuple[int, ...]
    transposed: bool


def _res_entries(torch_stage: str, stage: str, first: int, width: int, nb: int) -> list[_Entry]:
    """The ``nb`` residual blocks of a stage; PyTorch numbers them from ``first``."""
    return [
        _Entry(
            f"{torch_stage}.{first + i}.res.{2 * j}.weight",
            (stage, f"res_{i}", f"conv_{j}", "kernel"),
            (width, width, 3, 3),
            False,
        )
        for i in range(nb)
        for j in (0, 1)
    ]


def _layout(model: DRUNet) -> list[_Entry]:
    """All weights of ``model``, in the order of DPIR's state dict."""
    c, nb = model.widths, model.num_blocks
    entries = [_Entry("m_head.weight", ("head", "kernel"), (c[0], model.channels + 1, 3, 3), False)]
    for lvl in (1, 2, 3):
        entries += _res_entries(f"m_down{lvl}", f"down{lvl}", 0, c[lvl - 1], nb)
        entries.append(
            _Entry(
                f"m_down{lvl}.{nb}.weight",
                (f"down{lvl}", "down", "kernel"),
                (c[lvl], c[lvl - 1], 2, 2),
                False,
            )
        )
    entries += _res_entries("m_body", "body", 0, c[3], nb)
    for lvl in (3, 2, 1):
        entries.append(
            _Entry(
                f"m_up{lvl}.0.weight",
                (f"up{lvl}", "up", "kernel"),
                (c[lvl], c[lvl - 1], 2, 2),
                True,
            )
        )
        entries += _res_entries(f"m_up{lvl}", f"up{lvl}", 1, c[lvl - 1], nb)
    entries.append(_Entry("m_tail.weight", ("tail", "kernel"), (model.channels, c[0], 3, 3), False))
    return entries


def _flax_shape(entry: _Entry) -> tuple[int, ...]:
    """HWIO shape of an entry: (kh, kw, in, out)."""
    o, i, kh, kw = entry.torch_shape
    return (kh, kw, o, i) if entry.transposed else (kh, kw, i, o)


def _to_flax(weight: np.ndarray, transposed: bool) -> np.ndarray:
    """OIHW (conv) or IOHW (transposed conv) → HWIO."""
    return np.transpose(weight, (2, 3, 0, 1) if transposed else (2, 3, 1, 0))


def _to_torch(kernel: np.ndarray, transposed: bool) -> np.ndarray:
    """HWIO → OIHW (conv) or IOHW (transposed conv); inverse of :func:`_to_flax`."""
    return np.transpose(kernel, (2, 3, 0, 1) if transposed else (3, 2, 0, 1))


def _as_numpy(value: Any) -> np.ndarray:
    """A NumPy array from a NumPy array, a JAX array or a (CPU or GPU) torch tensor."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _shape_of(shapes: Mapping[str, tuple[int, ...]], key: str, ndim: int) -> tuple[int, ...]:
    """``shapes[key]``, which must exist and have ``ndim`` dims, else a ValueError."""
    if key not in shapes:
        raise ValueError(f"missing key {key!r}")
    if len(shapes[key]) != ndim:
        raise ValueError(f"{key!r}: expected a {ndim}-D tensor, found shape {shapes[key]}")
    return shapes[key]


def _infer_from_torch(shapes: Mapping[str, tuple[int, ...]]) -> DRUNet:
    """Architecture of a state dict: widths from the head and the stride-2 convs, channels
    from the tail, ``num_blocks`` from the number of residual blocks in ``m_body``."""
    nb = sum(bool(re.fullmatch(r"m_body\.\d+\.res\.0\.weight", key)) for key in shapes)
    c0 = _shape_of(shapes, "m_head.weight", 4)[0]
    rest = [_shape_of(shapes, f"m_down{lvl}.{nb}.weight", 4)[0] for lvl in (1, 2, 3)]
    channels = _shape_of(shapes, "m_tail.weight", 4)[0]
    return DRUNet(widths=(c0, *rest), num_blocks=nb, channels=channels)


def _summarise(keys: list[str], limit: int = 5) -> str:
    """``'a', 'b', ... (and n more)``."""
    shown = ", ".join(repr(k) for k in keys[:limit])
    return shown + (f" (and {len(keys) - limit} more)" if len(keys) > limit else "")


def _check_keys(
    found: Mapping[str, tuple[int, ...]], expected: Mapping[str, tuple[int, ...]]
) -> None:
    """ValueError naming any missing key, unexpected key, or key of the wrong shape."""
    missing = [k for k in expected if k not in found]
    if missing:
        raise ValueError(f"missing key(s) {_summarise(missing)}")
    unexpected = [k for k in found if k not in expected]
    if unexpected:
        raise ValueError(f"unexpected key(s) {_summarise(unexpected)}")
    for key, shape in expected.items():
        if tuple(found[key]) != tuple(shape):
            raise ValueError(f"{key!r}: expected shape {tuple(shape)}, found {tuple(found[key])}")


def params_from_torch(state_dict: Mapping[str, Any], model: DRUNet | None = None) -> Params:
    """Convert a DPIR-layout PyTorch state dict into this module's ``params`` collection.

    Args:
      state_dict: names → NumPy arrays or torch tensors, keys as in ``drunet_color.pth``.
      model: the architecture to expect; inferred from the state dict when ``None``.

    Returns:
      The ``params`` collection as a nested dict of float32 ``jax.Array`` (apply it with
      ``model.apply({"params": params}, x, sigma)``).

    Raises:
      ValueError: naming a missing key, an unexpected key, or a tensor of the wrong shape.
    """
    arrays = {key: _as_numpy(value) for key, value in state_dict.items()}
    shapes = {key: a.shape for key, a in arrays.items()}
    layout = _layout(model or _infer_from_torch(shapes))
    _check_keys(shapes, {e.torch_key: e.torch_shape for e in layout})
    params: Params = {}
    for e in layout:
        node = params
        for name in e.path[:-1]:
            node = node.setdefault(name, {})
        node[e.path[-1]] = jnp.asarray(_to_flax(arrays[e.torch_key], e.transposed), jnp.float32)
    return params


def _flatten(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple]:
    """``(path, leaf)`` pairs of a nested mapping."""
    for name, value in tree.items():
        if isinstance(value, Mapping):
            yield from _flatten(value, (*prefix, name))
        else:
            yield (*prefix, name), value


def _leaf_shape(params: Mapping[str, Any], path: tuple[str, ...]) -> tuple[int, ...]:
    """Shape of the leaf at ``path``, or a ValueError naming the missing path."""
    node: Any = params
    for name in path:
        if not isinstance(node, Mapping) or name not in node:
            raise ValueError(f"missing parameter {'/'.join(path)!r}")
        node = node[name]
    return tuple(np.shape(node))


def _unwrap(params: Mapping[str, Any]) -> Mapping[str, Any]:
    """Accept ``{"params": params}`` (a Flax variables dict) as well as the collection."""
    return params["params"] if set(params) == {"params"} else params


def model_from_params(params: Mapping[str, Any]) -> DRUNet:
    """The :class:`DRUNet` whose parameters ``params`` are (a ``params`` collection or a
    ``{"params": ...}`` variables dict). Leaves may be arrays or ``jax.ShapeDtypeStruct``.

    Raises:
      ValueError: naming a missing, unexpected or mis-shaped parameter.
    """
    params = _unwrap(params)
    head = _leaf_shape(params, ("head", "kernel"))
    downs = [_leaf_shape(params, (f"down{lvl}", "down", "kernel")) for lvl in (1, 2, 3)]
    if len(head) != 4 or any(len(d) != 4 for d in downs):
        raise ValueError(f"head/down kernels must be 4-D (HWIO), got {head} and {downs}")
    body = params.get("body", {})
    nb = sum(bool(re.fullmatch(r"res_\d+", name)) for name in body)
    residual = "skip" in params
    model = DRUNet(
        widths=(head[3], *(d[3] for d in downs)),
        num_blocks=nb,
        channels=head[2] - 1,
        residual=residual,
    )
    found = {"/".join(path): np.shape(leaf) for path, leaf in _flatten(params)}
    expected = {"/".join(e.path): _flax_shape(e) for e in _layout(model)}
    _check_keys(found, expected | ({"skip": ()} if residual else {}))
    return model


def params_to_torch(params: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Exact inverse of :func:`params_from_torch`: a DPIR-layout state dict of NumPy arrays
    (wrap them with ``torch.from_numpy`` for ``load_state_dict``)."""
    params = _unwrap(params)
    model = model_from_params(params)
    if model.residual:
        raise ValueError("a residual DRUNet (parameter 'skip') has no DPIR/PyTorch counterpart")
    out = {}
    for e in _layout(model):
        node: Any = params
        for name in e.path:
            node = node[name]
        out[e.torch_key] = _to_torch(np.asarray(node), e.transposed)
    return out


def count_params(params: Mapping[str, Any]) -> int:
    """Total number of scalars in a parameter tree."""
    return sum(int(np.prod(np.shape(leaf))) for leaf in jax.tree.leaves(params))


# --- Self-describing files ------------------------------------------------------------------


def _check_pnp_sigma(pnp_sigma: Any) -> dict[str, float]:
    """``{task name: σ}`` with each σ in (0, 1], or a ValueError saying which entry is wrong."""
    if not isinstance(pnp_sigma, Mapping):
        raise ValueError(f"pnp_sigma must map task names to noise levels, got {pnp_sigma!r}")
    checked = {}
    for task, sigma in pnp_sigma.items():
        number = isinstance(sigma, int | float) and not isinstance(sigma, bool)
        if not isinstance(task, str) or not number or not 0 < sigma <= 1 or math.isnan(sigma):
            raise ValueError(f"pnp_sigma[{task!r}] must be a noise level in (0, 1], got {sigma!r}")
        checked[task] = float(sigma)
    return checked


def save_params(
    path: str | os.PathLike,
    params: Mapping[str, Any],
    pnp_sigma: Mapping[str, float] | None = None,
    *,
    model: nn.Module | None = None,
) -> None:
    """Write a denoiser to one msgpack file with its architecture and :data:`FORMAT_TAG`:
    ``{"format", "architecture": {"name", <its fields>}, "params"}`` (the record of
    :func:`suppa_jax.models.registry.architecture`), and ``"pnp_sigma"``: the plug-and-play
    noise level tuned for this denoiser per named task (``{"sr2": 0.03, ...}``), when given
    (see :class:`Prior`). ``model``: the architecture (any registered one); by default the
    DRUNet that the shapes of ``params`` describe (:func:`model_from_params`).

    Raises ``ValueError`` when ``params`` are not ``model``'s or ``pnp_sigma`` is malformed.
    """
    params = _unwrap(params)
    model = model_from_params(params) if model is None else model
    registry.check_params(model, params)
    payload = {
        "format": FORMAT_TAG,
        "architecture": registry.architecture(model),
        "params": jax.tree.map(np.asarray, unfreeze(params)),
    }
    if pnp_sigma:
        payload["pnp_sigma"] = _check_pnp_sigma(pnp_sigma)
    with open(path, "wb") as f:
        f.write(serialization.msgpack_serialize(payload))


def _architecture(record: Any, format_tag: str) -> nn.Module:
    """The module of a stored architecture record, or a ValueError saying what is wrong. A
    :data:`FORMAT_TAG_V1` record is a DRUNet's and has no ``name``."""
    if not isinstance(record, Mapping):
        raise ValueError(f"architecture must be a mapping, got {record!r}")
    if format_tag == FORMAT_TAG_V1:
        record = {"name": "drunet", "residual": False, **record}
    if "name" not in record:
        raise ValueError(f"architecture has no model name: {record!r}")
    spec = registry.get(record["name"])
    unknown = set(record) - {"name", *spec.fields}
    if unknown:
        raise ValueError(f"architecture {record['name']!r}: unknown field(s) {sorted(unknown)}")
    try:
        return registry.build(record["name"], record)
    except ValueError as err:
        raise ValueError(f"architecture {record['name']!r}: {err}") from err


@dataclasses.dataclass(frozen=True)
class Prior:
    """A denoiser as a file holds it: the architecture (a registered Flax module), its params,
    and the plug-and-play noise level tuned for it per named task (``pnp_sigma``, empty when
    the file records none, e.g. a PyTorch ``.pth``). The levels belong to these weights:
    another denoiser needs its own. :attr:`denoiser` is the pair as one callable pytree."""

    model: nn.Module
    params: Params
    pnp_sigma: Mapping[str, float] = dataclasses.field(default_factory=dict)
    path: Path | None = None

    @property
    def denoiser(self) -> Denoiser:
        """``denoiser(x, σ)``: the model with its params (:class:`~suppa_jax.models.Denoiser`)."""
        return Denoiser.of(self.model, self.params)


def _read_msgpack(path: str | os.PathLike) -> Prior:
    with open(path, "rb") as f:
        data = f.read()
    try:
        payload = serialization.msgpack_restore(data)
    except Exception as err:  # msgpack raises several unrelated types on corrupt input
        raise ValueError(f"{path}: not a msgpack file ({type(err).__name__}: {err})") from err
    tag = payload.get("format") if isinstance(payload, Mapping) else None
    if tag not in (FORMAT_TAG, FORMAT_TAG_V1):
        raise ValueError(f"{path}: not a denoiser params file (no format tag {FORMAT_TAG!r})")
    try:
        model = _architecture(payload.get("architecture"), tag)
        params = payload.get("params")
        if not isinstance(params, Mapping):
            raise ValueError("no params tree")
        registry.check_params(model, params)
        pnp_sigma = _check_pnp_sigma(payload.get("pnp_sigma", {}))
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), dict(params))
    return Prior(model, params, pnp_sigma, Path(path))


def load_params(path: str | os.PathLike) -> tuple[nn.Module, Params]:
    """Read a file written by :func:`save_params`: returns ``(model, params)``.

    Raises:
      ValueError: naming ``path`` when it is not a msgpack file, lacks the format tag, has a
        malformed architecture or ``pnp_sigma``, or holds parameters that do not match that
        architecture.
    """
    prior = _read_msgpack(path)
    return prior.model, prior.params


# --- PyTorch files ---------------------------------------------------------------------------


def read_state_dict(path: str) -> Mapping[str, Any]:
    """The state dict stored in a ``.pth`` file (bare, or under ``state_dict``/``params``).

    Raises:
      ValueError: naming ``path`` when torch is missing, the file cannot be read, or it holds
        no mapping of names to tensors.
    """
    try:
        import torch
    except ImportError as err:
        raise ValueError(
            f"{path}: reading .pth files needs PyTorch; install it with `pip install torch`"
        ) from err
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load raises many types (OSError, pickle, zip, runtime)
        raise ValueError(
            f"{path}: cannot read a PyTorch file ({type(err).__name__}: {err})"
        ) from err
    for key in _NESTED_KEYS:
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path}: expected a state dict, found {type(obj).__name__}")
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{path}: {key!r} is a {type(value).__name__}, not a tensor")
    return obj


def load_prior(path: str | os.PathLike) -> Prior:
    """The denoiser in a ``.msgpack`` (:func:`save_params`) or PyTorch ``.pth``/``.pt`` file,
    with the PnP noise levels the file records.

    Raises ``ValueError`` naming the file when it is missing, of another type, or not a
    denoiser (a ``.pth`` must be a DRUNet in DPIR's layout).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: cannot read: no such file")
    if path.suffix.lower() not in PARAMS_SUFFIXES:
        raise ValueError(f"{path}: not a params file (expected {', '.join(PARAMS_SUFFIXES)})")
    if path.suffix.lower() == ".msgpack":
        return _read_msgpack(path)
    state_dict = read_state_dict(str(path))  # its errors name the file
    try:
        params = params_from_torch(state_dict)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err
    return Prior(model_from_params(params), params, {}, path)


def load_denoiser(path: str | os.PathLike) -> Params:
    """The params of :func:`load_prior` (``.msgpack`` or ``.pth``/``.pt``)."""
    return load_prior(path).params
