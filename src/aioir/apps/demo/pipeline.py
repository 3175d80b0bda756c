"""The demo's pipeline: check, degrade, restore, score, then write everything atomically."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from aioir.apps.demo.page import fit, grid, index_html, metrics_csv
from aioir.apps.demo.results import LABELS, PROTOCOL, DemoImage, DemoResult, Score
from aioir.errors import ConfigError, ImageWriteError

__all__ = ["DEFAULT_OUTPUT", "DEFAULT_SIZE", "DEFAULT_TASKS", "OUTPUT_ENTRIES", "run_demo"]

#: The six restoration tasks the demo shows, in aioir's canonical order.
DEFAULT_TASKS: tuple[str, ...] = ("noise", "rain", "haze", "lowlight", "blur", "underwater")
#: Long side of the demo images: the whole demo, with TTA, takes ~2 minutes on 2 CPU cores.
DEFAULT_SIZE = 384
#: Where ``aioir demo`` writes by default (relative to the working directory).
DEFAULT_OUTPUT = Path("outputs/demo")
#: What the demo writes directly under ``output`` (and replaces there with ``overwrite``).
OUTPUT_ENTRIES: tuple[str, ...] = (
    "clean", "degraded", "restored", "restored_tta",
    "grid.png", "index.html", "metrics.json", "metrics.csv",
)  # fmt: skip
MIN_SIZE = 32  # the short side of every sample photo stays above the 11×11 SSIM window


# ------------------------------------------------------------------------------ checks
def _check_arguments(
    output: Path, size: int, tasks: Sequence[str], severity: str | float, seed: int,
    overwrite: bool, photos: Sequence[Path],
) -> None:  # fmt: skip
    """Every argument error, before a model is loaded or anything is written."""
    from aioir.data.synthetic import SyntheticDegradationDataset
    from aioir.degradations import TASKS

    if isinstance(size, bool) or not isinstance(size, int) or size < MIN_SIZE:
        raise ConfigError(f"size must be an integer >= {MIN_SIZE}, not {size!r}")
    if not tasks:
        raise ConfigError("tasks: need at least one task")
    for task in tasks:
        if task not in TASKS:
            raise ConfigError(f"unknown task {task!r} (known: {', '.join(TASKS)})")
    if len(set(tasks)) != len(tasks):
        raise ConfigError(f"tasks: a task is given twice ({', '.join(tasks)})")
    if not photos:
        raise ConfigError("no sample photos found (is the aioir installation complete?)")
    # the dataset checks the severity (tiers, floats, ranges) exactly as it will use it
    SyntheticDegradationDataset(list(photos), list(tasks), patch_size=None, severity=severity,
                                seed=seed, deterministic=True)  # fmt: skip
    if output.exists() or output.is_symlink():
        if not output.is_dir():
            raise ConfigError(f"{output}: exists and is not a folder")
        if not overwrite and any(output.iterdir()):
            raise ConfigError(f"{output}: folder exists; pass --overwrite to replace it")


def _model_label(spec: str | os.PathLike[str] | nn.Module, model: nn.Module) -> str:
    from aioir.models import model_description
    from aioir.restore.adaptation import model_architecture

    if isinstance(spec, nn.Module):
        config = getattr(model, "aioir_config", None) or {}
        preset = config.get("preset") if isinstance(config, dict) else None
        arch = model_architecture(model)
        return f"{arch}-{preset}" if preset else arch
    label = os.fspath(spec)
    description = model_description(model)
    return f"{label}: {description}" if description else label


# ------------------------------------------------------------------------------ images
def _downsize(path: Path, size: int) -> np.ndarray:
    """The photo as uint8 H×W×3 with its long side ``size`` (never up-scaled; Lanczos)."""
    from aioir.io import read_image, to_uint8

    pixels = to_uint8(read_image(path))
    if max(pixels.shape[:2]) <= size:
        return pixels
    return np.asarray(fit(pixels, size), dtype=np.uint8).copy()


def _float(pixels: np.ndarray) -> np.ndarray:
    return pixels.astype(np.float32) / np.float32(255.0)


# ------------------------------------------------------------------------------ files
def _stage_dir(target: Path) -> Path:
    name = target.name or "demo"
    staging = target.parent / f".{name}.partial-{secrets.token_hex(4)}"
    try:
        staging.mkdir(parents=True)
    except OSError as exc:
        raise ImageWriteError(f"{target}: cannot create folder ({exc.strerror or exc})") from None
    return staging


def _publish(staging: Path, target: Path, display: Path) -> None:
    """Move the staged entries into ``target``; the demo entries already there (all of
    :data:`OUTPUT_ENTRIES`, also those this run did not write) are replaced, nothing else."""
    if not target.exists():
        try:
            staging.rename(target)
        except OSError as exc:
            raise ImageWriteError(
                f"{display}: cannot create folder ({exc.strerror or exc})"
            ) from None
        return
    trash = target.parent / f".{target.name or 'demo'}.old-{secrets.token_hex(4)}"
    try:
        trash.mkdir()
        for name in OUTPUT_ENTRIES:
            old = target / name
            if old.exists() or old.is_symlink():
                old.rename(trash / name)
        for entry in sorted(staging.iterdir()):
            entry.rename(target / entry.name)
    except OSError as exc:  # rare (same folder renames); keep the old files for the user
        raise ImageWriteError(
            f"{display}: cannot move the demo's files in place ({exc.strerror or exc}); "
            f"the previous ones are in {trash}"
        ) from None
    shutil.rmtree(trash, ignore_errors=True)
    staging.rmdir()


# ------------------------------------------------------------------------------ the demo
def run_demo(
    output: str | os.PathLike[str] = DEFAULT_OUTPUT,
    *,
    model: str | os.PathLike[str] | nn.Module = "default",
    size: int = DEFAULT_SIZE,
    tasks: Sequence[str] = DEFAULT_TASKS,
    tta: bool = True,
    severity: str | float = "moderate",
    seed: int = 0,
    overwrite: bool = False,
    device: str = "auto",
    progress: bool = True,
) -> DemoResult:
    """Degrade the bundled sample photos, restore them, score them, write the comparison page.

    Args:
        output: folder to write (see :mod:`aioir.apps.demo` for its content). An existing folder
            that is not empty is refused unless ``overwrite``; then only the demo's own entries
            (:data:`OUTPUT_ENTRIES`) in it are replaced, anything else is left alone.
        model: ``"default"`` (the shipped model), a registered name with weights, a saved-model
            path or an ``nn.Module``.
        size: long side of the demo images in pixels (>= 32; photos are never up-scaled).
        tasks: degradation tasks (names in :data:`aioir.degradations.TASKS`).
        tta: also restore with the model's test-time adaptation; a model without it gets a
            note (:attr:`DemoResult.tta_note`) instead of the column.
        severity: severity tier (``mild``, ``moderate``, ``severe``), ``random`` or a float in
            [0, 1].
        seed: base seed of the degradations.
        overwrite: replace the demo's files in an existing folder.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        progress: show a progress bar on stderr.

    Raises:
        ConfigError: a bad argument, model or device, or an existing folder without
            ``overwrite`` (all checked before any work).
        ImageWriteError: the output cannot be written.
    """
    from tqdm import tqdm

    from aioir.data.samples import sample_images, sample_sources
    from aioir.data.synthetic import SyntheticDegradationDataset
    from aioir.io import to_uint8, write_bytes_atomically, write_image
    from aioir.metrics import get_protocol
    from aioir.restore.api import Restorer, resolve_device
    from aioir.restore.resolve import resolve_model

    start = time.perf_counter()
    display = Path(output)
    target = display.expanduser().absolute()
    tasks = tuple(tasks)
    photos_in = sample_images()
    _check_arguments(target, size, tasks, severity, seed, overwrite, photos_in)
    resolve_device(device)
    protocol = get_protocol(PROTOCOL)
    module = resolve_model(model)
    plain = Restorer(module, device=device, tile=0)
    adapted: Restorer | None = None
    tta_note: str | None = None
    if tta:
        try:
            adapted = Restorer(module, device=device, tile=0, tta=True)
        except ConfigError as exc:
            tta_note = str(exc)
    else:
        tta_note = "not asked for (--no-tta)"
    label = _model_label(model, module)
    seconds = {"restore": 0.0, "tta": 0.0} if adapted is not None else {"restore": 0.0}

    staging = _stage_dir(target)
    written: list[str] = []
    try:

        def write(rel: str, pixels: np.ndarray) -> None:
            write_image(staging / rel, pixels)
            written.append(rel)

        clean: dict[str, np.ndarray] = {}
        for path in photos_in:
            clean[path.stem] = _downsize(path, size)
            write(f"clean/{path.stem}.png", clean[path.stem])
        photos = tuple(clean)
        data = SyntheticDegradationDataset(
            [staging / "clean" / f"{p}.png" for p in photos], list(tasks), patch_size=None,
            severity=severity, seed=seed, deterministic=True,
        )  # fmt: skip
        images: list[DemoImage] = []
        shown: dict[str, dict[str, np.ndarray]] = {}
        grid_photos = {t: photos[i % len(photos)] for i, t in enumerate(tasks)}
        bar = tqdm(total=len(data), desc="demo", unit="img", file=sys.stderr,
                   disable=not progress, dynamic_ncols=True, leave=False)  # fmt: skip
        try:
            for index in range(len(data)):
                item = data[index]
                task, photo = item["task"], Path(item["name"]).stem
                bar.set_postfix_str(f"{task}/{photo}")
                target_u8 = clean[photo]
                reference = _float(target_u8)
                degraded_u8 = to_uint8(item["input"].permute(1, 2, 0).numpy())
                files = {"clean": f"clean/{photo}.png"}
                outputs = {"degraded": degraded_u8}
                t0 = time.perf_counter()
                outputs["restored"] = to_uint8(plain(_float(degraded_u8)))
                seconds["restore"] += time.perf_counter() - t0
                reference_task = None
                if adapted is not None:
                    t0 = time.perf_counter()
                    outputs["restored_tta"] = to_uint8(adapted(_float(degraded_u8)))
                    seconds["tta"] += time.perf_counter() - t0
                    reference_task = _reported_reference(adapted)
                scores: dict[str, Score] = {}
                for column, pixels in outputs.items():
                    files[column] = f"{column}/{task}/{photo}.png"
                    write(files[column], pixels)
                    s = protocol.score(_float(pixels), reference)
                    scores[column] = Score(float(s["psnr"]), float(s["ssim"]))
                images.append(
                    DemoImage(
                        task,
                        photo,
                        files,
                        scores["degraded"],
                        scores["restored"],
                        scores.get("restored_tta"),
                        reference_task,
                    )
                )
                if grid_photos[task] == photo:
                    shown[task] = {**outputs, "clean": target_u8}
                bar.update(1)
        finally:
            bar.close()

        result = DemoResult(
            output=display, model=label, protocol=protocol.header(), tasks=tasks,
            photos=photos, size=size, severity=severity, seed=seed, images=images,
            grid_photos=grid_photos, tta=adapted is not None, tta_note=tta_note,
        )  # fmt: skip
        rows = []
        for task in tasks:
            im = next(i for i in images if i.task == task and i.photo == grid_photos[task])
            cells = []
            for column in (*result.columns, "clean"):
                score = im.score(column) if column != "clean" else None
                lines = [f"{score.psnr:.2f} dB / {score.ssim:.3f}"] if score else [im.photo]
                cells.append((LABELS.get(column, column), shown[task][column], lines))
            rows.append((task, cells))
        footer = [result.protocol, f"model {label}; severity {severity}, seed {seed}"]
        if tta_note is not None and adapted is None:
            footer.append(f"restored + TTA skipped: {tta_note}")
        write("grid.png", grid(rows, size, corner="PSNR dB / SSIM", footer=footer))
        seconds["total"] = time.perf_counter() - start
        result.seconds = seconds
        texts = {
            "metrics.json": json.dumps(result.to_json(), indent=1, allow_nan=False) + "\n",
            "metrics.csv": metrics_csv(result),
            "index.html": index_html(result, sample_sources()),
        }
        for name, text in texts.items():
            write_bytes_atomically(staging / name, text.encode("utf-8"))
            written.append(name)
        _publish(staging, target, display)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    result.files = [display / rel for rel in written]
    return result


def _reported_reference(restorer: Any) -> str | None:
    """The source cluster the adapter reports having used for the last image, if any."""
    reports = getattr(restorer.adapter, "reports", None)
    if not reports or not isinstance(reports[-1], dict):
        return None
    task = reports[-1].get("task")
    return str(task) if task is not None else None
