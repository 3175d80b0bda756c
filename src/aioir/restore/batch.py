"""Restore many files: expand the inputs, plan output names, prefetch, report per-file failures.

Used by ``aioir restore``; usable from Python for the same behaviour.

**Inputs** are files, folders (their images; sub-folders with ``recursive``) and glob patterns
(expanded here too, for shells that do not; ``**`` matches sub-folders). Every argument must
match at least one image, otherwise :class:`~aioir.errors.ConfigError` (a usage error): a
missing path, a pattern that matches nothing, a folder without images. A file named explicitly
is always attempted, whatever its suffix (it then fails if it is not an image).

**Output names** are ``<output>/<stem>.png``; ``output`` may instead name one image file
(:func:`output_is_file`: a supported image suffix, e.g. ``fixed.jpg``, and not an existing
folder) when the inputs are one image — it is written there, in the format its suffix names
(the comparison image beside it as ``<its stem>_compare.png``). For images found inside a
folder argument the sub-folder path below that folder is kept (``<output>/<sub>/<stem>.png``),
so recursive trees do not collide. When two inputs still map to the same output (``a/x.jpg`` and ``b/x.png`` given
as files, or ``x.jpg`` and ``x.png`` in one folder), the first keeps the name and the others fail
with a one-line reason naming the winner; nothing is renamed behind the user's back. The same
file given twice is restored once.

**Before the first image** :func:`run_batch` checks that every output folder can be written
(:func:`check_output_folder`), so a read-only or misspelt destination is one error up front,
not one failure per image after all of them were restored. With ``skip_existing`` a job whose
outputs all exist is skipped (a re-run resumes an interrupted one); otherwise an existing
output is that input's failure, naming the input and the output.
"""

from __future__ import annotations

import contextlib
import glob
import os
import queue
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

from aioir.errors import AioirError, ConfigError, ImageReadError, ImageWriteError
from aioir.io import ImageData, is_image_file, list_images, load_image

__all__ = [
    "BatchResult",
    "Job",
    "check_output_folder",
    "collect_inputs",
    "output_is_file",
    "plan_jobs",
    "prefetch",
    "run_batch",
]

_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class Job:
    """One input file and where its outputs go; ``error`` is set when it must not run."""

    source: Path
    output: Path
    compare: Path | None = None
    error: str | None = None


@dataclass(frozen=True)
class BatchResult:
    """How a batch went: files written, one-line failure messages and the inputs skipped
    because their outputs existed (``skip_existing``)."""

    written: list[Path]
    failures: list[str]
    skipped: list[Path] = field(default_factory=list)

    @property
    def exit_status(self) -> int:
        """0 when every input was restored, 1 when some failed."""
        return 1 if self.failures else 0


def _images_in(folder: Path, recursive: bool, exclude: Path | None) -> list[tuple[Path, Path]]:
    found = list_images(folder, recursive)
    if exclude is not None:
        found = [p for p in found if not p.resolve().is_relative_to(exclude)]
    return [(p, p.relative_to(folder).with_suffix("")) for p in found]


def collect_inputs(
    inputs: Sequence[str | os.PathLike[str]],
    recursive: bool = False,
    exclude: str | os.PathLike[str] | None = None,
) -> list[tuple[Path, Path]]:
    """Expand ``inputs`` into ``(file, output stem relative to the output folder)`` pairs.

    Images found by expanding folders or patterns inside ``exclude`` (the output folder) are
    skipped, so restoring ``photos -o photos/restored --recursive`` twice does not restore the
    first run's outputs. Raises ConfigError naming the first argument that matches no image
    (see module doc).
    """
    if not inputs:
        raise ConfigError("no inputs given")
    skip = None if exclude is None else Path(exclude).expanduser().resolve()
    found: list[tuple[Path, Path]] = []
    for raw in inputs:
        arg = os.fspath(raw)
        path = Path(arg).expanduser()
        if path.is_dir():
            items = _images_in(path, recursive, skip)
            if not items:
                hint = "" if recursive else " (use --recursive for sub-folders)"
                raise ConfigError(f"{path}: folder has no images{hint}")
            found += items
        elif path.exists():
            found.append((path, Path(path.stem)))
        elif _GLOB_CHARS & set(arg):
            matches = sorted(glob.glob(os.path.expanduser(arg), recursive=True))
            items = []
            for m in map(Path, matches):
                if m.is_dir():
                    items += _images_in(m, recursive, skip)
                elif (
                    m.is_file()
                    and is_image_file(m)
                    and not m.name.startswith(".")
                    and (skip is None or not m.resolve().is_relative_to(skip))
                ):
                    items.append((m, Path(m.stem)))
            if not items:
                raise ConfigError(f"{arg}: pattern matches no images")
            found += items
        else:
            raise ConfigError(f"{arg}: no such file or folder")
    return found


def output_is_file(output: str | os.PathLike[str]) -> bool:
    """Whether ``output`` names one image file to write (a supported image suffix, and not an
    existing folder) rather than the output folder."""
    path = Path(output)
    return is_image_file(path) and not path.is_dir()


def plan_jobs(
    items: Sequence[tuple[Path, Path]], output: str | os.PathLike[str], compare: bool = False
) -> list[Job]:
    """Output paths for each input; later inputs colliding with an earlier name get an error.

    ``output`` is the output folder, or one image file for a single input (see
    :func:`output_is_file`; :class:`~aioir.errors.ConfigError` when there are several)."""
    if output_is_file(output):
        target = Path(output)
        sources = list(dict.fromkeys(source.resolve() for source, _ in items))
        if len(sources) != 1:
            raise ConfigError(
                f"{target}: an image file as the output takes one input image, not "
                f"{len(sources)}; give an output folder"
            )
        side = target.with_name(target.stem + "_compare.png") if compare else None
        return [Job(items[0][0], target, side)]
    out_dir = Path(output)
    claimed: dict[str, Path] = {}
    seen: set[Path] = set()
    jobs = []
    for source, stem in items:
        key_source = source.resolve()
        if key_source in seen:
            continue
        seen.add(key_source)
        target = out_dir / stem.with_name(stem.name + ".png")
        side = out_dir / stem.with_name(stem.name + "_compare.png") if compare else None
        error = None
        for t in (target, side):
            if t is None:
                continue
            owner = claimed.get(os.path.normcase(str(t)).casefold())
            if owner is not None and error is None:
                error = (
                    f"{source}: output name {t.name} is already used by {owner}; "
                    "rename one of them or restore them separately"
                )
        if error is None:
            for t in (target, side):
                if t is not None:
                    claimed[os.path.normcase(str(t)).casefold()] = source
        jobs.append(Job(source, target, side, error))
    return jobs


def _existing_ancestor(folder: Path) -> Path:
    """``folder`` or its nearest existing ancestor (where the missing part would be created)."""
    probe = folder.absolute()
    while probe.parent != probe:
        try:
            if probe.exists():
                break
        except OSError:  # cannot even look (no search permission): the write check says why
            break
        probe = probe.parent
    return probe


def check_output_folder(folder: str | os.PathLike[str]) -> None:
    """Raise :class:`~aioir.errors.ImageWriteError` (one line naming ``folder``) unless files
    can be written into ``folder``, creating it if needed.

    Checked by creating (and removing) an empty temporary file in ``folder`` or, when it does
    not exist yet, in its nearest existing ancestor: the way the atomic writer will write,
    so permissions, read-only file systems and a file in the way are all caught.
    """
    target = Path(folder)
    try:
        probe = _existing_ancestor(target)
        if not probe.is_dir():
            raise ImageWriteError(f"{target}: cannot create the output folder ({probe} is a file)")
        fd, name = tempfile.mkstemp(prefix=".aioir-write-check-", dir=probe)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ImageWriteError(
            f"{target}: cannot write into this output folder ({reason})"
        ) from None
    os.close(fd)
    os.unlink(name)


def _outputs(job: Job) -> list[Path]:
    return [t for t in (job.output, job.compare) if t is not None]


def prefetch(
    jobs: Sequence[Job], depth: int = 1, overwrite: bool = False
) -> Iterator[tuple[Job, ImageData | Exception]]:
    """Yield ``(job, loaded image or the exception loading raised)``, loading ahead in a thread.

    At most ``depth`` images are decoded ahead of the one being handed out (each 24-megapixel
    photo is ~300 MB as float32, so the default is one: the next image decodes while the current
    one is restored). Jobs with an ``error``, and jobs whose output exists (unless
    ``overwrite``), are passed through as errors without decoding. Stopping the iteration early
    stops the thread.
    """
    q: queue.Queue[tuple[Job, ImageData | Exception] | None] = queue.Queue()  # None: done
    slots = threading.Semaphore(max(1, depth))
    stop = threading.Event()

    def load(job: Job) -> ImageData | Exception:
        if job.error is not None:
            return ConfigError(job.error)
        for target in _outputs(job):
            if not overwrite and target.exists():
                return ImageWriteError(
                    f"{job.source}: output {target} exists; pass --overwrite to replace it "
                    "(or --skip-existing to leave it)"
                )
        try:
            return load_image(job.source)
        except Exception as exc:  # handed to the consumer, reported per file
            return exc

    def work() -> None:
        for job in jobs:
            while not slots.acquire(timeout=0.1):
                if stop.is_set():
                    return
            if stop.is_set():
                return
            q.put((job, load(job)))
        q.put(None)

    thread = threading.Thread(target=work, name="aioir-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is None:
                return
            slots.release()  # the worker may decode the next image while this one is used
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


def _one_line(source: Path, exc: BaseException) -> str:
    if isinstance(exc, AioirError):
        text = " ".join(str(exc).split())
        # the writer's Python wording (an output that appeared meanwhile, e.g. a second run)
        text = text.replace("exists; pass overwrite=True", "exists; pass --overwrite to replace it")
        # name the input first, even when its path is part of the output's (photo.png →
        # restored/photo.png)
        return text if text.startswith(f"{source}:") else f"{source}: {text}"
    if isinstance(exc, MemoryError):
        return f"{source}: out of memory (try a smaller --tile)"
    detail = " ".join(str(exc).split()) or type(exc).__name__
    if "out of memory" in detail.lower():
        return f"{source}: out of memory (try a smaller --tile)"
    return f"{source}: {type(exc).__name__}: {detail[:300]}"


@contextlib.contextmanager
def _tile_bar(restorer: Any, stream: TextIO, enabled: bool) -> Iterator[Callable[[], None]]:
    """While inside, the restorer's ``on_tile`` shows a bar of the tiles of the image in
    progress (when there are several) under the images' bar; yields what to call when an image
    is done."""
    from tqdm import tqdm

    if not enabled or not hasattr(restorer, "on_tile"):
        yield lambda: None
        return
    bars: list[tqdm] = []  # made at an image's first tile, closed when it is done

    def on_tile(done: int, total: int) -> None:
        if total <= 1:
            return
        if not bars:
            bars.append(tqdm(total=total, unit="tile", file=stream, leave=False, position=1))
        if total != bars[0].total or done < bars[0].n:  # the next pass (self-ensemble, TTA)
            bars[0].reset(total=total)
        bars[0].update(done - bars[0].n)

    def image_done() -> None:
        while bars:
            bars.pop().close()

    previous = restorer.on_tile
    restorer.on_tile = on_tile
    try:
        yield image_done
    finally:
        image_done()
        restorer.on_tile = previous


class FileRestorer(Protocol):
    """What :func:`run_batch` needs of its restorer (a :class:`~aioir.restore.Restorer` is one)."""

    def restore_file(
        self,
        path: str | os.PathLike[str],
        out_path: str | os.PathLike[str],
        /,
        *,
        overwrite: bool = ...,
        compare_path: str | os.PathLike[str] | None = ...,
        data: ImageData | None = ...,
    ) -> Path: ...


def run_batch(
    restorer: FileRestorer,
    jobs: Sequence[Job],
    *,
    overwrite: bool = False,
    skip_existing: bool = False,
    progress: bool | None = None,
    debug: bool = False,
    stream: TextIO | None = None,
    on_image: Callable[[Path], None] | None = None,
) -> BatchResult:
    """Restore every job with ``restorer`` (a :class:`~aioir.restore.Restorer`).

    Every output folder is checked first (:func:`check_output_folder`: ImageWriteError before
    any image). A failing input is reported as one line on ``stream`` (stderr), the others
    still run. ``skip_existing`` skips the jobs whose outputs all exist (reported in
    :attr:`BatchResult.skipped`, not as failures); it cannot be combined with ``overwrite``.
    ``progress`` shows a tqdm bar of the images (default: when ``stream`` is a terminal) and,
    under it, one of the tiles of an image restored in tiles (the restorer's ``on_tile``).
    ``debug`` adds the traceback of unexpected errors. ``on_image(source)`` runs after each
    image restored (e.g. to report the model's decisions for it).
    """
    from tqdm import tqdm

    if overwrite and skip_existing:
        raise ConfigError("overwrite and skip_existing exclude each other; choose one")
    stream = sys.stderr if stream is None else stream
    if progress is None:
        progress = bool(getattr(stream, "isatty", lambda: False)())
    checked: set[Path] = set()
    for folder in dict.fromkeys(t.parent for job in jobs for t in _outputs(job)):
        probe = _existing_ancestor(folder)
        if probe not in checked:
            checked.add(probe)
            check_output_folder(folder)
    skipped: list[Path] = []
    if skip_existing:
        todo = []
        for job in jobs:
            if job.error is None and all(t.exists() for t in _outputs(job)):
                skipped.append(job.source)
            else:
                todo.append(job)
        jobs = todo
    written: list[Path] = []
    failures: list[str] = []
    with (
        tqdm(total=len(jobs), unit="img", file=stream, disable=not progress, leave=False) as bar,
        _tile_bar(restorer, stream, progress) as image_done,
    ):
        for job, loaded in prefetch(jobs, overwrite=overwrite):
            try:
                if isinstance(loaded, BaseException):
                    raise loaded
                written.append(
                    restorer.restore_file(
                        job.source,
                        job.output,
                        overwrite=overwrite,
                        compare_path=job.compare,
                        data=loaded,
                    )
                )
                if on_image is not None:
                    on_image(job.source)
            except Exception as exc:
                message = _one_line(job.source, exc)
                failures.append(message)
                if debug and not isinstance(exc, (ImageReadError, ConfigError)):
                    tqdm.write("".join(traceback.format_exception(exc)).rstrip(), file=stream)
                tqdm.write(f"aioir: failed: {message}", file=stream)
            image_done()
            bar.update(1)
    return BatchResult(written, failures, skipped)
