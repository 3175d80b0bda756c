"""Reading and writing images: bit depth, alpha, grayscale, EXIF orientation, atomic writes.

Everything is returned as float32 H×W×3 in [0, 1]. What the pixels alone cannot say (the source's
alpha channel, bit depth and whether it was grayscale) travels in :class:`ImageData`, so
:func:`save_image` can write a restored image back in the form it came in.

Pillow does the work for 8-bit images and 16-bit grayscale TIFF. Pillow reduces 16-bit RGB(A) and
gray+alpha PNG/TIFF to 8 bits on read and cannot write them at all, so this package carries a small
numpy + zlib PNG codec (all five filter types, Adam7) and a baseline TIFF codec (uncompressed or
Deflate, predictor 1/2, strips) for 16-bit images. 16-bit TIFFs with other compressions (LZW,
PackBits) are read with ``tifffile`` when it is installed, otherwise refused with ImageReadError.

Bad files raise :class:`~aioir.errors.ImageReadError` / :class:`~aioir.errors.ImageWriteError`
with a one-line ``"<path>: <problem>"`` message.

Modules: :mod:`~aioir.io.images` (this API: read, write, list, convert), :mod:`~aioir.io.png16`
and :mod:`~aioir.io.tiff16` (the 16-bit codecs), :mod:`~aioir.io.atomic` (the atomic file
writer), :mod:`~aioir.io.limits` (the pixel limit every decoder checks).
"""

from __future__ import annotations

from aioir.io.atomic import write_bytes_atomically
from aioir.io.images import (
    SUPPORTED_SUFFIXES,
    ImageData,
    is_image_file,
    list_images,
    load_image,
    read_image,
    save_image,
    to_float,
    to_uint8,
    write_image,
)
from aioir.io.limits import MAX_PIXELS

__all__ = [
    "MAX_PIXELS",
    "SUPPORTED_SUFFIXES",
    "ImageData",
    "is_image_file",
    "list_images",
    "load_image",
    "read_image",
    "save_image",
    "to_float",
    "to_uint8",
    "write_bytes_atomically",
    "write_image",
]
