"""Reading and writing images at their full bit depth: PNG, JPEG, TIFF (and what Pillow reads).

Pixels come in as float32 ``(H, W, C)`` in [0, 1] with ``C = 1`` (grayscale) or ``3`` (colour),
whatever the file's depth: an 8-bit value ``v`` is ``v / 255``, a 16-bit one ``v / 65535``, a
floating-point TIFF is taken as it is (and must lie in [0, 1]). An alpha channel is dropped and
a palette image is expanded to RGB. Writing is the inverse, rounding to the nearest level of the
requested depth after clipping to [0, 1].

Which library does what: Pillow (8-bit anything, 16-bit grayscale PNG), pypng (16-bit colour
PNG, which Pillow reads only as 8-bit) and tifffile (TIFF at any depth). The depth of a PNG is
read from its header before choosing, so a 16-bit file is never silently truncated.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import png
import tifffile
from PIL import Image as PILImage

__all__ = ["BIT_DEPTHS", "Image", "read_image", "read_pixels", "write_image"]

#: The integer depths files are written at.
BIT_DEPTHS = (8, 16)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TIFF_SUFFIXES = (".tif", ".tiff")
_EIGHT_BIT_ONLY = (".jpg", ".jpeg", ".bmp", ".webp")


@dataclasses.dataclass(frozen=True)
class Image:
    """An image read from a file: ``pixels`` float32 ``(H, W, C)`` in [0, 1], ``C`` 1 or 3;
    ``bit_depth``: the file's depth (8, 16, or 32 for a floating-point TIFF)."""

    pixels: np.ndarray
    bit_depth: int

    @property
    def channels(self) -> int:
        return self.pixels.shape[-1]


def _png_bit_depth(path: Path) -> int | None:
    """The bit depth in a PNG's header, or ``None`` when ``path`` is not a PNG."""
    with open(path, "rb") as f:
        head = f.read(25)
    if len(head) < 25 or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    return head[24]


def _channels_last(pixels: np.ndarray, path: Path) -> np.ndarray:
    """``(H, W)`` or ``(H, W, 1..4)`` → ``(H, W, 1 | 3)``: alpha dropped."""
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.ndim != 3 or pixels.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(f"{path}: expected an (H, W[, 1-4]) image, got shape {pixels.shape}")
    return pixels[..., :1] if pixels.shape[-1] in (1, 2) else pixels[..., :3]


def _to_unit(pixels: np.ndarray, path: Path) -> tuple[np.ndarray, int]:
    """Integer or float pixels → float32 in [0, 1], and the bit depth they had."""
    if pixels.dtype == np.uint8:
        return pixels.astype(np.float32) / 255, 8
    if pixels.dtype == np.uint16:
        return pixels.astype(np.float32) / 65535, 16
    if np.issubdtype(pixels.dtype, np.floating):
        pixels = pixels.astype(np.float32)
        if not np.all(np.isfinite(pixels)) or pixels.min() < 0 or pixels.max() > 1:
            raise ValueError(
                f"{path}: floating-point pixels must be finite and in [0, 1], found "
                f"[{np.nanmin(pixels):g}, {np.nanmax(pixels):g}]"
            )
        return pixels, 32
    raise ValueError(f"{path}: unsupported pixel type {pixels.dtype} (8-bit, 16-bit or float)")


def _read_png16(path: Path) -> np.ndarray:
    width, height, rows, info = png.Reader(filename=str(path)).asDirect()
    planes = info["planes"]
    pixels = np.vstack([np.asarray(row, np.uint16) for row in rows])
    return pixels.reshape(height, width, planes)


def _read_pillow(path: Path) -> np.ndarray:
    with PILImage.open(path) as image:
        if image.mode.startswith("I;16"):
            return np.asarray(image).astype(np.uint16)
        if image.mode in ("1", "L", "LA", "RGB", "RGBA"):
            return np.asarray(image.convert("L" if image.mode == "1" else image.mode))
        return np.asarray(image.convert("RGBA" if "A" in image.getbands() else "RGB"))


def read_pixels(path: str | os.PathLike) -> np.ndarray:
    """The pixels stored in ``path`` as they are: ``uint8``, ``uint16`` or (TIFF) float,
    ``(H, W, 1 | 3)`` (alpha dropped). What the training sources read; see :func:`read_image`.

    Raises ``ValueError`` naming the file when it is missing, cannot be decoded, or holds
    something other than a grayscale or colour image.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such image file")
    try:
        if path.suffix.lower() in _TIFF_SUFFIXES:
            pixels = tifffile.imread(path)
        elif (_png_bit_depth(path) or 8) == 16:
            pixels = _read_png16(path)
        else:
            pixels = _read_pillow(path)
    except (OSError, ValueError, png.Error, PILImage.DecompressionBombError) as err:
        raise ValueError(f"{path}: cannot read the image ({type(err).__name__}: {err})") from err
    return _channels_last(np.asarray(pixels), path)


def read_image(path: str | os.PathLike) -> Image:
    """The image in ``path`` as float32 ``(H, W, 1 | 3)`` in [0, 1], with its bit depth.

    Raises ``ValueError`` naming the file when it is missing, cannot be decoded, or holds
    something other than a grayscale or colour image.
    """
    unit, depth = _to_unit(read_pixels(path), Path(path))
    return Image(unit, depth)


def _quantise(x: np.ndarray, bit_depth: int) -> np.ndarray:
    levels = 2**bit_depth - 1
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    return np.round(np.clip(x, 0.0, 1.0) * levels).astype(dtype)


def _pillow_format(path: Path) -> str:
    formats = PILImage.registered_extensions()
    if path.suffix.lower() not in formats:
        raise ValueError(f"{path}: unknown image format {path.suffix!r} (use .png, .tif or .jpg)")
    return formats[path.suffix.lower()]


def write_image(path: str | os.PathLike, x: np.ndarray, bit_depth: int = 8) -> Path:
    """Write ``x`` (``(H, W)`` or ``(H, W, 1 | 3)``, values in [0, 1]) to ``path`` at
    ``bit_depth`` 8 or 16, in the format of its suffix (PNG, TIFF; JPEG and the other 8-bit
    formats at 8 bits only). The file is written to a temporary name and renamed, so a failed
    write leaves no partial image. Returns ``path``."""
    path = Path(path)
    if bit_depth not in BIT_DEPTHS:
        raise ValueError(f"bit_depth must be one of {BIT_DEPTHS}, got {bit_depth!r}")
    suffix = path.suffix.lower()
    if bit_depth == 16 and suffix not in (".png", *_TIFF_SUFFIXES):
        raise ValueError(f"{path}: {suffix or 'no suffix'} holds 8 bits only; use .png or .tif")
    x = np.asarray(x, np.float32)
    if x.ndim == 3 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim not in (2, 3) or (x.ndim == 3 and x.shape[-1] != 3):
        raise ValueError(f"{path}: expected an (H, W[, 1|3]) image, got shape {x.shape}")
    if suffix not in _TIFF_SUFFIXES:
        _pillow_format(path)  # an unknown suffix fails before anything is written
    pixels = _quantise(x, bit_depth)
    partial = path.with_name(f".{path.name}.partial")
    try:
        if suffix in _TIFF_SUFFIXES:
            tifffile.imwrite(partial, pixels, photometric="rgb" if x.ndim == 3 else "minisblack")
        elif bit_depth == 16 and x.ndim == 3:
            height, width, _ = pixels.shape
            writer = png.Writer(width, height, greyscale=False, bitdepth=16)
            with open(partial, "wb") as f:
                writer.write(f, pixels.reshape(height, width * 3))
        else:
            image = PILImage.fromarray(pixels)  # uint16 (H, W) → mode "I;16"
            image.save(partial, format=_pillow_format(path))
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path
