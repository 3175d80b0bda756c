"""What the harness evaluates: trained networks and classical comparators behind one interface.

A :class:`Method` restores one :class:`~aioir.evaluate.benchmarks.Case` at a time and returns a
short note saying what it assumed (e.g. "cbm3d (σ given by the benchmark)"); the harness collects
the notes per column into the table. :func:`load_method` parses ``--model``:

* ``classical:NAME`` — a method of :mod:`aioir.evaluate.classical`; ``classical:auto`` applies
  each case's task method (CBM3D for noise, DCP for haze, …);
* anything else — a registered model name or saved-model path, run through
  :class:`aioir.restore.Restorer` (padding, optional tiling, optional test-time adaptation,
  the network's own ``model_options``). A model option whose value is :data:`CASE_TASK`
  (``"case"``) takes each case's task instead (``--task case``: ABAIR's oracle adapter per
  column, ``haze+rain`` for a composite).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from aioir.errors import ConfigError
from aioir.evaluate.benchmarks import Case
from aioir.evaluate.classical import CLASSICAL_METHODS, TASK_METHODS, get_classical
from aioir.models.wrappers import options_taker

__all__ = ["CASE_TASK", "ClassicalModel", "Method", "NetworkModel", "load_method"]

#: A model-option value meaning "this case's task" (set before each case).
CASE_TASK = "case"


@runtime_checkable
class Method(Protocol):
    """Anything the harness can evaluate."""

    #: identifier printed in tables (``classical:dcp``, ``udair``, ``runs/x``)
    name: str

    def restore(self, image: torch.Tensor, case: Case) -> tuple[torch.Tensor, str]:
        """Restore a 3×H×W float tensor in [0, 1]; return (3×H×W output, note)."""
        ...

    def settings(self) -> dict[str, Any]:
        """JSON-able description of how it runs (device, tiling, …)."""
        ...


class ClassicalModel:
    """``classical:NAME`` — a numpy method; ``auto`` picks the method of each case's task."""

    def __init__(self, method: str) -> None:
        if method != "auto":
            get_classical(method)  # raises ConfigError listing the names
        self.method = method
        self.name = f"classical:{method}"

    def _pick(self, task: str) -> tuple[str, str]:
        if self.method != "auto":
            return self.method, ""
        chosen = TASK_METHODS.get(task)
        if chosen is None:
            return "identity", f"no classical method for task {task or '(unknown)'!r}"
        return chosen, ""

    def restore(self, image: torch.Tensor, case: Case) -> tuple[torch.Tensor, str]:
        """Run the chosen classical method on the case's input (on the CPU)."""
        name, why = self._pick(case.task)
        method = CLASSICAL_METHODS[name]
        array = image.detach().cpu().permute(1, 2, 0).numpy().astype(np.float64)
        out, note = method.fn(array, case.meta)
        tensor = torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32)).permute(2, 0, 1)
        details = "; ".join(x for x in (note, why) if x)
        return tensor.clamp_(0.0, 1.0), f"{method.title}" + (f" ({details})" if details else "")

    def settings(self) -> dict[str, Any]:
        """The method name and the task → method mapping for ``auto``."""
        out: dict[str, Any] = {"classical": self.method}
        if self.method == "auto":
            out["task_methods"] = dict(TASK_METHODS)
        return out


class NetworkModel:
    """A restoration network run through :class:`aioir.restore.Restorer`.

    ``tile=0`` (the default here) restores each image in one padded pass, as the papers do;
    ``tile=N`` uses N×N tiles with overlap blending. ``precision`` defaults to fp32 so numbers
    do not depend on autocast. ``tta`` runs the model's registered test-time adaptation;
    ``self_ensemble`` (``"flips"``, ``"mirror"``, ``"all"`` or ``True``, the model's own mode)
    averages over flips/rotations (the papers' "+").
    ``model_options`` go to the network's ``set_inference_options`` (e.g. ``{"adapter_mode":
    "onehot"}``); values equal to :data:`CASE_TASK` are replaced by each case's task.
    ``follow_hint`` restores a hinted image again told the hinted task (:class:`~aioir.restore.
    Restorer`); the image's note then names it.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | nn.Module,
        *,
        checkpoint: str | os.PathLike[str] | None = None,
        device: str | torch.device = "auto",
        tile: int = 0,
        tile_overlap: int = 32,
        tta: bool | dict[str, Any] = False,
        self_ensemble: bool | str = False,
        precision: str = "fp32",
        allow_untrained: bool = False,
        model_options: Mapping[str, Any] | None = None,
        artifacts: Mapping[str, str | os.PathLike[str] | None] | None = None,
        follow_hint: bool = False,
    ) -> None:
        from aioir.restore.api import Restorer

        options = dict(model_options or {})
        self.per_case = sorted(k for k, v in options.items() if v == CASE_TASK)
        if follow_hint and "task" in self.per_case:  # (a fixed task: the Restorer refuses)
            raise ConfigError("the task is given: there is no hint to follow")
        static = {k: v for k, v in options.items() if k not in self.per_case}
        self.restorer = Restorer(
            model,
            checkpoint=checkpoint,
            device=device,
            tile=tile,
            tile_overlap=tile_overlap,
            tta=tta,
            self_ensemble=self_ensemble,
            precision=precision,
            allow_untrained=allow_untrained,
            # with per-case options, everything is set together before each case
            model_options=None if self.per_case else static,
            artifacts=artifacts,
            follow_hint=follow_hint,
        )
        if self.per_case and options_taker(self.restorer.model) is None:
            raise ConfigError(
                f"model {self.restorer.name} takes no inference options ({', '.join(options)})"
            )
        self._options = options
        self._current: dict[str, Any] | None = None
        self.name = str(model) if not isinstance(model, nn.Module) else type(model).__name__
        self.checkpoint = None if checkpoint is None else str(checkpoint)
        self._settings = {
            "device": str(self.restorer.device),
            "tile": tile,
            "tile_overlap": tile_overlap if tile else None,
            "tta": tta,
            "self_ensemble": self.restorer.self_ensemble,
            "precision": precision,
            "checkpoint": self.checkpoint,
            **{k: str(v) for k, v in (artifacts or {}).items() if v is not None},
            "untrained": bool(allow_untrained and checkpoint is None),
        }
        if options:
            self._settings["model_options"] = options
        if follow_hint:
            self._settings["follow_hint"] = True

    def restore(self, image: torch.Tensor, case: Case) -> tuple[torch.Tensor, str]:
        """One padded (or tiled) forward pass of the network, after setting the per-case model
        options, if any (a test-time adapter that needs a task gets the case's, as UDAIR's
        authors' ``test.py`` takes it from the set's name)."""
        if self.per_case:
            wanted = {**self._options, **dict.fromkeys(self.per_case, case.task)}
            if wanted != self._current:
                if not case.task:
                    raise ConfigError(
                        f"{case.dataset}/{case.name}: the benchmark gives no task for "
                        f"'{self.per_case[0]} {CASE_TASK}'"
                    )
                self.restorer.set_model_options(wanted)
                self._current = wanted
        out = self.restorer.restore_tensor(image[None], task=case.task or None)[0].cpu()
        followed = self.restorer.followed_hint()
        return out, "" if followed is None else f"followed its hint: {followed.task}"

    def settings(self) -> dict[str, Any]:
        """Device, tiling, precision, TTA and checkpoint."""
        return dict(self._settings)


def load_method(
    spec: str | os.PathLike[str] | nn.Module,
    checkpoint: str | os.PathLike[str] | None = None,
    *,
    device: str = "auto",
    tile: int | None = None,
    tta: bool | dict[str, Any] = False,
    self_ensemble: bool | str = False,
    precision: str = "fp32",
    allow_untrained: bool = False,
    model_options: Mapping[str, Any] | None = None,
    artifacts: Mapping[str, str | os.PathLike[str] | None] | None = None,
    follow_hint: bool = False,
) -> Method:
    """``--model`` → a :class:`Method` (see the module docstring)."""
    text = spec if isinstance(spec, nn.Module) else str(spec)
    if isinstance(text, str) and text.startswith("classical:"):
        if (
            checkpoint is not None
            or tta
            or tile
            or self_ensemble
            or follow_hint
            or any((artifacts or {}).values())
        ):
            raise ConfigError(
                f"{text}: --checkpoint, --tta, --tile, --self-ensemble and --follow-hint apply "
                "to networks only"
            )
        if model_options:
            raise ConfigError(
                f"{text}: model options ({', '.join(sorted(model_options))}) apply to networks only"
            )
        return ClassicalModel(text.removeprefix("classical:"))
    return NetworkModel(
        spec,
        checkpoint=checkpoint,
        device=device,
        tile=tile or 0,
        tta=tta,
        self_ensemble=self_ensemble,
        precision=precision,
        allow_untrained=allow_untrained,
        model_options=model_options,
        artifacts=artifacts,
        follow_hint=follow_hint,
    )
