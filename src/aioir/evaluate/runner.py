"""The evaluation loop: a method × a benchmark × a metric protocol → :class:`BenchmarkResult`.

>>> from aioir.evaluate import evaluate, load_method
>>> result = evaluate(load_method("classical:auto"), "promptir-3task", "/data/aio")
>>> print(to_markdown(result))

Per case: restore the input, score PSNR/SSIM under the protocol where there is ground truth, NIQE
where there is none (or everywhere with ``niqe="all"``), keep the per-image numbers. The degraded
input is scored the same way (``input_psnr``, ``input_ssim``, ``input_niqe``), so every table
shows the gain. Case counts are checked against the protocol before any work
(``strict_counts``).
"""

from __future__ import annotations

import dataclasses
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from aioir.errors import ConfigError, DatasetLayoutError
from aioir.evaluate.benchmarks import Benchmark, Case, Column, Rounding, get_benchmark
from aioir.evaluate.methods import CASE_TASK, Method
from aioir.evaluate.niqe import NIQEModel, niqe
from aioir.evaluate.report import BenchmarkResult, ColumnSummary, ImageResult

if TYPE_CHECKING:
    from aioir.metrics import MetricProtocol

__all__ = ["default_noise_rounding", "evaluate", "evaluate_many"]

NiqeMode = Literal["auto", "all", "off"]


def default_noise_rounding(protocol: str) -> Rounding:
    """``truncate`` for the PromptIR-compatible protocol (their code casts to uint8, and their
    published σ columns were measured that way), ``round`` (unbiased) for every other."""
    return "truncate" if protocol == "promptir" else "round"


def _hwc(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().float().permute(1, 2, 0).numpy()


def _crop_case(case: Case, multiple: int | None) -> Case:
    """Centre-crop input and target to a multiple of ``multiple`` (PromptIR's ``crop_img``)."""
    if not multiple or multiple <= 1:
        return case
    from aioir.metrics.protocols import center_crop_to_multiple

    target = None if case.target is None else center_crop_to_multiple(case.target, multiple)
    return dataclasses.replace(
        case, input=center_crop_to_multiple(case.input, multiple), target=target
    )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "benchmark"


def _save(folder: Path, bench: str, case: Case, out: torch.Tensor) -> None:
    from aioir.io import write_image

    path = folder / _slug(bench) / case.dataset / Path(case.name).with_suffix(".png")
    write_image(path, _hwc(out), overwrite=True)


def evaluate(
    method: Method,
    benchmark: str | Benchmark,
    data_root: str | Path | None = None,
    *,
    protocol: str | None = None,
    noise_rounding: Rounding | None = None,
    limit: int | None = None,
    strict_counts: bool = True,
    niqe_mode: NiqeMode = "auto",
    niqe_model: NIQEModel | None = None,
    save_images: str | Path | None = None,
    crop: int | None = None,
    progress: bool = True,
) -> BenchmarkResult:
    """Evaluate ``method`` on ``benchmark`` (see :mod:`aioir.evaluate.benchmarks`).

    Args:
        method: from :func:`aioir.evaluate.methods.load_method` (or any :class:`Method`).
        benchmark: a name, ``paired:DIR[:TASK]``, ``synthetic:DIR[:TASKS]``,
            ``photo-tasks:DIR[:COLUMNS]`` or a Benchmark.
        data_root: the dataset root (needed by the named benchmarks; ``paired:``/``synthetic:``
            folders are resolved against it when given).
        protocol: metric protocol name; default the benchmark's (``promptir`` for the PromptIR
            benchmarks, ``udair`` for UDAIR's, ``clean`` otherwise).
        noise_rounding: how seeded CBSD68 noise is snapped to 8 bit; default
            :func:`default_noise_rounding` of the protocol.
        limit: evaluate only the first N cases of each column (smoke runs; counts then only
            warn and the numbers are not comparable with published tables).
        strict_counts: a case count that differs from the protocol's is an error (else a
            warning in the result).
        niqe_mode: ``auto`` (NIQE where there is no ground truth), ``all`` or ``off``.
        niqe_model: pristine model for NIQE (default: the one fitted on aioir's photo corpus).
        save_images: folder for the restored images (``DIR/<benchmark>/<dataset>/<name>.png``).
        crop: seeded per-image crop side for ``synthetic:`` benchmarks (``photo-tasks:``: the
            side of its crops, default 256).
        progress: show a tqdm progress bar on stderr.
    """
    from aioir.metrics import get_protocol

    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be at least 1, not {limit}")
    if niqe_mode not in ("auto", "all", "off"):
        raise ConfigError(f"niqe mode must be auto, all or off, not {niqe_mode!r}")
    bench = get_benchmark(benchmark, crop=crop)
    proto = get_protocol(protocol or bench.default_protocol)
    rounding = noise_rounding or default_noise_rounding(proto.name)
    if rounding not in ("round", "truncate"):
        raise ConfigError(f"noise rounding must be 'round' or 'truncate', not {rounding!r}")
    root = None if data_root is None else Path(data_root)
    columns = bench.columns(root, noise_rounding=rounding)

    warnings: list[str] = []
    counts = bench.check_counts(columns)
    if not counts.ok:
        if strict_counts and limit is None:
            raise DatasetLayoutError(
                f"{counts.message()} (pass --no-strict-counts to evaluate a subset anyway)"
            )
        warnings.append(f"case counts differ from the protocol: {counts.message()}")
    if limit is not None:
        warnings.append(
            f"limited to the first {limit} case(s) of each dataset: not comparable with "
            "published tables"
        )

    images, summaries = _run(
        method,
        bench,
        columns,
        proto,
        limit,
        niqe_mode,
        niqe_model,
        save_images,
        progress,
        warnings,
    )
    settings = {
        "data_root": None if root is None else str(root),
        "noise_rounding": rounding,
        "limit": limit,
        "niqe": niqe_mode,
        "niqe_model": "aioir photo corpus (not the original NIQE model)"
        if niqe_model is None
        else (niqe_model.info or "custom"),
        **method.settings(),
    }
    notes = bench.notes(rounding)
    if proto.crop_to_multiple and proto.crop_to_multiple > 1:
        notes.append(
            f"inputs and targets centre-cropped to a multiple of {proto.crop_to_multiple} "
            "before restoration (PromptIR's crop_img)"
        )
    if settings.get("self_ensemble"):
        what = {"flips": "the 4 flips (×4)", "all": "the 8 flips/rotations (×8)"}
        mode = settings["self_ensemble"]
        notes.append(f"geometric self-ensemble: outputs averaged over {what.get(mode, mode)}")
    if settings.get("tta"):
        tta = settings["tta"]
        options = ", ".join(f"{k} {v}" for k, v in tta.items()) if isinstance(tta, dict) else ""
        notes.append("test-time adaptation" + (f" ({options})" if options else ""))
    if settings.get("model_options"):
        chosen = [
            f"{k} = {v}" if v != CASE_TASK else f"{k} = each case's task"
            for k, v in settings["model_options"].items()
        ]
        notes.append(f"model options: {', '.join(chosen)}")
    if any(c.niqe is not None for c in summaries):
        notes.append(
            "NIQE: pristine model fitted on aioir's photo corpus, not Mittal et al.'s; "
            "not comparable with published NIQE values"
        )
    return BenchmarkResult(
        benchmark=bench.name,
        method=method.name,
        protocol=proto.name,
        header=proto.header(),
        columns=summaries,
        images=images,
        notes=notes,
        warnings=warnings,
        settings=settings,
    )


def _run(
    method: Method,
    bench: Benchmark,
    columns: Sequence[Column],
    proto: MetricProtocol,
    limit: int | None,
    niqe_mode: NiqeMode,
    niqe_model: NIQEModel | None,
    save_images: str | Path | None,
    progress: bool,
    warnings: list[str],
) -> tuple[list[ImageResult], list[ColumnSummary]]:
    from tqdm import tqdm

    # protocols that crop to a multiple (promptir) crop the images *before* restoration, as
    # PromptIR's test datasets do, so the network never sees the discarded border
    crop_first = getattr(proto, "crop_to_multiple", None)
    sizes = [len(c) if limit is None else min(limit, len(c)) for c in columns]
    images: list[ImageResult] = []
    summaries: list[ColumnSummary] = []
    bar = tqdm(
        total=sum(sizes),
        desc=bench.name,
        unit="img",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    try:
        for column, size in zip(columns, sizes):
            bar.set_postfix_str(column.key)
            rows: list[ImageResult] = []
            niqe_failed = 0
            for i in range(size):
                case = _crop_case(column[i], crop_first)
                start = time.perf_counter()
                out, note = method.restore(case.input, case)
                seconds = time.perf_counter() - start
                if tuple(out.shape) != tuple(case.input.shape):
                    raise ConfigError(
                        f"{method.name} returned shape {tuple(out.shape)} for "
                        f"{column.key}/{case.name} of shape {tuple(case.input.shape)}"
                    )
                row = ImageResult(case.dataset, case.name, seconds=seconds, note=note)
                pred, degraded = _hwc(out), _hwc(case.input)
                if case.target is not None:
                    target = _hwc(case.target)
                    scores = proto.score(pred, target)
                    row.psnr, row.ssim = scores["psnr"], scores["ssim"]
                    base = proto.score(degraded, target)
                    row.input_psnr, row.input_ssim = base["psnr"], base["ssim"]
                if niqe_mode == "all" or (niqe_mode == "auto" and case.target is None):
                    try:
                        row.niqe = niqe(pred, niqe_model)
                        row.input_niqe = niqe(degraded, niqe_model)
                    except ValueError:
                        niqe_failed += 1
                if save_images is not None:
                    _save(Path(save_images), bench.name, case, out)
                rows.append(row)
                bar.update(1)
            if niqe_failed:
                warnings.append(
                    f"{column.key}: NIQE not computed for {niqe_failed} image(s) too small for "
                    "its patches"
                )
            images += rows
            summaries.append(
                ColumnSummary.from_images(
                    column.key, column.title, column.task, rows, column.expected
                )
            )
    finally:
        bar.close()
    return images, summaries


def evaluate_many(
    method: Method,
    benchmarks: Sequence[str | Benchmark],
    data_root: str | Path | None = None,
    **kwargs: Any,
) -> list[BenchmarkResult]:
    """:func:`evaluate` for several benchmarks with the same method and options."""
    return [evaluate(method, b, data_root, **kwargs) for b in benchmarks]
