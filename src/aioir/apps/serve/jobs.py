"""The restoring side of ``aioir serve``: the models offered, the jobs, the one worker.

:class:`RestoreService` keeps the photos sent by the page as jobs. Each upload is written to a
private temporary folder and decoded once at once, so a bad file gets its one-line message
(``photo.jpg: not an image file (cannot identify format)``, as ``aioir restore`` prints it)
before it is queued. One worker thread restores the queued jobs one at a time with a cached
:class:`~aioir.restore.Restorer` (built again only when another model is picked), whose tiling
restores large photos; the job's progress counts the model's forward calls (one per tile batch),
or, for a photo restored in one pass, the time the last photos took per pixel.

A job keeps the model's output at strength 1 (float32). The strength slider picks how much of it
a download applies, ``input + s · (restored − input)`` computed as
:class:`~aioir.restore.Restorer` computes it for ``strength=s``, so changing it never restores
again; the file is written by :func:`aioir.io.save_image` in the input's format, bit depth,
alpha and grayscale. Finished jobs are kept within a memory budget (the oldest expire first).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import queue
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aioir.errors import AioirError, ConfigError, ImageReadError
from aioir.io import load_image, save_image, to_uint8
from aioir.tasks import COMPOSITE_SEPARATOR, CORE_TASKS, TASKS, task_parts

__all__ = [
    "DEFAULT_MODEL_KEY",
    "PREVIEW_SIDE",
    "Job",
    "ModelChoice",
    "RestoreService",
    "ServiceBusy",
    "model_choices",
]

DEFAULT_MODEL_KEY = "default"
"""The key of the shipped default model (``--model default``)."""

PREVIEW_SIDE = 2048
"""Long side, in pixels, of the before/after previews shown on the page (the download is full size)."""

_WEIGHTS_NAME = "model.safetensors"  # a saved-model folder (aioir.models.save_model) holds this
_CONTENT_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".bmp": "image/bmp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".webp": "image/webp",
}
_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WebP",
}


class ServiceBusy(AioirError):
    """Too many photos are waiting; the page is told to send it again later."""


class _Cancelled(Exception):
    """Raised inside the model call when the job being restored was removed."""


# ------------------------------------------------------------------------------ models
@dataclass(frozen=True)
class ModelChoice:
    """A model the page offers: ``key`` is what the page sends back, ``spec`` what
    :class:`~aioir.restore.Restorer` loads (``"default"``, a name, a path or an ``nn.Module``)."""

    key: str
    label: str
    spec: Any


def _is_saved_model(path: Path) -> bool:
    return (path.is_dir() and (path / _WEIGHTS_NAME).is_file()) or (
        path.is_file() and path.suffix == ".safetensors"
    )


def model_choices(
    models: Sequence[str | os.PathLike[str]] = (DEFAULT_MODEL_KEY,),
    folders: Sequence[str | os.PathLike[str]] = (),
) -> list[ModelChoice]:
    """What the model menu offers, in order: each of ``models`` (``"default"`` = the shipped
    default model, registered names or saved-model paths, as ``--model`` takes them), then every
    saved-model folder directly inside each of ``folders``, sorted by name (a folder that does
    not exist adds nothing). The first is the page's preselected model; duplicates are dropped."""
    choices: list[ModelChoice] = []
    seen: set[str] = set()

    def add(key: str, label: str) -> None:
        ident = os.path.realpath(key) if os.path.exists(key) else key
        if ident not in seen:
            seen.add(ident)
            choices.append(ModelChoice(key, label, key))

    for model in models:
        text = os.fspath(model)
        add(text, "default (shipped)" if text == DEFAULT_MODEL_KEY else text)
    for folder in folders:
        root = Path(folder)
        if not root.is_dir():
            continue
        for sub in sorted(root.iterdir()):
            if not sub.name.startswith(".") and _is_saved_model(sub):
                add(str(sub), f"{sub.name} ({root})")
    return choices


# ------------------------------------------------------------------------------ jobs
@dataclass
class Job:
    """One photo sent by the page: where it is on disk, what it is, how far it got."""

    id: str
    name: str
    source: Path
    model_key: str
    model_label: str
    model_spec: Any
    width: int
    height: int
    bit_depth: int
    grayscale: bool
    alpha: bool
    task: str | None = None
    """What the user said is wrong with the photo (``None``: the model tells)."""
    hint: dict[str, Any] | None = None
    """After a blind restore, the degradation the model read but held back on
    (``{"task", "probability"}``, :meth:`aioir.restore.Restorer.suggested_task`), else ``None``."""
    state: str = "queued"
    """queued, loading (the model), restoring, done, failed or expired."""
    message: str = ""
    steps_done: int = 0
    """Forward calls of the model so far (one per batch of tiles)."""
    steps_total: int = 0
    """Forward calls the restore needs (0: unknown)."""
    tiles_per_step: int = 1
    estimate: float | None = None
    """Expected seconds of restoring (from the last photos' time per pixel), for one-pass jobs."""
    created: float = field(default_factory=time.monotonic)
    started: float | None = None
    finished: float | None = None
    cancelled: bool = False
    restored: np.ndarray | None = None
    """The model's output at strength 1: float32 H×W×3 in [0, 1]."""
    previews: dict[str, bytes] = field(default_factory=dict)
    cached: tuple[float, bytes] | None = None

    @property
    def suffix(self) -> str:
        return self.source.suffix.lower()

    @property
    def result_name(self) -> str:
        """The download's file name: ``<stem>_restored<suffix>`` (the input's format)."""
        return f"{Path(self.name).stem}_restored{Path(self.name).suffix}"

    def describe(self) -> str:
        """``JPEG, 8-bit`` / ``PNG, 16-bit, grayscale, alpha``."""
        parts = [_FORMATS.get(self.suffix, self.suffix), f"{self.bit_depth}-bit"]
        parts += ["grayscale"] * self.grayscale + ["alpha"] * self.alpha
        return ", ".join(parts)

    def progress(self, now: float | None = None) -> float | None:
        """Fraction restored, in [0, 1]; ``None`` when it cannot be told (a first photo
        restored in one pass)."""
        if self.state == "done":
            return 1.0
        if self.state != "restoring" or self.started is None:
            return 0.0 if self.state in ("queued", "loading") else None
        if self.steps_total > 1:
            return min(self.steps_done / self.steps_total, 0.99)
        if self.estimate:
            elapsed = (time.monotonic() if now is None else now) - self.started
            return min(elapsed / self.estimate, 0.95)
        return None

    def _tiles(self) -> list[int]:
        """``[tiles done, tiles]`` (the last batch of tiles may be partial)."""
        total = self.steps_total * self.tiles_per_step
        return [min(self.steps_done * self.tiles_per_step, total), total]

    def status(self, position: int | None = None) -> dict[str, Any]:
        """What the page shows (JSON)."""
        now = time.monotonic()
        end = self.finished if self.finished is not None else now
        return {
            "id": self.id,
            "name": self.name,
            "state": self.state,
            "message": self.message,
            "width": self.width,
            "height": self.height,
            "format": self.describe(),
            "model": self.model_label,
            "task": self.task,
            "hint": self.hint,
            "progress": self.progress(now),
            "tiles": self._tiles() if self.steps_total > 1 else None,
            "position": position,
            "seconds": None if self.started is None else round(end - self.started, 2),
            "result_name": self.result_name,
        }


def _task(task: str | None) -> str | None:
    """``task`` as aioir names it (``None`` for none; ``a+b`` for several); ConfigError naming
    the tasks when it is none of :data:`aioir.tasks.TASKS`."""
    if task is None or not task.strip():
        return None
    parts = task_parts(task)
    if not all(part in TASKS for part in parts):
        raise ConfigError(f"unknown task {task!r} (tasks: {', '.join(CORE_TASKS)})")
    return COMPOSITE_SEPARATOR.join(parts)


def _one_line(name: str, exc: BaseException) -> str:
    """The one-line message ``aioir restore`` prints for a failed input (after ``failed:``)."""
    if isinstance(exc, AioirError):
        text = " ".join(str(exc).split())
        return text if text.startswith(name) else f"{name}: {text}"
    detail = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, MemoryError) or "out of memory" in detail.lower():
        return f"{name}: out of memory (try a smaller --tile)"
    return f"{name}: {type(exc).__name__}: {detail[:300]}"


def _safe_name(name: str) -> str:
    """The last path component of an uploaded file's name, without control characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()[:200]
    return base if base not in ("", ".", "..") else "upload"


def _preview_png(rgb: np.ndarray) -> bytes:
    """An 8-bit PNG of ``rgb`` (float in [0, 1]), its long side at most :data:`PREVIEW_SIDE`."""
    from PIL import Image

    image = Image.fromarray(to_uint8(rgb))
    if max(image.size) > PREVIEW_SIDE:
        scale = PREVIEW_SIDE / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


# ------------------------------------------------------------------------------ the service
class RestoreService:
    """The jobs of one ``aioir serve``, and the worker thread that restores them one at a time.

    Args:
        choices: the models offered (:func:`model_choices`); the first is the page's default.
        restorer_options: keyword arguments of every :class:`~aioir.restore.Restorer` built
            (``device``, ``tile``, ``precision``, …; never ``strength``: it is applied per
            download).
        allow_model_paths: let the page name a saved-model folder or ``.safetensors`` file
            on this machine, besides the choices.
        memory_budget: bytes of restored images kept for downloads; beyond it the oldest
            finished jobs expire.
        max_jobs: most jobs kept (finished ones are dropped first).
        max_waiting: most jobs queued at once (more: :class:`ServiceBusy`).
        log: called with one line per restored or failed photo (``None``: silent).
    """

    def __init__(
        self,
        choices: Sequence[ModelChoice],
        *,
        restorer_options: Mapping[str, Any] | None = None,
        allow_model_paths: bool = True,
        memory_budget: int = 2 << 30,
        max_jobs: int = 200,
        max_waiting: int = 100,
        log: Callable[[str], None] | None = None,
    ) -> None:
        if not choices:
            raise ConfigError("no model to offer")
        options = dict(restorer_options or {})
        if "strength" in options:
            raise ConfigError("strength is chosen on the page, not for the restorer")
        if "model_options" in options:
            raise ConfigError("the task is chosen on the page, per photo, not for the restorer")
        self.choices = {c.key: c for c in choices}
        self.default_key = choices[0].key
        self.restorer_options = options
        self.allow_model_paths = allow_model_paths
        self.memory_budget = memory_budget
        self.max_jobs = max_jobs
        self.max_waiting = max_waiting
        self.log = log
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._encode_lock = threading.Lock()
        self._queue: queue.Queue[str] = queue.Queue()
        self._stop = threading.Event()
        self._current: Job | None = None
        self._restorer: tuple[tuple[str, str | None], Any] | None = None
        self._seconds_per_pixel: dict[str, float] = {}
        self._workdir = Path(_make_workdir())
        self._worker = threading.Thread(target=self._work, name="aioir-serve-worker", daemon=True)

    # ---------------------------------------------------------------- life
    def start(self) -> None:
        """Start the worker thread."""
        self._worker.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the worker (a restore in progress is cancelled at its next tile) and delete
        every upload."""
        self._stop.set()
        with self._lock:
            if self._current is not None:
                self._current.cancelled = True
        if self._worker.is_alive():
            self._worker.join(timeout)
        shutil.rmtree(self._workdir, ignore_errors=True)

    def preload(self, key: str | None = None) -> None:
        """Load the model ``key`` (default: the first choice) now, so the first photo does not
        wait for it; raises the model's one-line error."""
        choice = self.choices[key or self.default_key]
        self._get_restorer((choice.key, None), choice.spec)

    # ---------------------------------------------------------------- requests
    def model_list(self) -> list[dict[str, str]]:
        """The choices as the page lists them."""
        return [{"key": c.key, "label": c.label} for c in self.choices.values()]

    def _choice(self, model: str | None, path: str | None) -> ModelChoice:
        if path:
            if not self.allow_model_paths:
                raise ConfigError("this server does not load models from paths")
            p = Path(path).expanduser()
            if not p.exists():
                raise ConfigError(f"{path}: no such model file or folder")
            if not _is_saved_model(p):
                raise ConfigError(
                    f"{path}: not a saved model (a folder with {_WEIGHTS_NAME}, "
                    "or a .safetensors file)"
                )
            resolved = str(p.resolve())
            return ModelChoice(f"path:{resolved}", str(p), resolved)
        key = model or self.default_key
        if key not in self.choices:
            raise ConfigError(f"unknown model {key!r} (offered: {', '.join(self.choices)})")
        return self.choices[key]

    def new_upload(self, name: str) -> Path:
        """A fresh private path for an upload named ``name`` (only its last component is kept)."""
        folder = self._workdir / secrets.token_hex(8)
        folder.mkdir()
        return folder / _safe_name(name)

    def discard_upload(self, path: Path) -> None:
        """Delete an upload that did not become a job."""
        if path.parent.parent == self._workdir:
            shutil.rmtree(path.parent, ignore_errors=True)

    def submit(
        self,
        upload: Path,
        *,
        model: str | None = None,
        path: str | None = None,
        task: str | None = None,
    ) -> Job:
        """Queue the uploaded file ``upload`` (from :meth:`new_upload`): checked, decoded once
        (ImageReadError with the one-line message naming the file as the user named it),
        queued. ``task``: what the user says is wrong with it (``aioir restore --task``; a
        model that cannot be told fails the job in one line). ConfigError for a bad model
        choice or an unknown task, :class:`ServiceBusy` when too many wait."""
        name = upload.name
        try:
            choice = self._choice(model, path)
            task = _task(task)
            if self._queue.qsize() >= self.max_waiting:
                raise ServiceBusy(f"{name}: {self.max_waiting} photos are waiting; try later")
            try:
                data = load_image(upload)
            except ImageReadError as exc:
                raise ImageReadError(str(exc).replace(str(upload), name)) from None
        except BaseException:
            self.discard_upload(upload)
            raise
        job = Job(
            id=upload.parent.name,
            name=name,
            source=upload,
            model_key=choice.key,
            model_label=choice.label,
            model_spec=choice.spec,
            width=data.rgb.shape[1],
            height=data.rgb.shape[0],
            bit_depth=data.bit_depth,
            grayscale=data.grayscale,
            alpha=data.alpha is not None,
            task=task,
        )
        del data
        with self._lock:
            self._jobs[job.id] = job
            self._trim()
        self._queue.put(job.id)
        return job

    def get(self, job_id: str) -> Job | None:
        """The job ``job_id``, if it is kept."""
        with self._lock:
            return self._jobs.get(job_id)

    def statuses(self, ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """The status of every job kept (or of ``ids``), queued ones with their place in line."""
        with self._lock:
            jobs = list(self._jobs.values())
        waiting = sorted((j for j in jobs if j.state == "queued"), key=lambda j: j.created)
        place = {j.id: n + 1 for n, j in enumerate(waiting)}
        wanted = None if ids is None else set(ids)
        return [j.status(place.get(j.id)) for j in jobs if wanted is None or j.id in wanted]

    def remove(self, job_id: str) -> bool:
        """Forget a job (cancelled at its next tile if it is being restored) and its files."""
        with self._lock:
            job = self._jobs.pop(job_id, None)
            if job is None:
                return False
            job.cancelled = True
            running = job is self._current
        if not running:
            self._drop_files(job)
        return True

    def preview(self, job_id: str, which: str) -> bytes | None:
        """The ``before`` or ``after`` preview PNG of a restored job."""
        job = self.get(job_id)
        return None if job is None else job.previews.get(which)

    def result(self, job_id: str, strength: float = 1.0) -> tuple[str, str, bytes]:
        """``(file name, content type, bytes)`` of a restored job at ``strength``: the input's
        format and bit depth, what ``Restorer(strength=strength)`` writes for it."""
        import torch

        if not 0.0 <= strength <= 1.0:  # also refuses NaN
            raise ConfigError(f"strength must be between 0 and 1, not {strength}")
        job = self.get(job_id)
        if job is None:
            raise KeyError(job_id)
        restored = job.restored
        if job.state != "done" or restored is None:
            raise ConfigError(f"{job.name}: not restored ({job.state})")
        cached = job.cached
        if cached is not None and cached[0] == strength:
            return job.result_name, _CONTENT_TYPES[job.suffix], cached[1]
        with self._encode_lock:
            data = load_image(job.source)
            out = restored
            if strength != 1.0:  # as Restorer.restore_tensor applies strength
                x = torch.from_numpy(data.rgb).clamp(0.0, 1.0)
                out = torch.lerp(x, torch.from_numpy(restored), strength).numpy()
            target = job.source.with_name(f".result{job.suffix}")
            try:
                save_image(target, data, out, overwrite=True)
                payload = target.read_bytes()
            finally:
                target.unlink(missing_ok=True)
        job.cached = (strength, payload)
        return job.result_name, _CONTENT_TYPES[job.suffix], payload

    # ---------------------------------------------------------------- the worker
    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                job_id = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            with self._lock:
                job = self._jobs.get(job_id)
                if job is None or job.cancelled:
                    continue
                self._current = job
            try:
                self._restore(job)
            finally:
                with self._lock:
                    self._current = None
                    kept = self._jobs.get(job.id) is job
                if not kept:  # removed while it was being restored
                    self._drop_files(job)

    def _restore(self, job: Job) -> None:
        try:
            job.state = "loading"
            key = (job.model_key, job.task)
            cached = self._restorer is not None and self._restorer[0] == key
            job.message = "reading the photo" if cached else f"loading {job.model_label}"
            restorer = self._get_restorer(key, job.model_spec)
            job.message = "reading the photo"
            data = load_image(job.source)
            job.steps_total = _expected_calls(restorer, job.height, job.width)
            job.tiles_per_step = max(1, int(getattr(restorer, "tile_batch_size", 1)))
            pixels = job.width * job.height
            rate = self._seconds_per_pixel.get(job.model_key)
            job.estimate = None if rate is None else rate * pixels
            job.steps_done = 0
            job.started = time.monotonic()
            job.state, job.message = "restoring", ""
            restored = restorer.restore_data(data)
            seconds = time.monotonic() - job.started
            suggestion = restorer.suggested_task()
            if suggestion is not None:
                job.hint = {
                    "task": suggestion.task,
                    "probability": round(suggestion.probability, 2),
                }
            job.previews = {"before": _preview_png(data.rgb), "after": _preview_png(restored)}
            job.restored = restored
            self._seconds_per_pixel[job.model_key] = seconds / max(1, pixels)
            job.finished = time.monotonic()
            job.state, job.message = "done", ""
            if self.log is not None:
                self.log(
                    f"restored {job.name} ({job.width}×{job.height}) with {job.model_label}"
                    + (f", told {job.task}" if job.task else "")
                    + f" in {seconds:.1f} s"
                )
            with self._lock:
                self._trim()
        except _Cancelled:
            job.state, job.message = "failed", f"{job.name}: removed"
        except Exception as exc:
            job.state, job.message = "failed", _one_line(job.name, exc)
            job.finished = time.monotonic()
            if self.log is not None:
                self.log(f"failed: {job.message}")

    def _get_restorer(self, key: tuple[str, str | None], spec: Any) -> Any:
        """The cached restorer for ``key`` = (model, task); another key replaces it (one model
        in memory: a photo told another task loads the model again, in a second or two)."""
        if self._restorer is not None and self._restorer[0] == key:
            return self._restorer[1]
        from aioir.restore import Restorer

        self._restorer = None  # free the previous model before loading the next
        task = key[1]
        options = None if task is None else {"task": task}
        restorer = Restorer(spec, **self.restorer_options, model_options=options)
        restorer.model.register_forward_pre_hook(self._before_forward)
        restorer.model.register_forward_hook(self._after_forward)
        self._restorer = (key, restorer)
        return restorer

    def _before_forward(self, module: Any, args: Any) -> None:
        job = self._current
        if job is not None and (job.cancelled or self._stop.is_set()):
            raise _Cancelled

    def _after_forward(self, module: Any, args: Any, output: Any) -> None:
        job = self._current
        if job is not None:
            job.steps_done += 1

    # ---------------------------------------------------------------- housekeeping
    def _trim(self) -> None:
        """Expire the oldest finished jobs beyond the memory budget and the job count (the
        caller holds the lock)."""
        finished = sorted(
            (j for j in self._jobs.values() if j.finished is not None),
            key=lambda j: j.finished or 0.0,
        )
        kept = sum(j.restored.nbytes for j in finished if j.restored is not None)
        for job in finished:
            if kept <= self.memory_budget:
                break
            if job.restored is not None:
                kept -= job.restored.nbytes
                self._expire(job)
        for job in finished:
            if len(self._jobs) <= self.max_jobs:
                break
            self._jobs.pop(job.id, None)
            self._drop_files(job)

    def _expire(self, job: Job) -> None:
        job.restored, job.previews, job.cached = None, {}, None
        job.state = "expired"
        job.message = f"{job.name}: expired to free memory; drop the photo again"
        self._drop_files(job)

    def _drop_files(self, job: Job) -> None:
        shutil.rmtree(job.source.parent, ignore_errors=True)


def _make_workdir() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="aioir-serve-")


def _expected_calls(restorer: Any, height: int, width: int) -> int:
    """Forward calls the restorer makes for one image (tile batches × self-ensemble passes);
    0 when it cannot be told."""
    from aioir.restore.tiling import round_tile, tile_starts

    with contextlib.suppress(Exception):
        tile = restorer.tile_for(height, width)
        passes = {None: 1, "flips": 4, "all": 8}.get(restorer.self_ensemble, 1)
        if tile is None:
            return passes
        tile = round_tile(tile, restorer.multiple)
        overlap = min(restorer.tile_overlap, tile - 1)
        tiles = len(tile_starts(height, tile, overlap)) * len(tile_starts(width, tile, overlap))
        return passes * math.ceil(tiles / max(1, restorer.tile_batch_size))
    return 0
