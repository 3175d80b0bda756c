"""Training curves of an ``aioir train`` run: loss, per-task validation PSNR, gain over the input.

:func:`read_training_log` reads a run folder: the CSV log (``logs/version_*/metrics.csv``, the
newest version; live while the run trains) or, failing that, ``training.json``'s validation
history (written when the run ends; no loss curve then). :func:`plot_training` draws three
panels against the training step: the training loss terms (raw and a moving average), each
task's validation PSNR, and each task's PSNR gain over its own degraded input with
``val/min_gain`` in bold and the zero line — the quality bar of a blind all-in-one model is that
no task falls below zero. Runs older than the gain logging (session 5) get the first two panels.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
from pathlib import Path

from aioir.errors import ConfigError

__all__ = ["TrainingLog", "plot_training", "read_training_log"]

_VAL = "val/"


@dataclasses.dataclass
class TrainingLog:
    """What a run logged: ``train[name] = [(step, value)]`` and one dict per validation."""

    source: Path
    train: dict[str, list[tuple[int, float]]]
    val: list[dict[str, float]]

    @property
    def tasks(self) -> list[str]:
        """Task names with a validation PSNR, in first-seen order."""
        names: dict[str, None] = {}
        for row in self.val:
            for key in row:
                parts = key.split("/")
                if len(parts) == 3 and parts[0] == "val" and parts[2] == "psnr":
                    names.setdefault(parts[1])
        return list(names)

    def series(self, key: str) -> list[tuple[int, float]]:
        """``(step, value)`` of one validation key over the run (rows without it are skipped)."""
        return [(int(r["step"]), r[key]) for r in self.val if key in r and "step" in r]


def _number(text: str) -> float | None:
    if text is None or text == "":
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def _read_csv(path: Path) -> TrainingLog:
    train: dict[str, list[tuple[int, float]]] = {}
    val: dict[int, dict[str, float]] = {}
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                step = int(float(row["step"]))
                for key, text in row.items():
                    value = _number(text)
                    if value is None or key in ("step", "epoch"):
                        continue
                    if key.startswith("train/"):
                        train.setdefault(key.removeprefix("train/"), []).append((step, value))
                    elif key.startswith(_VAL):
                        val.setdefault(step, {"step": float(step)})[key] = value
    except (KeyError, ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: not an aioir training log ({exc})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return TrainingLog(path, train, [val[s] for s in sorted(val)])


def _version(path: Path) -> int:
    tail = path.parent.name.removeprefix("version_")
    return int(tail) if tail.isdigit() else -1


def read_training_log(run: str | os.PathLike[str]) -> TrainingLog:
    """The log of run folder ``run`` (see the module docstring); ConfigError if there is none."""
    folder = Path(run)
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "folder does not exist"
        raise ConfigError(f"{folder}: {what} (expected an `aioir train` output folder)")
    logs = sorted(folder.glob("logs/version_*/metrics.csv"), key=_version)
    if logs:
        return _read_csv(logs[-1])
    record = folder / "training.json"
    if record.is_file():
        try:
            history = json.loads(record.read_text(encoding="utf-8"))["val_history"]
            rows = [{k: float(v) for k, v in row.items()} for row in history]
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise ConfigError(f"{record}: not an aioir training record ({exc})") from None
        return TrainingLog(record, {}, rows)
    raise ConfigError(
        f"{folder}: no training log (logs/version_*/metrics.csv needs trainer.logger=csv; "
        "training.json appears when a run ends)"
    )


def _moving_average(values: list[float], window: int) -> list[float]:
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def plot_training(
    log: TrainingLog,
    output: str | os.PathLike[str],
    *,
    title: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the curves of ``log`` to ``output`` (PNG, written atomically); returns the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from aioir.io import write_bytes_atomically
    from aioir.viz.clusters import task_colors

    if not log.train and not log.val:
        raise ConfigError(f"{log.source}: the log holds no training or validation values yet")
    tasks = log.tasks
    has_gain = any(log.series(f"val/{t}/gain") for t in tasks)
    panels = 2 + has_gain
    fig = Figure(figsize=(5.2 * panels, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, panels)
    loss_ax, psnr_ax = axes[0], axes[1]

    # the total and its terms; not the learning rate or diagnostics such as cscl_scale
    terms = sorted(
        (k for k in log.train if k != "lr" and "_" not in k), key=lambda k: (k != "loss", k)
    )
    for i, name in enumerate(terms):
        steps, values = zip(*log.train[name], strict=True)
        window = max(1, len(values) // 25)
        (line,) = loss_ax.plot(steps, values, lw=0.6, alpha=0.25, color=f"C{i}")
        loss_ax.plot(steps, _moving_average(list(values), window), lw=1.4, color=line.get_color(),
                     label=name)  # fmt: skip
    if log.train:
        loss_ax.set_yscale("log")
        loss_ax.legend(fontsize=8)
        loss_ax.set_title("training loss terms (moving average)", fontsize=9)
    else:
        loss_ax.text(0.5, 0.5, "no loss curve in training.json", ha="center", va="center",
                     transform=loss_ax.transAxes, fontsize=9)  # fmt: skip
        loss_ax.set_title("training loss", fontsize=9)
    loss_ax.set_xlabel("step")

    colors = dict(zip(tasks, task_colors(len(tasks)), strict=True))
    for task in tasks:
        pts = log.series(f"val/{task}/psnr")
        if pts:
            psnr_ax.plot(*zip(*pts, strict=True), marker="o", ms=3, color=colors[task], label=task)
        ref = log.series(f"val/{task}/input_psnr")
        if ref:
            psnr_ax.plot(*zip(*ref, strict=True), ls=":", lw=1.0, color=colors[task])
    mean = log.series("val/psnr")
    if mean:
        psnr_ax.plot(*zip(*mean, strict=True), color="black", lw=2.0, label="mean")
    psnr_ax.set_xlabel("step")
    psnr_ax.set_ylabel("PSNR (dB)")
    psnr_ax.set_title("validation PSNR (dotted: the degraded input)", fontsize=9)
    if log.val:
        psnr_ax.legend(fontsize=7, ncol=2)
    else:
        psnr_ax.text(0.5, 0.5, "no validation yet", ha="center", va="center",
                     transform=psnr_ax.transAxes, fontsize=9)  # fmt: skip

    if has_gain:
        gain_ax = axes[2]
        for task in tasks:
            pts = log.series(f"val/{task}/gain")
            if pts:
                gain_ax.plot(*zip(*pts, strict=True), marker="o", ms=3, color=colors[task],
                             label=task)  # fmt: skip
        worst = log.series("val/min_gain")
        if worst:
            gain_ax.plot(*zip(*worst, strict=True), color="black", lw=2.2, label="min_gain")
        gain_ax.axhline(0.0, color="grey", lw=1.0, ls="--")
        gain_ax.set_xlabel("step")
        gain_ax.set_ylabel("PSNR gain over the input (dB)")
        gain_ax.set_title("gain over the degraded input (bar: every task > 0)", fontsize=9)
        gain_ax.legend(fontsize=7, ncol=2)
    if title:
        fig.suptitle(title, fontsize=10)
    out = Path(output)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    write_bytes_atomically(out, buffer.getvalue(), overwrite=overwrite)
    return out
