"""Batch helpers: input expansion, output planning, prefetching."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np
import pytest

from aioir.errors import ConfigError, ImageReadError, ImageWriteError
from aioir.io import ImageData, write_image
from aioir.restore.api import Restorer
from aioir.restore.batch import Job, collect_inputs, plan_jobs, prefetch, run_batch


def _img(path: Path) -> Path:
    return write_image(path, np.zeros((2, 2, 3), np.float32))


def test_collect_inputs_files_folders_globs(tmp_path):
    a = _img(tmp_path / "a.png")
    _img(tmp_path / "sub" / "b.jpg")
    (tmp_path / "sub" / "c.txt").write_text("x")
    (tmp_path / "sub" / ".hidden.png").write_bytes(b"")
    assert collect_inputs([a]) == [(a, Path("a"))]
    assert collect_inputs([tmp_path / "sub"]) == [(tmp_path / "sub" / "b.jpg", Path("b"))]
    found = collect_inputs([tmp_path], recursive=True)
    assert [rel for _, rel in found] == [Path("a"), Path("sub/b")]
    assert [p.name for p, _ in collect_inputs([str(tmp_path / "*" / "*.*")])] == ["b.jpg"]
    assert [p.name for p, _ in collect_inputs([str(tmp_path / "**" / "*.*")])] == ["a.png", "b.jpg"]


def test_collect_inputs_usage_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    _img(tmp_path / "empty" / "deep" / "x.png")
    with pytest.raises(ConfigError, match="use --recursive"):
        collect_inputs([tmp_path / "empty"])
    assert len(collect_inputs([tmp_path / "empty"], recursive=True)) == 1
    with pytest.raises(ConfigError, match="no such file"):
        collect_inputs([tmp_path / "nope.png"])
    with pytest.raises(ConfigError, match="matches no images"):
        collect_inputs([str(tmp_path / "*.webp")])
    with pytest.raises(ConfigError, match="no inputs"):
        collect_inputs([])


def test_outputs_inside_the_input_folder_are_not_inputs(tmp_path):
    a = _img(tmp_path / "a.png")
    _img(tmp_path / "restored" / "a.png")
    assert collect_inputs([tmp_path], recursive=True, exclude=tmp_path / "restored") == [
        (a, Path("a"))
    ]
    assert len(collect_inputs([str(tmp_path / "**" / "*.png")], exclude=tmp_path / "restored")) == 1


def test_explicit_non_image_file_is_attempted(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    assert collect_inputs([tmp_path / "notes.txt"]) == [(tmp_path / "notes.txt", Path("notes"))]


def test_plan_jobs_collisions_and_duplicates(tmp_path):
    a = _img(tmp_path / "x" / "Photo.png")
    b = _img(tmp_path / "y" / "photo.jpg")
    c = _img(tmp_path / "y" / "photo_compare.png")
    items = [(a, Path("Photo")), (a, Path("Photo")), (b, Path("photo")), (c, Path("photo_compare"))]
    jobs = plan_jobs(items, tmp_path / "out", compare=True)
    assert len(jobs) == 3  # the duplicate is dropped
    assert jobs[0].error is None and jobs[0].output == tmp_path / "out" / "Photo.png"
    assert jobs[0].compare == tmp_path / "out" / "Photo_compare.png"
    assert "already used by" in jobs[1].error and str(a) in jobs[1].error  # case-insensitive
    assert "already used by" in jobs[2].error  # collides with a's compare image
    plain = plan_jobs(items[2:], tmp_path / "out")
    assert [j.error for j in plain] == [None, None]


def test_prefetch_keeps_order_passes_errors_and_stops_early(tmp_path):
    good = _img(tmp_path / "good.png")
    (tmp_path / "bad.png").write_bytes(b"")
    jobs = [
        Job(good, tmp_path / "o1.png"),
        Job(tmp_path / "bad.png", tmp_path / "o2.png"),
        Job(good, tmp_path / "o3.png", error="planned failure"),
    ]
    results = list(prefetch(jobs, depth=2))
    assert [j for j, _ in results] == jobs
    assert isinstance(results[0][1], ImageData)
    assert isinstance(results[1][1], ImageReadError)
    assert isinstance(results[2][1], ConfigError) and "planned failure" in str(results[2][1])

    (tmp_path / "exists.png").write_bytes(b"x")
    ((_, skipped),) = prefetch([Job(good, tmp_path / "exists.png")])
    assert isinstance(skipped, ImageWriteError) and "exists" in str(skipped)
    ((_, redo),) = prefetch([Job(good, tmp_path / "exists.png")], overwrite=True)
    assert isinstance(redo, ImageData)

    many = [Job(good, tmp_path / f"o{i}.png") for i in range(50)]
    before = set(threading.enumerate())  # other tests' threads may come and go meanwhile
    stream = prefetch(many, depth=1)
    next(stream)
    (loader,) = [t for t in threading.enumerate() if t not in before and t.name == "aioir-prefetch"]
    stream.close()  # the loader thread must stop, not decode the other 49 images
    assert not loader.is_alive()


class _Recorder:
    """A stand-in restorer that writes a marker file and records what it was asked."""

    def __init__(self) -> None:
        self.calls: list[Path] = []

    def restore_file(self, source, target, *, overwrite=False, compare_path=None, data=None):
        self.calls.append(Path(source))
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_bytes(b"restored")
        return Path(target)


def test_run_batch_checks_the_output_folders_before_the_first_image(tmp_path, monkeypatch):
    """issue 22, 4: an unwritable folder used to surface only after every image was restored."""
    import tempfile

    from aioir.restore.batch import check_output_folder, run_batch

    src = _img(tmp_path / "a.png")
    (tmp_path / "file").write_text("x")
    restorer = _Recorder()
    with pytest.raises(ImageWriteError, match=r"out: cannot create the output folder"):
        run_batch(restorer, [Job(src, tmp_path / "file" / "out" / "a.png")], progress=False)
    locked = tmp_path / "locked"
    (locked / "sub").mkdir(parents=True)

    real = tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):  # locked/sub is read-only, even for root
        if Path(dir) == locked / "sub":
            raise PermissionError(13, "Permission denied")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    jobs = [Job(src, tmp_path / "fine" / "a.png"), Job(src, locked / "sub" / "b.png")]
    with pytest.raises(ImageWriteError) as exc:
        run_batch(restorer, jobs, progress=False)
    assert str(exc.value) == f"{locked / 'sub'}: cannot write into this output folder " + (
        "(Permission denied)"
    )
    assert restorer.calls == []
    monkeypatch.undo()
    check_output_folder(tmp_path / "new" / "deeper")  # missing folders are created later
    assert not (tmp_path / "new").exists() and list(tmp_path.glob("**/.aioir-*")) == []


def test_run_batch_skip_existing(tmp_path):
    from aioir.restore.batch import run_batch

    srcs = [_img(tmp_path / f"{n}.png") for n in "abc"]
    out = tmp_path / "out"
    jobs = plan_jobs([(s, Path(s.stem)) for s in srcs], out, compare=True)
    out.mkdir()
    for name in ("a.png", "a_compare.png", "b.png"):  # a done; b interrupted between its files
        (out / name).write_bytes(b"old")
    restorer = _Recorder()
    result = run_batch(restorer, jobs, skip_existing=True, progress=False)
    assert result.skipped == [srcs[0]] and restorer.calls == [srcs[2]]
    assert len(result.failures) == 1 and result.failures[0].startswith(f"{srcs[1]}: output")
    assert (out / "a.png").read_bytes() == b"old"
    with pytest.raises(ConfigError, match="exclude each other"):
        run_batch(restorer, jobs, skip_existing=True, overwrite=True)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_run_batch_shows_the_tiles_of_a_large_image(tmp_path):
    """Issue 22, bug 9: the bar counted images, so one large image showed no progress."""
    import torch

    source = write_image(tmp_path / "big.png", np.full((40, 70, 3), 0.5, np.float32))
    restorer = Restorer(torch.nn.Identity(), device="cpu", tile=32, tile_overlap=8)
    jobs = plan_jobs([(source, Path("big"))], tmp_path / "out")
    stream = _Terminal()
    result = run_batch(restorer, jobs, stream=stream)
    assert result.exit_status == 0
    text = stream.getvalue()
    assert "0/6" in text and "tile/s" in text  # a bar of 2×3 tiles
    assert restorer.on_tile is None  # put back
    quiet = _Terminal()
    run_batch(restorer, jobs, stream=quiet, progress=False, overwrite=True)
    assert quiet.getvalue() == ""
