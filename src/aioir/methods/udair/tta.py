"""UDAIR test-time adaptation (TTA): CORAL alignment of the injected embeddings with the source bank.

Three distribution adapters ``A₄, A₃, A₂`` (:class:`aioir.nn.adapters.DistributionAdapter`) act on
the maps the DAM injects into the decoder (``g4, g3, g2``). Per image, only the adapters are
optimised to minimise ``scale · Σ_ℓ CORAL(P^ℓ_r, A_ℓ(g_ℓ))``, where ``P^ℓ_r`` is the source-bank
entry of the reference task ``r`` and the target map is average-pooled to the bank's spatial size
(``docs/methods/udair.md``, "CORAL test-time adaptation"). Adaptation is *episodic*: adapters,
codebook buffers, train/eval mode, ``requires_grad`` flags and the optimiser are reset after
every image.

Two modes (:class:`TTAConfig`):

* ``faithful`` — the authors' code: adapters from their stored (random) initialisation, not
  residual; the reference task must be given (``task=``, an oracle label; ``aioir evaluate``
  gives each benchmark column's task, as their ``test.py`` takes it from the test-set name);
  the whole model in train mode (DAM dropout and EMA codebook updates active); input resized to
  256×256 as their loader does it (PIL bicubic on the 8-bit image, antialiased when shrinking:
  :func:`pil_bicubic`); AdamW lr 1e-3, weight decay 0.01; the image returned is the output of
  the 5th forward (after 4 updates). Forwards 1–4 skip the U-Net (``decode=False``): their
  images are discarded by the reference code and the decoder influences neither the loss nor
  any state, so the output equals the authors' at ~1/5 of the cost. The 256×256 output is
  resized back to the input size (bicubic, antialiased when shrinking) so files and metrics keep
  their size; ``output="work"`` returns it at 256×256 as the authors save it
  (``resize=False`` adapts at native size).
* ``default`` — blind and safe: residual adapters whose last 1×1 is re-initialised to zero
  (step 0 is exactly the trained model), DAM in eval mode (deterministic), the reference task
  chosen blindly (:func:`choose_reference`) unless given, the CORAL reference taken from the
  bank's stored statistics when it has them (:data:`REFERENCES`), and a stopping rule (stop when the loss
  improves by less than ``tol`` relative for ``patience`` steps or after ``steps``; keep the
  adapters with the lowest loss, which may be the identity). Because the DAM is deterministic in
  eval mode, the unadapted ``g``'s are computed once and only the adapters run at each step; then
  ONE full-resolution restoration runs through the caller's ``restore`` (padding / tiling) with
  the adapted adapters, which are convolutional (1×1, depthwise 3×3, global squeeze-excitation)
  and apply at any size.

The reference task is looked up in ``model.source_bank`` (:class:`aioir.models.SourceBank`),
attached by :func:`aioir.load_model` to saved UDAIR models.

**CORAL reference** (``reference=``). The authors compare the target rows with the rows of the
task's *mean map* ``P^ℓ_r`` — the spatial covariance of an average over training crops, 3–12×
smaller (Frobenius) than the covariance of one image's rows, recomputed at every step
(``"mean_map"``, always used by ``faithful``). A format-2 bank stores per-task row statistics;
``"statistics"`` uses its *within-image* covariance (the mean over training crops of each crop's
own row covariance, the expected value of what CORAL computes for one source image) as a fixed
reference. ``"auto"`` (the default mode's default) takes the statistics when the bank has them
and the mean map otherwise (old banks).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aioir.errors import ConfigError
from aioir.losses.coral import coral_distance, coral_loss, covariance
from aioir.methods.udair.bank import LEVELS, SourceBank, pooled_rows, pooled_size
from aioir.methods.udair.model import UDAIRBase
from aioir.nn.adapters import DistributionAdapter
from aioir.restore.adaptation import register_test_time_adapter

__all__ = [
    "CHOOSERS",
    "LEVELS",
    "REFERENCES",
    "TTA_MODES",
    "TTAConfig",
    "UDAIRTestTimeAdapter",
    "bank_patch_size",
    "choose_reference",
    "coral_objective",
    "only_adapters_trainable",
    "pil_bicubic",
    "pooled_size",
    "preserved_state",
    "raw_maps",
    "reference_distances",
    "reinit_adapters",
    "resolve_chooser",
    "udair_tta",
    "uses_statistics",
    "working_image",
]

TTA_MODES: tuple[str, ...] = ("default", "faithful")
#: faithful mode's output size: the input's (resized back) or the working size (the authors')
TTA_OUTPUTS: tuple[str, ...] = ("input", "work")
#: Blind reference choices (``docs/methods/udair.md``, "Blind reference choice"): Σ CORAL
#: distance to the mean maps ("coral"), nearest mean embedding ("centroid"), the sum of both
#: after normalisation ("combined"), Mahalanobis distance of the image's mean row under the
#: bank's stored covariance ("mahalanobis", needs a bank with statistics), or "auto":
#: mahalanobis when the bank has statistics, else centroid.
CHOOSERS: tuple[str, ...] = ("auto", "coral", "centroid", "combined", "mahalanobis")
#: CORAL reference: the bank's stored within-image covariance ("statistics"), the covariance of
#: the task's mean map ("mean_map", the authors'), or "auto" (statistics when the bank has them).
REFERENCES: tuple[str, ...] = ("auto", "statistics", "mean_map")
#: relative ridge added to the stored covariance by the mahalanobis chooser (× its mean variance)
MAHALANOBIS_RIDGE = 1e-2


@dataclasses.dataclass(frozen=True)
class TTAConfig:
    """Settings of UDAIR's test-time adaptation (see the module docstring).

    Args:
        mode: ``"default"`` (blind, residual zero-init adapters, eval DAM, stopping rule) or
            ``"faithful"`` (the authors' code; needs ``task``).
        task: reference task name in the source bank; ``None`` chooses it blindly (default
            mode only).
        steps: forwards (faithful: 5 → 4 updates) or the maximum number of updates (default: 10).
        lr, weight_decay: AdamW settings (1e-3, 0.01 as the authors). Measured on the shifted
            target domain (benchmarks/tta.py), 1e-2 lowers the loss 40 % but costs 0.14 dB.
        loss_scale: the objective's factor (1e5 as the authors).
        tol, patience: stop when the relative loss decrease is below ``tol`` for ``patience``
            consecutive updates (default mode).
        work_size: faithful: side of the square resize (256); default: the working image's
            short side (a larger input is downscaled with antialiasing; ``None``: native size).
        resize: faithful only — resize to ``work_size``² (the authors: PIL bicubic on the 8-bit
            image); ``False`` adapts and restores at the native size.
        output: faithful only — ``"input"`` resizes the result back to the input size;
            ``"work"`` returns it at ``work_size``² (what the authors' ``test.py`` saves).
        chooser: blind reference choice (:data:`CHOOSERS`; ``auto``: ``mahalanobis`` with a
            bank that has statistics, else ``centroid``).
        reference: CORAL reference (:data:`REFERENCES`; default mode only — ``faithful``
            always uses the authors' mean maps).
        seed: seeds the adapter re-initialisation (default) and dropout (faithful).
    """

    mode: str = "default"
    task: str | None = None
    steps: int | None = None
    lr: float = 1e-3
    weight_decay: float = 0.01
    loss_scale: float = 1e5
    tol: float = 1e-3
    patience: int = 2
    work_size: int | None = 256
    resize: bool = True
    output: str = "input"
    chooser: str = "auto"
    reference: str = "auto"
    seed: int = 42

    def __post_init__(self) -> None:
        if self.mode not in TTA_MODES:
            raise ConfigError(f"unknown TTA mode {self.mode!r} (use {', '.join(TTA_MODES)})")
        if self.chooser not in CHOOSERS:
            raise ConfigError(f"unknown TTA chooser {self.chooser!r} (use {', '.join(CHOOSERS)})")
        if self.reference not in REFERENCES:
            raise ConfigError(
                f"unknown TTA reference {self.reference!r} (use {', '.join(REFERENCES)})"
            )
        if self.mode == "faithful" and self.reference == "statistics":
            raise ConfigError("faithful TTA uses the authors' mean-map reference, not statistics")
        if self.output not in TTA_OUTPUTS:
            raise ConfigError(f"unknown TTA output {self.output!r} (use {', '.join(TTA_OUTPUTS)})")
        if self.steps is not None and self.steps < 1:
            raise ConfigError(f"TTA steps must be >= 1, not {self.steps}")
        if self.work_size is not None and self.work_size < 8:
            raise ConfigError(f"TTA work size must be >= 8, not {self.work_size}")

    @property
    def max_steps(self) -> int:
        """Forwards (faithful, 5) or maximum updates (default, 10)."""
        if self.steps is not None:
            return self.steps
        return 5 if self.mode == "faithful" else 10


# ------------------------------------------------------------------------------ objective
def bank_patch_size(bank: SourceBank) -> int:
    """Training patch size of a bank (metadata, else ``4·`` the g3 map side)."""
    size = bank.metadata.get("patch_size") if isinstance(bank.metadata, Mapping) else None
    return int(size) if size else int(bank.levels["g3"].shape[-1]) * 4


def _rows(x: Tensor) -> Tensor:
    """C×h×w → (h·w)×C."""
    return x.flatten(1).t()


def _target_rows(g: Tensor, bank_hw: tuple[int, int]) -> Tensor:
    """1×C×H×W map → rows of its average-pooled version (fp32; fp64 kept)."""
    return pooled_rows(g, bank_hw)[0]


def uses_statistics(bank: SourceBank, reference: str = "auto") -> bool:
    """Whether the CORAL reference comes from the bank's stored statistics (see
    :data:`REFERENCES`); ``ConfigError`` for ``"statistics"`` with a bank that has none."""
    if reference not in REFERENCES:
        raise ConfigError(f"unknown TTA reference {reference!r} (use {', '.join(REFERENCES)})")
    has = bool(getattr(bank, "has_statistics", False))
    if reference == "statistics" and not has:
        raise ConfigError(
            "the source bank has no stored statistics (an old bank: rebuild it with `aioir bank`)"
        )
    return has and reference != "mean_map"


def coral_objective(
    maps: Mapping[str, Tensor],
    bank: SourceBank,
    index: int,
    scale: float = 1e5,
    reference: str = "auto",
) -> Tensor:
    """``scale · Σ_ℓ CORAL(ref^ℓ_index, pool(g_ℓ))`` for one image's maps (each 1×C×H×W).

    ``ref`` is the bank's stored within-image covariance of task ``index`` or the covariance of
    its mean map ``P^ℓ_index`` (the authors'), as ``reference`` and the bank decide
    (:func:`uses_statistics`).
    """
    stats = uses_statistics(bank, reference)
    total = None
    for level in LEVELS:
        shape = bank.levels[level].shape
        rows = _target_rows(maps[level], (int(shape[-2]), int(shape[-1])))
        if stats:
            term = coral_distance(bank.within[level][index], covariance(rows))
        else:
            ref = bank.levels[level][index].to(maps[level].device)
            term = coral_loss(_rows(ref), rows)
        total = term if total is None else total + term
    assert total is not None
    return total * scale


def resolve_chooser(chooser: str, bank: SourceBank) -> str:
    """The concrete chooser: ``auto`` → ``mahalanobis`` with bank statistics, else
    ``centroid``; ``mahalanobis`` without statistics is a ``ConfigError``."""
    if chooser not in CHOOSERS:
        raise ConfigError(f"unknown TTA chooser {chooser!r} (use {', '.join(CHOOSERS)})")
    has = bool(getattr(bank, "has_statistics", False))
    if chooser == "auto":
        return "mahalanobis" if has else "centroid"
    if chooser == "mahalanobis" and not has:
        raise ConfigError(
            "the mahalanobis chooser needs a source bank with statistics (rebuild it with "
            "`aioir bank`)"
        )
    return chooser


def _mahalanobis(target: Tensor, means: Tensor, cov: Tensor) -> Tensor:
    """``(m − μ_k)ᵀ (Σ + εI)⁻¹ (m − μ_k) / C`` for every task ``k`` (float64)."""
    c = cov.shape[-1]
    ridge = MAHALANOBIS_RIDGE * torch.diagonal(cov).mean().clamp_min(1e-30)
    reg = cov + ridge * torch.eye(c, dtype=cov.dtype)
    diff = (means - target).t()  # C×T
    solved = torch.linalg.solve(reg, diff)
    return (diff * solved).sum(0) / c


@torch.no_grad()
def reference_distances(maps: Mapping[str, Tensor], bank: SourceBank, chooser: str) -> Tensor:
    """Distance of one image's unadapted maps (1×C×H×W) to every bank task (``T`` values).

    * ``coral``: ``Σ_ℓ CORAL(P^ℓ_k, pool(g_ℓ))`` (``docs/methods/udair.md``, "Blind reference
      choice");
    * ``centroid``: ``Σ_ℓ ‖mean(P^ℓ_k) − mean(g_ℓ)‖ / s_ℓ`` with ``s_ℓ`` the mean distance
      between the bank's task means at level ℓ (so every level weighs the same);
    * ``combined``: both, each divided by its mean over tasks, summed;
    * ``mahalanobis``: ``Σ_ℓ (m_ℓ − μ^ℓ_k)ᵀ (Σ̄^ℓ + εI)⁻¹ (m_ℓ − μ^ℓ_k) / C_ℓ`` with ``m_ℓ`` the
      mean row of the pooled map, ``μ^ℓ_k`` the task's stored mean and ``Σ̄^ℓ`` the stored
      per-task covariance averaged over tasks (a linear discriminant; ``ε`` = 1 % of its mean
      variance). Needs a bank with statistics;
    * ``auto``: ``mahalanobis`` when the bank has statistics, else ``centroid``.
    """
    chooser = resolve_chooser(chooser, bank)
    n_tasks = len(bank.task_names)
    coral = torch.zeros(n_tasks, dtype=torch.float64)
    centroid = torch.zeros(n_tasks, dtype=torch.float64)
    maha = torch.zeros(n_tasks, dtype=torch.float64)
    for level in LEVELS:
        ref = bank.levels[level].double().cpu()
        g = maps[level].detach().double().cpu()
        if chooser == "mahalanobis":
            rows = _target_rows(g, tuple(ref.shape[-2:]))
            means = bank.means[level].double().cpu()
            pooled = bank.covs[level].double().cpu().mean(0)
            maha += _mahalanobis(rows.mean(0), means, pooled)
            continue
        if chooser in ("coral", "combined"):
            rows = _target_rows(g, tuple(ref.shape[-2:]))
            for k in range(n_tasks):
                coral[k] += coral_loss(_rows(ref[k]), rows).item()
        if chooser in ("centroid", "combined"):
            means = ref.mean(dim=(2, 3))  # T×C
            target = g.mean(dim=(0, 2, 3))
            spread = torch.cdist(means, means).sum() / max(1, n_tasks * (n_tasks - 1))
            centroid += (means - target).norm(dim=1) / spread.clamp_min(1e-12)
    if chooser == "mahalanobis":
        return maha
    if chooser == "coral":
        return coral
    if chooser == "centroid":
        return centroid
    return coral / coral.mean().clamp_min(1e-30) + centroid / centroid.mean().clamp_min(1e-30)


def choose_reference(
    maps: Mapping[str, Tensor], bank: SourceBank, chooser: str = "auto"
) -> tuple[int, Tensor]:
    """Blind reference task: ``(argmin index, distances)`` (see :func:`reference_distances`)."""
    dist = reference_distances(maps, bank, chooser)
    return int(dist.argmin()), dist


# ------------------------------------------------------------------------------ model state
def _adapters(model: UDAIRBase) -> dict[str, DistributionAdapter]:
    return model.adapters()


@torch.no_grad()
def reinit_adapters(model: UDAIRBase, seed: int = 42, residual: bool = True) -> None:
    """Re-initialise the three adapters in place: fresh default init, last 1×1 zeroed.

    With ``residual=True`` each adapter becomes ``g + A(g)`` with ``A ≡ 0`` at start, so the
    model's output is unchanged until the first update. Deterministic in ``seed``; the global
    RNG is left untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for adapter in _adapters(model).values():
            first = adapter.adapt[0]
            fresh = DistributionAdapter(
                first.in_channels,
                growth_rate=first.out_channels / first.in_channels,
                residual=residual,
                zero_init=True,
            )
            for dst, src in zip(adapter.state_dict().values(), fresh.state_dict().values()):
                dst.copy_(src.to(dst))
            adapter.residual = residual


@contextlib.contextmanager
def preserved_state(model: UDAIRBase) -> Iterator[None]:
    """Restore on exit everything adaptation may change (episodic reset): adapter parameters,
    codebook buffers, train/eval modes, ``requires_grad`` flags, adapter switch and residual
    flags. Any optimiser must be created inside (it is then simply dropped)."""
    snapshot = model.adaptation_state()
    modes = {name: m.training for name, m in model.named_modules()}
    grads = {name: p.requires_grad for name, p in model.named_parameters()}
    enabled = bool(getattr(model, "adapters_enabled", False))
    residual = {k: a.residual for k, a in _adapters(model).items()}
    try:
        yield
    finally:
        model.load_adaptation_state(snapshot)
        for name, m in model.named_modules():
            m.training = modes[name]
        for name, p in model.named_parameters():
            p.requires_grad_(grads[name])
            p.grad = None
        model.set_adapters(enabled)
        for k, a in _adapters(model).items():
            a.residual = residual[k]


def only_adapters_trainable(model: UDAIRBase) -> list[nn.Parameter]:
    for p in model.parameters():
        p.requires_grad_(False)
    params = list(model.adapter_parameters())
    for p in params:
        p.requires_grad_(True)
    return params


def raw_maps(model: UDAIRBase, x: Tensor) -> dict[str, Tensor]:
    """Unadapted ``g4, g3, g2`` of ``x`` (no grad)."""
    enabled = bool(getattr(model, "adapters_enabled", False))
    model.set_adapters(False)
    try:
        with torch.no_grad():
            out = model.forward_features(x, decode=False)
    finally:
        model.set_adapters(enabled)
    return {"g4": out.g4, "g3": out.g3, "g2": out.g2}


def pil_bicubic(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize B×3×H×W images in [0, 1] to ``size`` (h, w) as the authors' loader does: to 8 bit
    (rounded), PIL's bicubic resize (its filter widened by the scale when shrinking, i.e.
    antialiased), back to float in [0, 1] on ``x``'s device."""
    import numpy as np
    from PIL import Image

    h, w = size
    out = []
    for img in x.detach().float().clamp(0.0, 1.0):
        array = (img.permute(1, 2, 0).cpu().numpy() * 255.0).round().astype(np.uint8)
        resized = Image.fromarray(array).resize((w, h), resample=Image.Resampling.BICUBIC)
        out.append(torch.from_numpy(np.asarray(resized).copy()).permute(2, 0, 1))
    return (torch.stack(out).float() / 255.0).to(x.device)


def working_image(x: Tensor, work_size: int | None, min_side: int) -> Tensor:
    """Downscale (antialiased bicubic) so the short side is ``work_size``; upscale images whose
    short side is below ``min_side`` (the bank's patch) to it, aspect kept (aioir's small-image
    convention; the authors' loader stretches only the short side)."""
    h, w = x.shape[-2:]
    short = min(h, w)
    target = short
    if work_size is not None and short > work_size:
        target = work_size
    target = max(target, min_side)
    if target == short:
        return x
    scale = target / short
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(
        0.0, 1.0
    )


# ------------------------------------------------------------------------------ the adapter
class UDAIRTestTimeAdapter:
    """The :class:`~aioir.restore.adaptation.TestTimeAdapter` for UDAIR (see module docstring).

    After each call, :attr:`reports` holds one dict per image (``task``, ``blind``,
    ``distances``, ``losses``, ``steps``, ``seconds``).
    """

    def __init__(self, config: TTAConfig | None = None) -> None:
        self.config = config or TTAConfig()
        self.reports: list[dict[str, Any]] = []

    def __repr__(self) -> str:
        return f"UDAIRTestTimeAdapter({self.config})"

    @property
    def needs_task(self) -> bool:
        """Whether each image's task must be given (faithful mode without ``task``: an oracle
        label, as the authors' test set name); see :meth:`for_task`."""
        return self.config.mode == "faithful" and not self.config.task

    def for_task(self, task: str) -> UDAIRTestTimeAdapter:
        """This adapter with reference task ``task`` (``aioir evaluate`` passes each column's
        task to a faithful adapter that has none)."""
        return UDAIRTestTimeAdapter(dataclasses.replace(self.config, task=task))

    def __call__(
        self, model: nn.Module, image: Tensor, restore: Callable[[Tensor], Tensor]
    ) -> Tensor:
        """Adapt to each image of the batch in turn, restore it, reset the model."""
        bank = getattr(model, "source_bank", None)
        if bank is None or not isinstance(model, UDAIRBase):
            raise ConfigError(
                "test-time adaptation needs a UDAIR model saved with its source bank "
                "(bank.safetensors next to the weights)"
            )
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"expected a B×3×H×W tensor, got shape {tuple(image.shape)}")
        cfg = self.config
        if self.needs_task:
            raise ConfigError(
                "faithful TTA needs the reference task (task=..., --tta-task): the authors' "
                "code takes it from the test-set name"
            )
        index = bank.task_index(cfg.task) if cfg.task else None
        self.reports = []
        outputs = []
        for b in range(image.shape[0]):
            x = image[b : b + 1].float()
            start = time.perf_counter()
            with preserved_state(model):
                if cfg.mode == "faithful" and index is not None:  # TTAConfig: faithful has a task
                    out, report = self._faithful(model, x, bank, index)
                else:
                    out, report = self._default(model, x, bank, index, restore)
            report["seconds"] = time.perf_counter() - start
            self.reports.append(report)
            outputs.append(out.detach().float())
        return torch.cat(outputs, 0)

    # ---------------------------------------------------------------- faithful
    def _faithful(
        self, model: UDAIRBase, x: Tensor, bank: SourceBank, index: int
    ) -> tuple[Tensor, dict[str, Any]]:
        cfg = self.config
        size = x.shape[-2:]
        work = x
        if cfg.resize and cfg.work_size is not None:
            work = pil_bicubic(x, (cfg.work_size, cfg.work_size))
        model.train()
        params = only_adapters_trainable(model)
        model.set_adapters(True)
        optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        devices = [work.device] if work.device.type == "cuda" else []
        losses: list[float] = []
        with torch.random.fork_rng(devices=devices), torch.enable_grad():
            torch.manual_seed(cfg.seed)
            for _ in range(cfg.max_steps - 1):
                o = model.forward_features(work, decode=False)
                loss = coral_objective(
                    {"g4": o.g4, "g3": o.g3, "g2": o.g2}, bank, index, cfg.loss_scale, "mean_map"
                )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses.append(loss.detach().item())
            with torch.no_grad():
                o = model.forward_features(work, decode=True)
                maps = {"g4": o.g4, "g3": o.g3, "g2": o.g2}
                losses.append(float(coral_objective(maps, bank, index, cfg.loss_scale, "mean_map")))
        out = o.image.clamp(0.0, 1.0)
        if out.shape[-2:] != size and cfg.output == "input":
            shrink = out.shape[-2] > size[0] or out.shape[-1] > size[1]
            out = F.interpolate(
                out, size=size, mode="bicubic", align_corners=False, antialias=shrink
            )
        report = {
            "mode": "faithful",
            "task": bank.task_names[index],
            "blind": False,
            "reference": "mean_map",
            "losses": losses,
            "steps": cfg.max_steps - 1,
        }
        return out.clamp(0.0, 1.0), report

    # ---------------------------------------------------------------- default
    def _default(
        self,
        model: UDAIRBase,
        x: Tensor,
        bank: SourceBank,
        index: int | None,
        restore: Callable[[Tensor], Tensor],
    ) -> tuple[Tensor, dict[str, Any]]:
        cfg = self.config
        pre_adapted = bool(getattr(model, "adapters_enabled", False))
        model.eval()
        work = working_image(x, cfg.work_size, bank_patch_size(bank))
        raw = raw_maps(model, work)
        distances = None
        blind = index is None
        reference = "statistics" if uses_statistics(bank, cfg.reference) else "mean_map"
        chooser = resolve_chooser(cfg.chooser, bank) if blind else None
        if index is None:
            index, distances = choose_reference(raw, bank, chooser or cfg.chooser)
        if not pre_adapted:  # untrained adapters: start from the identity
            reinit_adapters(model, cfg.seed, residual=True)
        params = only_adapters_trainable(model)
        model.set_adapters(True)
        adapters = _adapters(model)
        optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        losses: list[float] = []
        best, best_state, bad = math.inf, None, 0
        updates = 0
        with torch.enable_grad():
            for step in range(cfg.max_steps + 1):
                maps = {k: adapters[k](raw[k]) for k in LEVELS}
                loss = coral_objective(maps, bank, index, cfg.loss_scale, reference)
                value = loss.detach().item()
                losses.append(value)
                if value < best:
                    best = value
                    best_state = model.adaptation_state()
                if step > 0:
                    previous = losses[-2]
                    gain = (previous - value) / max(abs(previous), 1e-30)
                    bad = bad + 1 if gain < cfg.tol else 0
                    if bad >= cfg.patience:
                        break
                if step == cfg.max_steps or not math.isfinite(value):
                    break
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                updates += 1
        if best_state is not None:
            model.load_adaptation_state(best_state)
        for p in params:
            p.requires_grad_(False)
        out = restore(x)
        report = {
            "mode": "default",
            "task": bank.task_names[index],
            "blind": blind,
            "chooser": chooser,
            "reference": reference,
            "distances": None if distances is None else [float(d) for d in distances],
            "losses": losses,
            "best_loss": best,
            "steps": updates,
            "work_size": tuple(work.shape[-2:]),
        }
        return out, report


def udair_tta(
    mode: str = "default", task: str | None = None, **options: Any
) -> UDAIRTestTimeAdapter:
    """A UDAIR test-time adapter: ``Restorer(model, tta=udair_tta("faithful", task="noise"))``."""
    return UDAIRTestTimeAdapter(TTAConfig(mode=mode, task=task, **options))


@register_test_time_adapter("udair")
def _udair_factory(model: nn.Module, **options: Any) -> UDAIRTestTimeAdapter:
    """UDAIR's adapter: ``metadata["tta"]`` settings of a saved model, overridden by ``options``
    (``mode``, ``task``, …; see :class:`TTAConfig`); the default mode when neither is given."""
    if getattr(model, "source_bank", None) is None:
        raise ConfigError(
            "test-time adaptation needs the model's source bank (bank.safetensors beside the "
            "weights, written by `aioir train`); this UDAIR has none"
        )
    saved = getattr(model, "aioir_metadata", {}).get("tta") or {}
    if not isinstance(saved, Mapping):
        raise ConfigError(f"model metadata 'tta' must be a mapping, got {saved!r}")
    try:
        return UDAIRTestTimeAdapter(TTAConfig(**{**saved, **options}))
    except TypeError as exc:
        raise ConfigError(f"invalid test-time adaptation option: {exc}") from exc
