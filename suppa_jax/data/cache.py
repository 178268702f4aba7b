"""A persistent cache of decoded images: each image is decoded once, then read a slice at a time.

Training reads one small patch of a large image at a time (the paper's epoch is one 96² patch
per 2K DIV2K image), so decoding the whole PNG for every patch makes the input pipeline, not
the accelerator, the bottleneck. :class:`DecodedCache` stores each decoded image as an ``.npy``
file (``uint8`` or ``uint16``, ``(H, W, 3)``, C order) under a directory, and hands out a
:class:`CachedImage`: its ``shape`` comes from the file's header, and a crop
``image[top:top + h, left:left + w]`` reads only rows ``top … top + h`` (one ``read`` of
``h·W·3`` values), so a 96² patch of a 2K image costs about half a megabyte of I/O from the page
cache instead of a PNG decode.

* **Keys**: an entry is named by a hash of the image's identity (a file's resolved path, size and
  modification time; a TFDS record's dataset, version, split, index and feature) and of
  :data:`FORMAT`. An image that changes, or a new cache format, gets a new key: a stale entry is
  never looked up (delete the directory to reclaim its space).
* **Writes are atomic**: each writer writes a file of its own (process id and a random suffix)
  and renames it into place, so concurrent writers (grain workers, several hosts on a shared
  directory) never expose a partial entry; the last rename wins, with the same content.
* **Bad entries are rebuilt, never read**: every read checks the entry's size against its header
  (no memory map: a file truncated under a map would crash the reader) and that the bytes it
  asked for arrived. An entry that does not parse as ``.npy``, has another shape or type, or
  whose size is not exactly header plus data (truncated, or garbage appended) is decoded again
  and replaced, at start-up or in the middle of a run.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from suppa_jax.config.schema import DECODED_CACHE

__all__ = ["DEFAULT_DIRECTORY", "FORMAT", "CachedImage", "DecodedCache", "file_identity"]

#: The cache's layout version, part of every key.
FORMAT = 1
#: Where ``config.data.cache_dir`` puts the cache by default.
DEFAULT_DIRECTORY = DECODED_CACHE
_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16))


def file_identity(path: Path) -> str:
    """What names a file's decoded image: its resolved path, size and modification time."""
    stat = path.stat()
    return f"file|{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


class _Header(NamedTuple):
    """An entry's array description and the exact bytes it was read from."""

    shape: tuple[int, int, int]
    dtype: np.dtype
    offset: int
    raw: bytes

    @property
    def file_size(self) -> int:
        return self.offset + int(np.prod(self.shape)) * self.dtype.itemsize


class _BadEntryError(Exception):
    """An entry that cannot be trusted: it is rebuilt."""


def _read_header(f: Any) -> _Header:
    """The header of an open ``.npy`` entry, checked against the file's size."""
    readers = {
        (1, 0): np.lib.format.read_array_header_1_0,
        (2, 0): np.lib.format.read_array_header_2_0,
    }
    try:
        version = np.lib.format.read_magic(f)
        if version not in readers:
            raise ValueError(f".npy version {version}")
        shape, fortran, dtype = readers[version](f)
    except (ValueError, EOFError, OSError) as err:
        raise _BadEntryError(str(err)) from err
    offset = f.tell()
    f.seek(0)
    header = _Header(tuple(shape), np.dtype(dtype), offset, f.read(offset))
    good = len(shape) == 3 and shape[-1] == 3 and header.dtype in _DTYPES and not fortran
    if not good or os.fstat(f.fileno()).st_size != header.file_size:
        raise _BadEntryError(f"{header} does not describe an image entry of this size")
    return header


class CachedImage:
    """An image of a :class:`DecodedCache`, read on demand: ``shape``, ``dtype``, ``ndim``,
    ``image[rows, ...]`` (a slice of rows reads just those rows; any other index reads the whole
    image) and ``np.asarray(image)``. A bad entry met on a read is rebuilt and read again."""

    def __init__(
        self, cache: DecodedCache, identity: str, decode: Callable[[], np.ndarray], header: _Header
    ) -> None:
        self._cache, self._identity, self._decode, self._header = cache, identity, decode, header

    @property
    def shape(self) -> tuple[int, int, int]:
        return self._header.shape

    @property
    def dtype(self) -> np.dtype:
        return self._header.dtype

    @property
    def ndim(self) -> int:
        return 3

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start … stop − 1`` as a read-only ``(stop − start, W, 3)`` array."""
        try:
            return self._cache.read_rows(self._identity, self._header, start, stop)
        except _BadEntryError:
            self._header = self._cache.rebuild(self._identity, self._decode)
            return self._cache.read_rows(self._identity, self._header, start, stop)

    def __getitem__(self, key: Any) -> np.ndarray:
        first, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        if isinstance(first, slice) and first.step in (None, 1):
            start, stop, _ = first.indices(self.shape[0])
            rows = self.rows(start, max(start, stop))
            # A crop is copied out of its rows at once, so that the whole rows (a 256² crop of
            # a 2K image reads 1.6 MB) are freed before the next read: a batch holding 16 such
            # views made every read a fresh allocation, which cost twice the read itself.
            return np.array(rows[(slice(None), *rest)]) if rest else rows
        return np.asarray(self)[key]

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        image = self.rows(0, self.shape[0])
        return image if dtype is None else image.astype(dtype)

    def __len__(self) -> int:
        return self.shape[0]


class DecodedCache:
    """Decoded images as ``.npy`` files under ``directory`` (see the module docstring).

    Raises ``ValueError`` naming the directory when it cannot be created or written.
    """

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory).expanduser()
        self._headers: dict[str, _Header] = {}  # checked by this process; reads re-check them
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ValueError(self._unwritable(err)) from err

    def _unwritable(self, err: OSError) -> str:
        return (
            f"{self.directory}: cannot write the decoded-image cache ({err.strerror or err}); "
            "set config.data.cache_dir to a writable directory, or to '' to decode every read"
        )

    def path(self, identity: str) -> Path:
        """The entry file of ``identity``."""
        digest = hashlib.sha256(f"v{FORMAT}|{identity}".encode()).hexdigest()[:40]
        return self.directory / f"{digest}.npy"

    def header(self, identity: str) -> _Header | None:
        """The entry's checked header; ``None`` when it is missing or bad (a bad one is
        removed)."""
        path = self.path(identity)
        try:
            with open(path, "rb") as f:
                return _read_header(f)
        except FileNotFoundError:
            return None
        except _BadEntryError:
            path.unlink(missing_ok=True)
            return None

    def store(self, identity: str, image: np.ndarray) -> _Header:
        """Write ``image`` (``uint8``/``uint16`` ``(H, W, 3)``) as the entry of ``identity``,
        atomically; returns its header."""
        path = self.path(identity)
        partial = path.with_name(f"{path.stem}.{os.getpid()}.{secrets.token_hex(4)}.partial")
        try:
            with open(partial, "wb") as f:
                np.save(f, np.ascontiguousarray(image), allow_pickle=False)
            os.replace(partial, path)
        except OSError as err:
            partial.unlink(missing_ok=True)
            raise ValueError(self._unwritable(err)) from err
        with open(path, "rb") as f:
            header = _read_header(f)
        self._headers[identity] = header
        return header

    def rebuild(self, identity: str, decode: Callable[[], np.ndarray]) -> _Header:
        """Decode the image again and replace its entry."""
        return self.store(identity, decode())

    def read_rows(self, identity: str, header: _Header, start: int, stop: int) -> np.ndarray:
        """Rows ``start … stop − 1`` of the entry, read (not mapped) after checking that its
        header bytes and size are still ``header``'s; :class:`_BadEntryError` when the entry is
        missing, changed, resized or short."""
        try:
            with open(self.path(identity), "rb") as f:
                if os.fstat(f.fileno()).st_size != header.file_size:
                    raise _BadEntryError("resized")
                if f.read(header.offset) != header.raw:
                    raise _BadEntryError("another header")
                height, width, channels = header.shape
                start, stop = max(0, start), min(stop, height)
                row = width * channels * header.dtype.itemsize
                f.seek(header.offset + start * row)
                data = f.read((stop - start) * row)
        except FileNotFoundError as err:
            raise _BadEntryError("missing") from err
        if len(data) != (stop - start) * row:
            raise _BadEntryError("short read")
        return np.frombuffer(data, header.dtype).reshape(stop - start, width, channels)

    def get(self, identity: str, decode: Callable[[], np.ndarray]) -> CachedImage:
        """The cached image of ``identity``, decoded with ``decode()`` and stored on a miss."""
        header = self._headers.get(identity) or self.header(identity)
        if header is None:
            header = self.store(identity, decode())
        self._headers[identity] = header
        return CachedImage(self, identity, decode, header)
