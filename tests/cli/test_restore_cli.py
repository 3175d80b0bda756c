"""``aioir restore``: every input kind, exit codes, one-line failures, no partial outputs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aioir import cli
from aioir.io import load_image, write_image
from aioir.models import load_model, save_pretrained
from helpers import hinting_filter_bank


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "udair-tiny.safetensors"
    save_pretrained(load_model("udair-tiny"), path)
    return str(path)


@pytest.fixture
def run(model_path, capsys):
    def _run(*argv: str, model: str | None = model_path) -> tuple[int, str]:
        args = ["restore", *argv, "-q"]
        if model is not None:
            args += ["--model", model]
        code = cli.main(args)
        err = capsys.readouterr().err
        return code, err

    return _run


def _rgb(path, w=12, h=10, seed=0):
    rng = np.random.default_rng(seed)
    return write_image(path, rng.random((h, w, 3)).astype(np.float32))


def _failure_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("aioir: failed:")]


# ------------------------------------------------------------------ good inputs
def test_restores_files_and_keeps_the_size(tmp_path, run):
    a = _rgb(tmp_path / "a.png")
    b = tmp_path / "b.jpg"
    Image.new("RGB", (9, 7), (10, 200, 30)).save(b)
    code, err = run(str(a), str(b), "-o", str(tmp_path / "out"))
    assert code == 0, err
    assert "Traceback" not in err
    assert load_image(tmp_path / "out" / "a.png").rgb.shape == (10, 12, 3)
    assert load_image(tmp_path / "out" / "b.png").rgb.shape == (7, 9, 3)


def test_one_input_may_be_written_to_an_image_file(tmp_path, run):
    """``-o fixed.jpg`` for one input writes that file (JPEG, as its suffix says), and its
    comparison beside it; it is not overwritten unless asked; several inputs are a usage error
    (nothing written); an existing folder named like an image stays a folder."""
    a = _rgb(tmp_path / "a.png")
    target = tmp_path / "results" / "fixed.jpg"
    code, err = run(str(a), "-o", str(target), "--compare")
    assert code == 0, err
    with Image.open(target) as im:
        assert (im.format, im.size) == ("JPEG", (12, 10))
    assert load_image(tmp_path / "results" / "fixed_compare.png").rgb.shape[0] == 10
    assert sorted(p.name for p in target.parent.iterdir()) == ["fixed.jpg", "fixed_compare.png"]

    code, err = run(str(a), "-o", str(target))
    assert code == 1 and len(_failure_lines(err)) == 1 and "--overwrite" in err
    assert run(str(a), "-o", str(target), "--overwrite")[0] == 0

    b = _rgb(tmp_path / "b.png", seed=1)
    code, err = run(str(a), str(b), "-o", str(tmp_path / "two.png"))
    assert code == 2 and "Traceback" not in err
    assert err.strip().endswith("two.png: an image file as the output takes one input image, "
                                "not 2; give an output folder")  # fmt: skip
    assert not (tmp_path / "two.png").exists()

    (tmp_path / "folder.png").mkdir()
    assert run(str(a), "-o", str(tmp_path / "folder.png"))[0] == 0
    assert (tmp_path / "folder.png" / "a.png").is_file()


def test_output_folder_defaults_to_restored_in_the_working_directory(tmp_path, run, monkeypatch):
    _rgb(tmp_path / "a.png")
    monkeypatch.chdir(tmp_path)
    code, err = run("a.png")
    assert code == 0, err
    assert load_image(tmp_path / "restored" / "a.png").rgb.shape == (10, 12, 3)


def test_shipped_default_model_restores_without_model_option(tmp_path, run):
    """`aioir restore photo` with no --model uses aioir/weights/default and changes the image."""
    src = _rgb(tmp_path / "a.png", w=40, h=32)
    code, err = run(str(src), "-o", str(tmp_path / "out"), model=None)
    assert code == 0, err
    out = load_image(tmp_path / "out" / "a.png").rgb
    assert out.shape == (32, 40, 3)
    assert not np.array_equal(out, load_image(src).rgb)


def test_explain_prints_the_default_models_choice_per_image(tmp_path, capsys):
    """The default model's filter-bank head says which candidate it chose, one line per image."""
    a, b = _rgb(tmp_path / "a.png", w=40, h=32), _rgb(tmp_path / "b.png", w=24, h=24, seed=1)
    code = cli.main(["restore", str(a), str(b), "-o", str(tmp_path / "out"), "--explain", "-q"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert [line.split(": filter bank: ")[0] for line in lines] == [str(a), str(b)]
    choices = [line.split(": filter bank: ")[1].split(" (classifier: ") for line in lines]
    assert all(len(parts) == 2 for parts in choices)  # the gate reads a classifier: its verdict
    names = {name.rsplit(" ", 1)[0] for choice, _ in choices for name in choice.split(", ")}
    experts = {"noise expert", "dark channel prior", "haze expert", "camera-shake expert"}
    assert names <= {"network output", "input"} | experts | {f"filter {k}" for k in range(1, 13)}


def test_the_default_model_can_be_told_the_task(tmp_path, capsys):
    """--task: the default model restores the image as that degradation (its gate routed to
    that class, not the classifier's guess) and says so; a task it does not know exits 2."""
    a = _rgb(tmp_path / "a.png", w=40, h=32)
    argv = ["restore", str(a), "-o", str(tmp_path / "out"), "--explain", "-q", "--overwrite"]
    assert cli.main([*argv, "--task", "low-light"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith(f"{a}: filter bank: ") and line.endswith(" (told: lowlight)")
    told = load_image(tmp_path / "out" / "a.png").rgb
    assert cli.main([*argv, "--task", "haze"]) == 0
    assert capsys.readouterr().out.rstrip().endswith(" (told: haze)")
    assert not np.array_equal(told, load_image(tmp_path / "out" / "a.png").rgb)
    assert cli.main([*argv, "--task", "snow"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert err.strip().endswith("knows the tasks noise, noise+jpeg, rain, haze, lowlight, blur, "
                                "underwater, clean; not 'snow'")  # fmt: skip


def test_one_pixel_16_bit_gray_and_alpha(tmp_path, run):
    rng = np.random.default_rng(1)
    write_image(tmp_path / "one.png", np.full((1, 1, 3), 0.5, np.float32))
    write_image(tmp_path / "deep.png", rng.random((9, 11, 3)), bit_depth=16)
    write_image(tmp_path / "gray.png", rng.random((9, 11)), grayscale=True)
    alpha = rng.random((9, 11)).astype(np.float32)
    write_image(tmp_path / "rgba.png", rng.random((9, 11, 3)), alpha=alpha)
    out = tmp_path / "out"
    code, err = run(str(tmp_path), "-o", str(out))
    assert code == 0, err
    assert load_image(out / "one.png").rgb.shape == (1, 1, 3)
    deep = load_image(out / "deep.png")
    assert deep.bit_depth == 16 and not deep.grayscale
    assert load_image(out / "gray.png").grayscale
    assert Image.open(out / "gray.png").mode == "L"
    rgba = load_image(out / "rgba.png")
    np.testing.assert_array_equal(rgba.alpha, load_image(tmp_path / "rgba.png").alpha)


def test_cmyk_and_exif_rotated_jpeg(tmp_path, run):
    Image.new("CMYK", (8, 6), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")
    landscape = Image.new("RGB", (12, 6), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise for display
    landscape.save(tmp_path / "rotated.jpg", exif=exif)
    out = tmp_path / "out"
    code, err = run(str(tmp_path / "*.jpg"), "-o", str(out))
    assert code == 0, err
    assert Image.open(out / "cmyk.png").mode == "RGB"
    assert Image.open(out / "rotated.png").size == (6, 12)  # displayed orientation (W×H)


def test_compare_output(tmp_path, run):
    _rgb(tmp_path / "a.png", w=12, h=10)
    out = tmp_path / "out"
    code, err = run(str(tmp_path / "a.png"), "-o", str(out), "--compare")
    assert code == 0, err
    side = Image.open(out / "a_compare.png")
    assert side.mode == "RGB" and side.size == (2 * 12 + 4, 10)
    np.testing.assert_array_equal(
        np.asarray(side)[:, :12], np.asarray(Image.open(tmp_path / "a.png").convert("RGB"))
    )


def test_glob_patterns_and_recursive_layout(tmp_path, run):
    src = tmp_path / "src"
    _rgb(src / "top.png")
    _rgb(src / "rain" / "001.png", seed=1)
    _rgb(src / "noise" / "001.png", seed=2)
    (src / "notes.txt").write_text("not an image")
    out = tmp_path / "flat"
    code, err = run(str(src), "-o", str(out))
    assert code == 0, err
    assert sorted(p.name for p in out.rglob("*.png")) == ["top.png"]
    out = tmp_path / "tree"
    code, err = run(str(src), "-o", str(out), "--recursive")
    assert code == 0, err
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.png")) == [
        "noise/001.png",
        "rain/001.png",
        "top.png",
    ]
    out = tmp_path / "globbed"
    code, err = run(str(src / "**" / "0*.png"), "-o", str(out))
    assert code == 1  # two inputs named 001: the second fails, the first is written
    (line,) = _failure_lines(err)
    assert "001.png" in line and "already used by" in line
    assert (out / "001.png").is_file()


# ------------------------------------------------------------------ bad inputs
def test_bad_files_fail_one_line_each_and_good_ones_are_written(tmp_path, run):
    _rgb(tmp_path / "good.png")
    (tmp_path / "empty.png").write_bytes(b"")
    _rgb(tmp_path / "whole.png", w=32, h=32, seed=5)
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "whole.png").unlink()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.jpg").write_text("this is not a JPEG")
    out = tmp_path / "out"
    code, err = run(str(tmp_path), "-o", str(out))
    assert code == 1
    assert "Traceback" not in err
    lines = _failure_lines(err)
    assert len(lines) == 3
    for name, reason in [("empty.png", "empty"), ("truncated.png", "truncated"), ("text.jpg", "")]:
        (line,) = [line for line in lines if name in line]
        assert reason in line
    assert sorted(p.name for p in out.iterdir()) == ["good.png"]  # no partial outputs


def test_usage_errors_exit_2(tmp_path, run):
    (tmp_path / "empty_folder").mkdir()
    (tmp_path / "empty_folder" / "readme.txt").write_text("x")
    out = str(tmp_path / "out")
    for argv in (
        [str(tmp_path / "empty_folder")],
        [str(tmp_path / "missing.png")],
        [str(tmp_path / "*.png")],
    ):
        code, err = run(*argv, "-o", out)
        assert code == 2, argv
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    _rgb(tmp_path / "a.png")
    with pytest.raises(SystemExit) as exc:
        run(str(tmp_path / "a.png"), "-o", out, "--tile", "-5")
    assert exc.value.code == 2
    (tmp_path / "file_not_dir").write_text("x")
    code, err = run(str(tmp_path / "a.png"), "-o", str(tmp_path / "file_not_dir"))
    assert code == 2 and "not a folder" in err


def test_existing_output_is_untouched_without_overwrite(tmp_path, run):
    _rgb(tmp_path / "a.png")
    _rgb(tmp_path / "b.png", seed=1)
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"precious")
    code, err = run(str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(out))
    assert code == 1
    (line,) = _failure_lines(err)
    assert "a.png" in line and "exists" in line and "--overwrite" in line
    assert (out / "a.png").read_bytes() == b"precious"
    assert load_image(out / "b.png").rgb.shape == (10, 12, 3)
    code, err = run(str(tmp_path / "a.png"), "-o", str(out), "--overwrite")
    assert code == 0, err
    assert load_image(out / "a.png").rgb.shape == (10, 12, 3)


def test_output_folder_equal_to_input_folder_never_overwrites_inputs(tmp_path, run):
    src = _rgb(tmp_path / "a.png")
    before = src.read_bytes()
    code, err = run(str(src), "-o", str(tmp_path), "--overwrite")
    assert code == 1 and "is the input file" in err
    assert src.read_bytes() == before


# ------------------------------------------------------------------ model options
def test_default_model_not_shipped_is_a_usage_error(tmp_path, run, monkeypatch):
    monkeypatch.setattr("aioir.restore.resolve.shipped_weights", lambda name: None)
    _rgb(tmp_path / "a.png")
    code, err = run(str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), model=None)
    assert code == 2
    assert err.strip() == (
        "aioir restore: error: no default model is shipped yet; pass --model NAME_OR_PATH"
    )
    assert not (tmp_path / "out").exists()


def test_untrained_name_is_refused_unless_allowed(tmp_path, run, monkeypatch):
    monkeypatch.setattr("aioir.restore.resolve.shipped_weights", lambda name: None)
    _rgb(tmp_path / "a.png")
    code, err = run(str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), model="restormer-tiny")
    assert code == 2 and "no trained weights" in err
    code, err = run(
        str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--allow-untrained",
        model="restormer-tiny",
    )  # fmt: skip
    assert code == 0, err


def test_tta_without_adapter_is_a_clear_error(tmp_path, run):
    _rgb(tmp_path / "a.png")
    restormer = tmp_path / "restormer-tiny.safetensors"
    save_pretrained(load_model("restormer-tiny"), restormer)
    code, err = run(str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--tta",
                    model=str(restormer))  # fmt: skip
    assert code == 2
    assert f"test-time adaptation is not available for model {restormer}" in err
    assert err.count("\n") == 1


def test_tta_without_source_bank_is_a_clear_error(tmp_path, run):
    _rgb(tmp_path / "a.png")
    code, err = run(str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--tta")
    assert code == 2
    assert "source bank" in err and err.count("\n") == 1


def test_tiling_options(tmp_path, run):
    _rgb(tmp_path / "a.png", w=40, h=30)
    out = tmp_path / "out"
    code, err = run(
        str(tmp_path / "a.png"), "-o", str(out), "--tile", "16", "--tile-overlap", "4",
        "--device", "cpu", "--precision", "fp32",
    )  # fmt: skip
    assert code == 0, err
    assert load_image(out / "a.png").rgb.shape == (30, 40, 3)


def test_a_tile_below_twice_the_overlap_is_a_usage_error(tmp_path, run):
    """Issue 22, bug 2: ``--tile 8`` ran 47,124 forwards instead of being refused."""
    _rgb(tmp_path / "a.png", w=40, h=30)
    code, err = run(str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--tile", "8")
    assert code == 2
    assert "smallest tile is 64" in err and err.count("\n") == 1
    assert not (tmp_path / "out" / "a.png").exists()


def test_threads_option_sets_the_torch_threads(tmp_path, run):
    import torch

    before = torch.get_num_threads()
    _rgb(tmp_path / "a.png")
    try:
        code, err = run(str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--threads", "1")
        assert code == 0, err
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(SystemExit) as exc:
        run(str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--threads", "0")
    assert exc.value.code == 2


def test_self_ensemble_option_changes_the_output(tmp_path, run):
    src = _rgb(tmp_path / "a.png", w=20, h=14)
    assert run(str(src), "-o", str(tmp_path / "plain"))[0] == 0
    code, err = run(str(src), "-o", str(tmp_path / "ens"), "--self-ensemble")
    assert code == 0, err
    plain, ens = (load_image(tmp_path / d / "a.png").rgb for d in ("plain", "ens"))
    assert ens.shape == plain.shape == (14, 20, 3)
    assert not np.array_equal(ens, plain)  # an untrained UDAIR is not flip-equivariant


def test_strength_blends_toward_the_input(tmp_path, run, capsys):
    src = _rgb(tmp_path / "a.png", w=20, h=14)
    outs = {}
    for strength in ("0", "0.5", "1"):
        code, err = run(str(src), "-o", str(tmp_path / strength), "--strength", strength)
        assert code == 0, err
        outs[strength] = load_image(tmp_path / strength / "a.png").rgb
    full = load_image(src).rgb
    assert np.abs(outs["0"] - full).max() <= 1 / 255  # the input, through 8-bit PNGs
    assert not np.array_equal(outs["1"], full)
    np.testing.assert_allclose(outs["0.5"], (full + outs["1"]) / 2, atol=1.5 / 255)
    for bad in ("1.5", "-0.2", "strong"):
        with pytest.raises(SystemExit) as exc:
            run(str(src), "-o", str(tmp_path / "bad"), "--strength", bad)
        assert exc.value.code == 2
        assert "--strength" in capsys.readouterr().err


def test_unexpected_errors_are_one_line_unless_debug(tmp_path, run, monkeypatch):
    from aioir.restore.api import Restorer

    def boom(self, data):
        raise RuntimeError("kaboom\nsecond line")

    monkeypatch.setattr(Restorer, "restore_data", boom)
    _rgb(tmp_path / "a.png")
    code, err = run(str(tmp_path / "a.png"), "-o", str(tmp_path / "out"))
    assert code == 1
    (line,) = _failure_lines(err)
    assert "a.png" in line and "RuntimeError: kaboom second line" in line
    assert "Traceback" not in err
    code, err = run(str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--debug")
    assert code == 1 and "Traceback" in err


def test_summary_line_without_quiet(tmp_path, model_path, capsys):
    _rgb(tmp_path / "a.png")
    code = cli.main(["restore", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"),
                     "--model", model_path])  # fmt: skip
    assert code == 0
    assert "restored 1 of 1 images" in capsys.readouterr().err


def test_help_mentions_exit_status(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["restore", "--help"])
    assert exc.value.code == 0
    assert "exit status" in capsys.readouterr().out


# ------------------------------------------------------------------ issue 22: 4, 5
def test_unwritable_output_folder_is_one_error_before_any_image(tmp_path, run, monkeypatch):
    """A folder that cannot be written is found before the model loads, not after every image
    was restored (issue 22, 4)."""
    import tempfile

    from aioir.restore.api import Restorer

    restored = []
    monkeypatch.setattr(Restorer, "restore_file", lambda self, *a, **k: restored.append(a))
    _rgb(tmp_path / "a.png")
    _rgb(tmp_path / "b.png", seed=1)
    (tmp_path / "file").write_text("x")
    code, err = run(str(tmp_path / "a.png"), "-o", str(tmp_path / "file" / "out"))
    assert code == 2 and restored == []
    assert err == (
        f"aioir restore: error: {tmp_path / 'file' / 'out'}: cannot create the output folder "
        f"({tmp_path / 'file'} is a file)\n"
    )
    locked = tmp_path / "locked"
    locked.mkdir()
    real = tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):  # a read-only folder, even for root
        if Path(dir) == locked:
            raise PermissionError(13, "Permission denied")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    code, err = run(str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(locked))
    assert code == 2 and restored == []
    assert err == (
        f"aioir restore: error: {locked}: cannot write into this output folder "
        "(Permission denied)\n"
    )
    code, err = run(str(tmp_path / "a.png"), "-o", str(locked / "new" / "deeper"))
    assert code == 2 and restored == [] and "cannot write into this output folder" in err


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes anyway")
def test_read_only_output_folder_for_real(tmp_path, run):
    _rgb(tmp_path / "a.png")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        code, err = run(str(tmp_path / "a.png"), "-o", str(locked))
    finally:
        locked.chmod(0o755)
    assert code == 2 and "cannot write into this output folder" in err


def test_existing_output_names_the_input_and_the_cli_option(tmp_path, run, monkeypatch):
    """``a.png`` → ``restored/a.png``: the line names the input first (it used to name only the
    output, whose path contains the input's) and says --overwrite (issue 22, 5)."""
    monkeypatch.chdir(tmp_path)
    _rgb(tmp_path / "a.png")
    Path("restored").mkdir()
    Path("restored/a.png").write_bytes(b"precious")
    code, err = run("a.png")
    assert code == 1
    (line,) = _failure_lines(err)
    assert line == (
        "aioir: failed: a.png: output restored/a.png exists; pass --overwrite to replace it "
        "(or --skip-existing to leave it)"
    )
    assert Path("restored/a.png").read_bytes() == b"precious"


def test_output_written_meanwhile_is_reported_in_cli_words(tmp_path, run, monkeypatch):
    from aioir.restore.api import Restorer

    original = Restorer.restore_data

    def second_run_wins(self, data):  # another process writes the same output meanwhile
        (tmp_path / "out" / "a.png").write_bytes(b"theirs")
        return original(self, data)

    monkeypatch.setattr(Restorer, "restore_data", second_run_wins)
    src = _rgb(tmp_path / "a.png")
    (tmp_path / "out").mkdir()
    code, err = run(str(src), "-o", str(tmp_path / "out"))
    assert code == 1
    (line,) = _failure_lines(err)
    assert line.startswith(f"aioir: failed: {src}: ") and "overwrite=True" not in line
    assert line.endswith("exists; pass --overwrite to replace it")
    assert (tmp_path / "out" / "a.png").read_bytes() == b"theirs"


def test_skip_existing_resumes_without_failures(tmp_path, model_path, capsys):
    for i, name in enumerate(("a.png", "b.png", "c.png")):
        _rgb(tmp_path / "in" / name, seed=i)
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"from the interrupted run")
    argv = ["restore", str(tmp_path / "in"), "-o", str(out), "--model", model_path]
    assert cli.main([*argv, "--skip-existing"]) == 0
    err = capsys.readouterr().err
    assert "failed" not in err
    assert "restored 2 of 2 images" in err and "skipped 1 whose output exists" in err
    assert (out / "a.png").read_bytes() == b"from the interrupted run"
    assert load_image(out / "c.png").rgb.shape == (10, 12, 3)
    assert cli.main([*argv, "--skip-existing", "-q"]) == 0
    assert capsys.readouterr().err == ""
    assert cli.main([*argv, "--skip-existing", "--overwrite"]) == 2
    assert "exclude each other" in capsys.readouterr().err


def test_an_image_the_model_held_back_on_gets_a_hint_naming_the_task(tmp_path, capsys):
    """A model that read haze and returned the image as it came (its told choice differs)
    says so on stderr, with the --task that restores it as haze; not with -q, nor when told."""
    save_pretrained(hinting_filter_bank(), tmp_path / "hinting")
    a = _rgb(tmp_path / "a.png", w=40, h=32)
    argv = ["restore", str(a), "-o", str(tmp_path / "out"), "--model", str(tmp_path / "hinting")]
    assert cli.main(argv) == 0
    err = capsys.readouterr().err
    assert (f"aioir restore: {a}: looks like haze (0.95) but was restored cautiously; if it is "
            "haze, --task haze restores it as such") in err  # fmt: skip
    for extra in (["-q"], ["--task", "haze"]):
        assert cli.main([*argv, "--overwrite", *extra]) == 0
        assert "looks like" not in capsys.readouterr().err


def test_follow_hint_writes_the_hinted_restoration(tmp_path, capsys):
    """``--follow-hint``: the image the model hinted on is written as ``--task haze`` writes it,
    and stderr says so; with ``--task`` it is a one-line usage error."""
    save_pretrained(hinting_filter_bank(), tmp_path / "hinting")
    a = _rgb(tmp_path / "a.png", w=40, h=32)
    argv = ["restore", str(a), "--model", str(tmp_path / "hinting")]
    assert cli.main([*argv, "-o", str(tmp_path / "told"), "--task", "haze"]) == 0
    assert cli.main([*argv, "-o", str(tmp_path / "blind")]) == 0
    capsys.readouterr()
    assert cli.main([*argv, "-o", str(tmp_path / "followed"), "--follow-hint"]) == 0
    err = capsys.readouterr().err
    assert f"aioir restore: {a}: looks like haze (0.95): restored as haze (--follow-hint)" in err
    assert "cautiously" not in err
    followed = load_image(tmp_path / "followed" / "a.png").rgb
    assert np.array_equal(followed, load_image(tmp_path / "told" / "a.png").rgb)
    assert not np.array_equal(followed, load_image(tmp_path / "blind" / "a.png").rgb)
    folder = tmp_path / "folder"
    for seed, name in enumerate(("b.png", "c.png")):
        _rgb(folder / name, w=40, h=32, seed=seed)
    folder_argv = ["restore", str(folder), "--model", str(tmp_path / "hinting")]
    assert cli.main([*folder_argv, "-o", str(tmp_path / "f1")]) == 0
    assert ("restored 2 of 2 images into " + str(tmp_path / "f1") + "; 2 photos (haze 2) "
            "held back on: see the hints above (--task)") in capsys.readouterr().err  # fmt: skip
    assert cli.main([*folder_argv, "-o", str(tmp_path / "f2"), "--follow-hint"]) == 0
    assert "; 2 photos (haze 2) restored again as their hint\n" in capsys.readouterr().err
    # a hint the model is not sure of is printed, not followed
    from aioir.models.filter_bank import FOLLOW_MIN_PROBABILITY

    save_pretrained(hinting_filter_bank(haze=FOLLOW_MIN_PROBABILITY - 0.1), tmp_path / "shy")
    shy = ["restore", str(a), "--model", str(tmp_path / "shy"), "--follow-hint"]
    assert cli.main([*shy, "-o", str(tmp_path / "shy-out")]) == 0
    assert "but was restored cautiously; if it is haze" in capsys.readouterr().err
    assert cli.main([*argv, "-o", str(tmp_path / "x"), "--follow-hint", "--task", "haze"]) == 2
    err = capsys.readouterr().err
    assert "error: the task is given: there is no hint to follow" in err
    assert "Traceback" not in err and not (tmp_path / "x").exists()
