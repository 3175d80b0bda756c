"""The restoration API: :class:`Restorer` (a loaded model for repeated calls) and :func:`restore`.

>>> from aioir.restore import Restorer, restore
>>> out = restore(photo, model="runs/udair-5task")            # numpy/PIL/torch in → same kind out
>>> restorer = Restorer("udair", checkpoint="udair.safetensors", tile=512)
>>> restorer.restore_file("in.jpg", "out/in.png")

Inputs may be numpy arrays (uint8, uint16 or float in [0, 1]; H×W×3, H×W×4 with alpha, H×W or
H×W×1 grayscale, H×W×2 grayscale + alpha), PIL images (RGB, L, RGBA, LA, I;16, F, and any mode
Pillow converts to RGB) or torch tensors (3×H×W or B×3×H×W, float or uint8). The result has the input's kind, shape, dtype
(value range) and, for PIL, mode; alpha is carried through unchanged and grayscale inputs come
back as grayscale (BT.601 luma of the restored RGB). Float inputs (numpy, PIL ``F``, tensors)
must be in [0, 1]: values above :data:`FLOAT_RANGE_LIMIT` (a 0–255 float image) raise
:class:`~aioir.errors.ConfigError` instead of being clipped to white; small overshoots go to
the model as they are (the output is clipped to [0, 1]).

Device ``"auto"`` is CUDA when available, else the CPU. Precision ``"auto"`` is fp32 on the CPU
(bf16 autocast only when asked: ``precision="bf16"``) and bf16 autocast on a GPU that supports
it, fp16 otherwise. ``tile=None`` decides between one pass and tiles from the image size and the
free memory (:func:`aioir.restore.tiling.choose_tile`); ``tile=0`` never tiles; ``tile=N`` uses
N×N tiles (at least twice the overlap: :func:`aioir.restore.tiling.minimum_tile`). The tiles of
an image share its per-image decisions (:mod:`aioir.nn.image_statistics`), so a tiled restoration
matches the one-pass one.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from aioir.color import BT601_LUMA
from aioir.errors import ConfigError, ImageWriteError
from aioir.io import ImageData, load_image, save_image, write_image
from aioir.models.protocols import DecisionReporter, TaskSuggester, TaskSuggestion
from aioir.models.wrappers import options_taker, unwrap
from aioir.nn import ensemble
from aioir.nn.image_statistics import has_image_statistics
from aioir.nn.memory_format import to_channels_last
from aioir.restore.adaptation import (
    TestTimeAdapter,
    adapter_for_task,
    get_test_time_adapter,
)
from aioir.restore.resolve import DEFAULT_MODEL, resolve_model
from aioir.restore.tiling import (
    Progress,
    available_memory,
    choose_tile,
    memory_budget,
    minimum_tile,
    model_bytes_per_pixel,
    round_tile,
    run_padded,
    tiled_forward,
)

__all__ = [
    "FLOAT_RANGE_LIMIT",
    "PRECISIONS",
    "Restorer",
    "compare_image",
    "resolve_device",
    "restore",
]

PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")
_BIT_DTYPES = {8: np.uint8, 16: np.uint16}
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → CUDA if available, else CPU; ConfigError for an unusable device."""
    if isinstance(device, torch.device):
        return device
    name = str(device).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"unknown device {device!r} (use auto, cpu or cuda)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device cuda was asked for but CUDA is not available")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"device {name} does not exist ({torch.cuda.device_count()} GPUs)")
    return dev


def _resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r} (use {', '.join(PRECISIONS)})")
    if precision != "auto":
        return _DTYPES[precision]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


# ------------------------------------------------------------------------------ conversions
def _luma(rgb: Tensor) -> Tensor:
    """B×3×H×W → B×H×W (BT.601)."""
    wr, wg, wb = BT601_LUMA  # as aioir.io writes grayscale
    return rgb[:, 0] * wr + rgb[:, 1] * wg + rgb[:, 2] * wb


def _quantize(array: np.ndarray, dtype: np.dtype, rows: int = 512) -> np.ndarray:
    """Float in [0, 1] (clipped, rounded) to ``dtype``, a band of rows at a time (bounded
    temporaries for very large images); integer arrays of ``dtype`` are returned as they are."""
    dtype = np.dtype(dtype)
    if array.dtype == dtype:
        return array
    if array.dtype in (np.uint8, np.uint16):  # rescale another integer depth
        array = array.astype(np.float32) / np.float32(np.iinfo(array.dtype).max)
    top = np.float32(np.iinfo(dtype).max)
    out = np.empty(array.shape, dtype=dtype)
    for r in range(0, max(1, array.shape[0]), rows):
        band = np.clip(array[r : r + rows], 0.0, 1.0).astype(np.float32, copy=False)
        out[r : r + rows] = np.rint(band * top)
    return out


#: a float image whose largest value is above this is not in [0, 1] (most likely 0–255):
#: refused rather than clipped to a near-white image; small overshoots below it (resampling
#: ringing, highlights) are accepted
FLOAT_RANGE_LIMIT = 2.0


def _check_float_range(top: float, dtype: object) -> None:
    """ConfigError when a float image's largest value ``top`` says it is not in [0, 1]."""
    if top > FLOAT_RANGE_LIMIT:
        scale = "0–255" if top <= 255.5 else ("0–65535" if top <= 65535.5 else "an unknown range")
        raise ConfigError(
            f"float image values go up to {top:g}: float images must be in [0, 1], this looks "
            f"like {scale}; divide by {255 if top <= 255.5 else 65535} or pass an integer "
            f"array (uint8 / uint16), not {dtype}"
        )


def _from_unit(array: np.ndarray) -> np.ndarray:
    """Integer arrays to float32 in [0, 1]; float arrays (in [0, 1]) to float32."""
    if array.dtype in (np.uint8, np.uint16):
        return (array.astype(np.float64) / np.iinfo(array.dtype).max).astype(np.float32)
    if np.issubdtype(array.dtype, np.floating):
        if array.size:
            _check_float_range(float(np.nanmax(array)), array.dtype)
        return array.astype(np.float32)
    raise TypeError(f"unsupported array dtype {array.dtype} (use uint8, uint16 or float)")


Unpack = Callable[[Tensor], Any]


def _pack_numpy(array: np.ndarray) -> tuple[Tensor, Unpack]:
    """numpy H×W(×C) → 1×3×H×W float32, and the function turning the output back."""
    dtype, shape = array.dtype, array.shape
    if array.ndim == 2 or (array.ndim == 3 and shape[2] in (1, 2)):
        gray = _from_unit(array[:, :, 0] if array.ndim == 3 else array)
        rgb, is_gray = np.repeat(gray[:, :, None], 3, axis=2), True
        alpha = array[:, :, 1:] if array.ndim == 3 and shape[2] == 2 else None
    elif array.ndim == 3 and shape[2] in (3, 4):
        rgb, alpha, is_gray = _from_unit(array[:, :, :3]), array[:, :, 3:], False
        alpha = alpha if shape[2] == 4 else None
    else:
        raise ValueError(f"expected an H×W or H×W×C array (C = 1, 2, 3 or 4), got shape {shape}")
    if 0 in shape[:2]:
        raise ValueError(f"image has no pixels (shape {shape})")

    def unpack(out: Tensor) -> np.ndarray:
        if is_gray:
            result = _luma(out)[0].cpu().numpy()
            result = result[:, :, None] if len(shape) == 3 else result
        else:
            result = out[0].permute(1, 2, 0).cpu().numpy()
        if np.issubdtype(dtype, np.integer):
            result = _quantize(result, dtype)
        else:
            result = result.astype(dtype)
        if alpha is not None:
            result = np.concatenate([result, alpha], axis=2)
        return np.ascontiguousarray(result)

    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None], unpack


def _pack_pil(image: Any) -> tuple[Tensor, Unpack]:
    from PIL import Image

    mode = image.mode
    if mode in ("RGB", "L", "RGBA", "LA"):
        array = np.asarray(image)
    elif mode.startswith("I;16"):
        array = np.asarray(image).astype(np.uint16)
    elif mode == "F":
        array = np.asarray(image, dtype=np.float32)
    else:
        keep_alpha = "A" in mode or "transparency" in image.info
        array = np.asarray(image.convert("RGBA" if keep_alpha else "RGB"))
    tensor, unpack_array = _pack_numpy(array)

    def unpack(out: Tensor) -> Any:
        converted = Image.fromarray(unpack_array(out))  # mode follows the array: L, LA, RGB(A), …
        if mode in ("RGB", "L", "RGBA", "LA", "F") or mode.startswith("I;16"):
            return converted
        if mode == "P":
            return converted.convert("P", palette=Image.Palette.ADAPTIVE)
        return converted.convert(mode)

    return tensor, unpack


def _pack_tensor(x: Tensor) -> tuple[Tensor, Unpack]:
    if x.ndim not in (3, 4) or x.shape[-3] != 3:
        raise ValueError(f"expected a 3×H×W or B×3×H×W tensor, got shape {tuple(x.shape)}")
    dtype, device, single = x.dtype, x.device, x.ndim == 3
    if dtype == torch.uint8:
        batch = x.float() / 255.0
    elif dtype.is_floating_point:
        batch = x.detach().float()
        if batch.numel():
            _check_float_range(float(batch.nan_to_num(nan=0.0).max()), dtype)
    else:
        raise TypeError(f"unsupported tensor dtype {dtype} (use a float dtype or uint8)")
    batch = batch[None] if single else batch

    def unpack(out: Tensor) -> Tensor:
        out = out.to(device)
        out = (out * 255.0).round().to(torch.uint8) if dtype == torch.uint8 else out.to(dtype)
        return out[0] if single else out

    return batch, unpack


def _pack(image: Any) -> tuple[Tensor, Unpack]:
    if isinstance(image, Tensor):
        return _pack_tensor(image)
    if isinstance(image, np.ndarray):
        return _pack_numpy(image)
    from PIL import Image

    if isinstance(image, Image.Image):
        return _pack_pil(image)
    raise TypeError(
        f"cannot restore a {type(image).__name__}; pass a numpy array, a PIL image or a tensor"
    )


def compare_image(before: np.ndarray, after: np.ndarray, separator: int = 4) -> np.ndarray:
    """``before | after`` side by side as uint8 H×(2W+separator)×3, with a white separator."""
    left = _quantize(np.asarray(before), np.dtype(np.uint8))
    right = _quantize(np.asarray(after), np.dtype(np.uint8))
    if left.shape != right.shape or left.ndim != 3:
        raise ValueError(f"shapes differ: {left.shape} vs {right.shape}")
    bar = np.full((left.shape[0], separator, 3), 255, dtype=np.uint8)
    return np.concatenate([left, bar, right], axis=1)


# ------------------------------------------------------------------------------ Restorer
class Restorer:
    """A loaded model ready to restore images of any size, one after the other.

    Args:
        model: ``"default"``, a registered name, a saved-model path or an ``nn.Module`` (see
            :func:`aioir.restore.resolve_model`).
        checkpoint: weights for a registered name.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a ``torch.device``.
        tile: ``None`` (decide from size and memory), ``0`` (never tile) or a tile side (at
            least twice ``tile_overlap``; ConfigError below).
        tile_overlap: pixels shared by neighbouring tiles.
        tile_batch_size: tiles per forward call (default 1 on the CPU, 4 on a GPU).
        precision: ``"auto"``, ``"fp32"``, ``"bf16"`` or ``"fp16"`` (autocast).
        tta: ``True`` to use the model's registered test-time adapter (ConfigError when it has
            none), or a :class:`~aioir.restore.adaptation.TestTimeAdapter` to use.
        self_ensemble: average over flips/rotations of the input (:mod:`aioir.nn.ensemble`):
            ``"flips"`` (4 passes, orientation kept), ``"mirror"`` (2 passes, up kept),
            ``"all"`` (8 passes) or ``True``, the model's own mode (``mirror`` for the default
            model, else ``flips``: :func:`~aioir.nn.ensemble.preferred_mode`).
        follow_hint: when the model hints after an image (:meth:`suggested_task`: a degradation
            it read but restored cautiously) and is sure of it (``TaskSuggestion.sure``),
            restore that image again told the hinted task and return that
            (:meth:`followed_hint` says which). Those images cost a second restoration; a model
            that gives no hints, or one told its task (``model_options={"task": …}``), refuses
            it (ConfigError).
        allow_untrained: allow a registered name without weights (random weights; tests only).
        artifacts: files attached to the model (``{"bank": PATH}``: UDAIR's source bank, e.g.
            the authors' ``source_domain_distrib.pth`` beside their checkpoint).
        strength: how much of the restoration to apply, in [0, 1]: the output is
            ``input + strength · (restored − input)`` (1, the default, is the model's output; 0
            returns the input). A user's control over a model that over-corrects a photo.
        model_options: the model's own inference options (e.g. ``{"adapter_mode": "soft"}``,
            ``{"task": "lowlight"}``), given to the ``set_inference_options`` of the outermost
            of the model and the networks it wraps that has one (:class:`~aioir.models.
            protocols.InferenceConfigurable`); ConfigError for a model that takes none.

    Attributes:
        on_tile: ``None`` or a callable run after each batch of tiles of a tiled pass as
            ``on_tile(tiles done, tiles in the pass)`` (``aioir restore`` shows it as a bar).
    """

    on_tile: Progress | None = None

    def __init__(
        self,
        model: str | os.PathLike[str] | nn.Module = DEFAULT_MODEL,
        *,
        checkpoint: str | os.PathLike[str] | None = None,
        device: str | torch.device = "auto",
        tile: int | None = None,
        tile_overlap: int = 32,
        tile_batch_size: int | None = None,
        precision: str = "auto",
        tta: bool | Mapping[str, Any] | TestTimeAdapter = False,
        self_ensemble: bool | str = False,
        allow_untrained: bool = False,
        strength: float = 1.0,
        artifacts: Mapping[str, str | os.PathLike[str] | None] | None = None,
        model_options: Mapping[str, Any] | None = None,
        follow_hint: bool = False,
    ) -> None:
        if not 0.0 <= strength <= 1.0:  # also refuses NaN
            raise ConfigError(f"strength must be between 0 and 1, not {strength}")
        if tile is not None and tile < 0:
            raise ConfigError(f"tile must be >= 0 (0 = no tiling), not {tile}")
        if tile_overlap < 0:
            raise ConfigError(f"tile overlap must be >= 0, not {tile_overlap}")
        if tile_batch_size is not None and tile_batch_size < 1:
            raise ConfigError(f"tile batch size must be >= 1, not {tile_batch_size}")
        self.device = resolve_device(device)
        self.dtype = _resolve_precision(precision, self.device)
        self.model = resolve_model(
            model, checkpoint, allow_untrained=allow_untrained, artifacts=artifacts
        )
        self.model.to(self.device).eval()
        self.name = (
            os.fspath(model) if isinstance(model, (str, os.PathLike)) else type(model).__name__
        )
        if model_options:
            self.set_model_options(model_options)
        # channels-last convolutions are 1.2–1.5× faster on CPUs (benchmarks/RESULTS.md)
        self.channels_last = self.device.type == "cpu"
        if self.channels_last:
            to_channels_last(self.model)
        self.multiple = max(1, int(getattr(self.model, "size_multiple", 1)))
        smallest = minimum_tile(tile_overlap, self.multiple)
        if tile and round_tile(tile, self.multiple) < smallest:
            raise ConfigError(
                f"tile {tile} is too small: with a tile overlap of {tile_overlap} px the smallest "
                f"tile is {smallest} (twice the overlap; 0 restores in one pass)"
            )
        self.tile = tile
        self.tile_overlap = tile_overlap
        # the CPU gains nothing from batching tiles (each op is already multi-threaded), so one
        # larger tile beats several small ones there; a GPU is fed four at a time
        default_batch = 1 if self.device.type == "cpu" else 4
        self.tile_batch_size = tile_batch_size or default_batch
        self.bytes_per_pixel = model_bytes_per_pixel(self.model)
        # whether tiles must share per-image decisions (aioir.nn.image_statistics)
        self.image_statistics = has_image_statistics(self.model)
        mode = ensemble.preferred_mode(self.model) if self_ensemble is True else self_ensemble
        mode = mode or None
        if mode is not None and mode not in ensemble.ENSEMBLE_MODES:
            raise ConfigError(
                f"self-ensemble must be one of {', '.join(ensemble.ENSEMBLE_MODES)}, not {mode!r}"
            )
        self.self_ensemble: str | None = mode
        self.strength = float(strength)
        if tta is True:
            self.adapter: TestTimeAdapter | None = get_test_time_adapter(self.model, self.name)
        elif isinstance(tta, Mapping):  # options for the model's registered adapter
            self.adapter = get_test_time_adapter(self.model, self.name, **tta)
        elif tta is False or tta is None:
            self.adapter = None
        else:
            self.adapter = tta
        self._task_adapters: dict[str, TestTimeAdapter] = {}
        self._hint: TaskSuggestion | None = None
        self._followed: TaskSuggestion | None = None
        self.follow_hint = bool(follow_hint)
        if self.follow_hint:
            if self._hint_giver() is None:
                raise ConfigError(f"model {self.name} gives no hints: there is none to follow")
            if model_options and model_options.get("task"):
                raise ConfigError("the task is given: there is no hint to follow")

    def __repr__(self) -> str:
        return (
            f"Restorer(model={self.name!r}, device={str(self.device)!r}, tile={self.tile}, "
            f"precision={str(self.dtype).removeprefix('torch.')!r}, tta={self.adapter is not None}, "
            f"self_ensemble={self.self_ensemble!r}, strength={self.strength:g}"
            + (", follow_hint=True)" if self.follow_hint else ")")
        )

    def set_model_options(self, options: Mapping[str, Any]) -> None:
        """Apply the model's own inference options (as ``model_options`` does; e.g. per
        image) to the outermost of the model and the networks it wraps that takes them
        (:func:`~aioir.models.wrappers.options_taker`); ConfigError for a model that takes none
        or an invalid option."""
        taker = options_taker(self.model)
        if taker is None:
            raise ConfigError(
                f"model {self.name} takes no inference options ({', '.join(sorted(options))})"
            )
        taker.set_inference_options(**options)

    def decisions(self) -> list[str]:
        """What the network, then its wrapper (the filter-bank head's choice), decided for the
        last restoration, one line per image each
        (:class:`~aioir.models.protocols.DecisionReporter`); empty for a model that reports
        nothing."""
        lines: list[str] = []
        for model in dict.fromkeys([unwrap(self.model), self.model]):  # network, then wrapper
            if isinstance(model, DecisionReporter):
                lines += model.describe_decisions()
        return lines

    def suggested_task(self) -> TaskSuggestion | None:
        """The model's hint after the last restoration: a degradation it read in the first
        image and held back on, which ``task`` (``--task``) would restore as such
        (:class:`~aioir.models.protocols.TaskSuggester`); ``None`` when it gives none or
        cannot. Under a self-ensemble, the hint of its first pass (the image as it is); with
        ``follow_hint``, the hint of the blind restoration, followed or not."""
        return self._hint

    def followed_hint(self) -> TaskSuggestion | None:
        """The hint the last restoration followed (``follow_hint``, a hint the model is sure
        of: its first image was restored again, told ``task``), else ``None``."""
        return self._followed

    def _hint_giver(self) -> TaskSuggester | None:
        """The model that gives hints: the wrapper, else the network; ``None`` when neither."""
        for model in dict.fromkeys([self.model, unwrap(self.model)]):
            if isinstance(model, TaskSuggester):
                return model
        return None

    def _model_hint(self) -> TaskSuggestion | None:
        """The model's own hint for its last forward."""
        giver = self._hint_giver()
        return None if giver is None else giver.suggested_task()

    # ---------------------------------------------------------------- core
    @contextlib.contextmanager
    def _autocast(self) -> Iterator[None]:
        if self.dtype == torch.float32:
            yield
        else:
            with torch.autocast(self.device.type, dtype=self.dtype):
                yield

    def _call_model(self, x: Tensor) -> Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model(x).float().contiguous()

    def tile_for(self, height: int, width: int, batch: int = 1) -> int | None:
        """The tile side used for ``batch`` images of this size (``None``: one pass)."""
        if self.tile == 0:
            return None
        if self.tile is not None:
            return self.tile
        return choose_tile(
            height,
            width,
            bytes_per_pixel=self.bytes_per_pixel * max(1, batch),
            available=available_memory(self.device),
            multiple=self.multiple,
            batch_size=self.tile_batch_size,
            device_type=self.device.type,
            overlap=self.tile_overlap,
        )

    def _run(self, x: Tensor) -> Tensor:
        """Padded or tiled restoration (self-ensembled if asked); float32 on ``x``'s device.
        Keeps the model's hint for the image as it is (the first pass of a self-ensemble) and,
        with ``follow_hint``, restores a hinted image again told the hinted task (one image at
        a time: a hint is one image's)."""
        if not self.follow_hint:
            return self._run_blind(x)
        if x.shape[0] > 1:
            outs, kept = [], (self._hint, self._followed)
            for i in range(x.shape[0]):
                outs.append(self._run(x[i : i + 1]))
                if i == 0:
                    kept = (self._hint, self._followed)
            self._hint, self._followed = kept  # the first image's, as for one pass
            return torch.cat(outs)
        out = self._run_blind(x)
        hint, self._followed = self._hint, None
        if hint is not None and hint.sure:
            self.set_model_options({"task": hint.task})
            try:
                out = self._run_blind(x)
            finally:
                self.set_model_options({"task": None})
            self._hint, self._followed = hint, hint
        return out

    def _run_blind(self, x: Tensor) -> Tensor:
        """:meth:`_run` as the model is set (blind, or told by ``model_options``)."""
        passes = 0

        def forward(t: Tensor) -> Tensor:
            nonlocal passes
            out = self._forward(t)
            if passes == 0:
                self._hint = self._model_hint()
            passes += 1
            return out

        if self.self_ensemble is not None:
            return ensemble.self_ensemble(forward, x, self.self_ensemble)
        return forward(x)

    def _forward(self, x: Tensor) -> Tensor:
        """One padded or tiled pass under inference mode; float32 on ``x``'s device."""
        tile = self.tile_for(x.shape[-2], x.shape[-1], batch=x.shape[0])
        with torch.inference_mode(), self._autocast():
            if tile is None:
                out = run_padded(self._call_model, x.to(self.device), self.multiple)
            else:
                budget = memory_budget(
                    available_memory(self.device), self.device.type,
                    image_pixels=x.shape[-2] * x.shape[-1],
                )  # fmt: skip
                out = tiled_forward(
                    self._call_model,
                    x,
                    tile,
                    overlap=self.tile_overlap,
                    multiple=self.multiple,
                    batch_size=self.tile_batch_size,
                    device=self.device,
                    statistics=self.image_statistics,
                    context_pixels=budget // self.bytes_per_pixel,
                    progress=self.on_tile,
                )
            return out.to(x.device, torch.float32).clamp_(0.0, 1.0)

    def restore_tensor(self, x: Tensor, task: str | None = None) -> Tensor:
        """Restore a B×3×H×W float tensor in [0, 1]; float32 in [0, 1] on ``x``'s device.

        ``task``: the images' task, for a test-time adapter that needs one (``needs_task``,
        e.g. UDAIR's faithful mode; :func:`~aioir.restore.adaptation.adapter_for_task`)."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a B×3×H×W tensor, got shape {tuple(x.shape)}")
        x = x.float()
        if self.adapter is None:
            out = self._run(x)
        else:
            # adapt the network itself; ``self._run`` restores with the whole model (wrappers)
            adapter = self.adapter
            if task:
                if task not in self._task_adapters:
                    self._task_adapters[task] = adapter_for_task(adapter, task)
                adapter = self._task_adapters[task]
            out = adapter(unwrap(self.model), x.to(self.device), self._run)
            with torch.inference_mode():
                out = out.detach().to(x.device, torch.float32).clamp(0.0, 1.0)
        if self.strength == 1.0:
            return out
        with torch.inference_mode():
            return torch.lerp(x.clamp(0.0, 1.0), out, self.strength)

    def __call__(self, image: Any) -> Any:
        """Restore a numpy array, PIL image or tensor; returns the same kind (see module doc)."""
        batch, unpack = _pack(image)
        return unpack(self.restore_tensor(batch))

    # ---------------------------------------------------------------- files
    def restore_data(self, data: ImageData) -> np.ndarray:
        """Restore a loaded image's RGB; float32 H×W×3 in [0, 1]."""
        x = torch.from_numpy(data.rgb).permute(2, 0, 1)[None]
        return self.restore_tensor(x)[0].permute(1, 2, 0).numpy()

    def restore_file(
        self,
        path: str | os.PathLike[str],
        out_path: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        compare_path: str | os.PathLike[str] | None = None,
        data: ImageData | None = None,
    ) -> Path:
        """Restore ``path`` into ``out_path`` keeping bit depth, alpha and grayscale.

        The outputs are checked before any work: an existing one (without ``overwrite``) or one
        that is the input itself raises :class:`~aioir.errors.ImageWriteError`. Writes are atomic.
        ``compare_path`` also writes an 8-bit ``input | output`` image. ``data`` is the already
        loaded ``path`` (saves reading it twice).
        """
        source, target = Path(path), Path(out_path)
        targets = [target] + ([Path(compare_path)] if compare_path is not None else [])
        for t in targets:
            if t.exists() and source.exists() and os.path.samefile(t, source):
                raise ImageWriteError(f"{t}: is the input file; choose another output folder")
            if t.exists() and not overwrite:
                raise ImageWriteError(f"{t}: exists; pass --overwrite to replace it")
        data = load_image(source) if data is None else data
        # quantize here, in bands: the writer's float64 conversion of a 24 MP float image
        # would need several GiB
        out = _quantize(self.restore_data(data), np.dtype(_BIT_DTYPES[data.bit_depth]))
        written = save_image(target, data, out, overwrite=overwrite)
        if compare_path is not None:
            write_image(compare_path, compare_image(data.rgb, out), overwrite=overwrite)
        return written


@functools.lru_cache(maxsize=2)
def _cached_restorer(model: Any, items: tuple[tuple[str, Any], ...]) -> Restorer:
    return Restorer(model, **dict(items))


def restore(
    image: Any,
    model: str | os.PathLike[str] | nn.Module = DEFAULT_MODEL,
    tta: bool | Mapping[str, Any] | TestTimeAdapter = False,
    tile: int | None = None,
    device: str | torch.device = "auto",
    **kwargs: Any,
) -> Any:
    """Restore one image (numpy, PIL or torch); returns the same kind.

    >>> out = aioir.restore(photo)                    # the shipped default model
    >>> out = aioir.restore(photo, strength=0.5)      # half of the change

    Args:
        image: a numpy array (uint8, uint16 or float in [0, 1]; H×W, H×W×1–4), a PIL image or
            a 3×H×W / B×3×H×W tensor. Shape, dtype, alpha and grayscale come back as they went
            in; a float image in 0–255 is refused (ConfigError), not clipped to white.
        model: ``"default"`` (the shipped default model), a saved-model path, a registered
            name with ``checkpoint=``, or an ``nn.Module`` (not one with the random weights of
            ``load_model(NAME)`` unless ``allow_untrained=True``).
        tta: the model's test-time adaptation (``True``, its options, or an adapter).
        tile: ``None`` decides from size and memory, ``0`` never tiles, ``N`` uses N×N tiles.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
        **kwargs: go to :class:`Restorer` (``checkpoint``, ``strength``, ``self_ensemble``,
            ``precision``, ``tile_overlap``, ``allow_untrained``, …).

    The last two restorers built are cached, so repeated calls with the same arguments reuse
    the loaded model; build a :class:`Restorer` for full control.
    """
    options = {"tta": tta, "tile": tile, "device": device, **kwargs}
    try:
        key = tuple(sorted(options.items()))
        hash(key)
        hash(model)
    except TypeError:
        return Restorer(model, **options)(image)
    return _cached_restorer(model, key)(image)
