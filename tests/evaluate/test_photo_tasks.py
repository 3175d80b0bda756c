"""``photo-tasks:DIR``: columns, case counts, seeded inputs, σ in meta, pinned degradations."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from aioir.errors import ConfigError, DatasetLayoutError
from aioir.evaluate.benchmarks import (
    PHOTO_TASK_COLUMNS,
    PhotoTasksBenchmark,
    get_benchmark,
    list_benchmarks,
    noisy_input,
)
from aioir.evaluate.methods import ClassicalModel, load_method
from aioir.evaluate.runner import evaluate
from aioir.io import write_image

COLUMNS = [
    "s15",
    "s25",
    "s50",
    "camera-noise",
    "haze",
    "lowlight",
    "rain",
    "underwater",
    "motion-blur",
    "clean",
]
CROP = 24


@pytest.fixture
def corpus(tmp_path: Path, crops) -> Path:
    """A tiny photo corpus: 3 test photos (one smaller than the crop) and 2 train photos."""
    root = tmp_path / "corpus"
    rows = []
    for i, (split, h, w) in enumerate(
        [("test", 40, 48), ("train", 40, 48), ("test", 36, 44), ("train", 40, 40), ("test", 20, 22)]
    ):
        name = f"p{i}.png"
        write_image(root / name, crops(60 + i, h, w))
        rows.append([name, "pkg", "1", name, "CC0", "0" * 64, w, h, split, w, h])
    header = "file package version path_in_package license sha256 width height split"
    with (root / "SOURCES.tsv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow([*header.split(), "orig_width", "orig_height"])
        writer.writerows(rows)
    return root


def _bench(corpus: Path, columns: str = "") -> PhotoTasksBenchmark:
    bench = get_benchmark(f"photo-tasks:{corpus}" + (f":{columns}" if columns else ""), crop=CROP)
    assert isinstance(bench, PhotoTasksBenchmark)
    return bench


def test_columns_are_the_goal_rows_with_two_crops_per_test_photo(corpus):
    assert [c.key for c in PHOTO_TASK_COLUMNS] == COLUMNS
    assert "photo-tasks:DIR[:COLUMNS]" in list_benchmarks()
    bench = _bench(corpus)
    assert bench.name == f"photo-tasks:{corpus}" and bench.crops_per_photo == 2
    cols = bench.columns(None)
    assert [c.key for c in cols] == COLUMNS
    assert [c.task for c in cols] == [
        "noise",
        "noise",
        "noise",
        "noise",
        "haze",
        "lowlight",
        "rain",
        "underwater",
        "blur",
        "clean",
    ]
    assert all(len(c) == 3 * 2 for c in cols)  # the 3 test photos only, 2 crops each
    names = [cols[0][i].name for i in range(6)]
    # crop-major: the first three cases are crop 0 of every photo
    assert names == ["p0@0.png", "p2@0.png", "p4@0.png", "p0@1.png", "p2@1.png", "p4@1.png"]
    cases = [c[4] for c in cols]  # one case per column (rain takes ~0.5 s a case)
    for case in cases:
        assert case.input.shape == case.target.shape == (3, CROP, CROP)
        assert float(case.input.min()) >= 0.0 and float(case.input.max()) <= 1.0
        assert case.name == "p2@1.png" and case.meta["crop"] == 1
    # every column reads the same clean crops; crops 0 and 1 of a photo differ
    assert all(torch.equal(c.target, cases[0].target) for c in cases)
    assert not torch.equal(cols[0][1].target, cases[0].target)
    assert torch.equal(cases[-1].input, cases[-1].target)  # clean: input = target
    assert all(not torch.equal(c.input, c.target) for c in cases[:-1])
    assert get_benchmark(f"photo-tasks:{corpus}").crop == 256  # the default crop side


def test_column_selection_and_bad_specs(corpus):
    bench = _bench(corpus, "haze,s25")
    assert bench.name == f"photo-tasks:{corpus}:haze,s25"
    assert [c.key for c in bench.columns(None)] == ["haze", "s25"]
    for spec in (f"photo-tasks:{corpus}:fog", f"photo-tasks:{corpus}:s15,s30"):
        with pytest.raises(ConfigError, match="unknown columns") as exc:
            get_benchmark(spec)
        assert "\n" not in str(exc.value)
    with pytest.raises(ConfigError, match="at least 8"):
        get_benchmark(f"photo-tasks:{corpus}", crop=4)
    with pytest.raises(DatasetLayoutError, match="does not exist"):
        get_benchmark(f"photo-tasks:{corpus / 'missing'}").columns(None)


def test_inputs_are_deterministic_and_independent_of_the_method(corpus):
    def inputs(bench: PhotoTasksBenchmark) -> dict[tuple[str, str], torch.Tensor]:
        return {(c.key, c[i].name): c[i].input for c in bench.columns(None) for i in range(len(c))}

    some = "s15,camera-noise,lowlight,motion-blur,clean"
    first, second = inputs(_bench(corpus, some)), inputs(_bench(corpus, some))
    assert len(first) == 5 * 6 and first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    # a column's inputs do not depend on which other columns are selected, nor on their order
    alone = inputs(_bench(corpus, "motion-blur,s15"))
    assert len(alone) == 12 and all(torch.equal(v, first[k]) for k, v in alone.items())
    # the runner hands every method the same inputs: record what two methods were given
    seen: dict[str, list[torch.Tensor]] = {}

    class Recorder(ClassicalModel):
        def restore(self, image, case):
            seen.setdefault(self.method, []).append(image.clone())
            return super().restore(image, case)

    for method in ("identity", "adaptive-gamma"):
        evaluate(Recorder(method), _bench(corpus, "lowlight,clean"), progress=False)
    assert len(seen["identity"]) == len(seen["adaptive-gamma"]) == 12
    assert all(torch.equal(a, b) for a, b in zip(seen["identity"], seen["adaptive-gamma"]))


def test_gaussian_columns_carry_sigma_and_follow_the_8bit_protocol(corpus):
    cols = {c.key: c for c in _bench(corpus, "s15,s25,s50,camera-noise").columns(None)}
    for key, sigma in (("s15", 15.0), ("s25", 25.0), ("s50", 50.0)):
        case = cols[key][2]
        assert case.meta["sigma"] == sigma and case.task == "noise"
        assert torch.equal(case.input, noisy_input(case.target, case.name, sigma, "round"))
        levels = case.input * 255.0
        assert torch.equal(levels, levels.round())  # 8-bit
        residual = (case.input - case.target).std().item() * 255.0
        assert residual == pytest.approx(sigma, rel=0.35)  # clipping shrinks it a little
    camera = cols["camera-noise"][0]
    assert "sigma" not in camera.meta and camera.meta["degradations"] == ["camera_noise", "jpeg"]
    # classical:auto gives CBM3D the true σ on the Gaussian columns only
    model = ClassicalModel("auto")
    assert model._pick("noise")[0] == "cbm3d"


def test_motion_blur_column_uses_only_motion_blur(corpus, monkeypatch):
    from aioir.degradations import degradation_class

    bench = _bench(corpus, "motion-blur")
    assert bench.specs()[0].degradations == (("motion_blur", "moderate"),)
    applied: list[str] = []
    for name in ("motion_blur", "gaussian_blur", "defocus_blur"):
        cls = degradation_class(name)
        original = cls.apply

        def spy(self, images, generator, original=original, name=name):
            applied.append(name)
            return original(self, images, generator)

        monkeypatch.setattr(cls, "apply", spy)
    col = bench.columns(None)[0]
    for i in range(len(col)):
        assert col[i].meta["degradations"] == ["motion_blur"]
    assert applied == ["motion_blur"] * len(col)


def test_classical_auto_on_photo_tasks_runs_end_to_end(corpus):
    bench = _bench(corpus, "haze,lowlight,clean")
    result = evaluate(load_method("classical:auto"), bench, protocol="clean", progress=False)
    by_key = {c.key: c for c in result.columns}
    assert by_key["clean"].psnr == float("inf") and by_key["clean"].n == 6
    assert "LIME" in by_key["lowlight"].notes[0] and "dark channel" in by_key["haze"].notes[0]
    gamma = evaluate(ClassicalModel("adaptive-gamma"), _bench(corpus, "lowlight"), progress=False)
    assert gamma.columns[0].psnr > gamma.columns[0].input_psnr
    assert any("photo-tasks inputs" in n for n in result.notes)


def test_whole_photos_are_one_case_each_resized_and_seeded(corpus):
    """``whole_side``: every test photo whole, long side resized (never up), one case per photo."""
    bench = PhotoTasksBenchmark(corpus, keys=("s25", "haze", "clean"), whole_side=32)
    columns = bench.columns(None)
    assert [len(c) for c in columns] == [3, 3, 3]  # the 3 test photos, no second crop
    shapes = [tuple(columns[2][i].target.shape) for i in range(3)]
    assert shapes == [(3, 27, 32), (3, 26, 32), (3, 20, 22)]  # 40×48, 36×44 shrunk; 20×22 kept
    noisy, hazy = columns[0][1], columns[1][1]
    assert noisy.input.shape == noisy.target.shape and noisy.meta["sigma"] == 25.0
    assert not torch.equal(hazy.input, hazy.target)
    assert torch.equal(hazy.input, bench.columns(None)[1][1].input)  # seeded
    assert torch.equal(columns[2][0].input, columns[2][0].target)  # clean: input = target
    assert columns[2][0].meta["box"] == [0, 0, 27, 32]  # the whole photo: top, left, h, w
    assert "whole, long side resized to 32 px" in bench.notes()[0]
    with pytest.raises(ConfigError, match="at least 8 px"):
        PhotoTasksBenchmark(corpus, whole_side=4)


def test_whole_side_from_the_command_line(corpus, tmp_path, capsys):
    """``aioir evaluate --whole-side N`` scores photo-tasks photos whole; other benchmarks
    refuse it in one line."""
    from aioir.cli import main

    bench = get_benchmark(f"photo-tasks:{corpus}:clean", whole_side=32)
    assert isinstance(bench, PhotoTasksBenchmark) and bench.whole_side == 32
    assert "whole, long side 32 px" in bench.description
    with pytest.raises(ConfigError, match="--whole-side applies to photo-tasks"):
        get_benchmark(f"synthetic:{corpus}", whole_side=32)
    out = tmp_path / "whole.json"
    argv = ["evaluate", "--model", "classical:auto", "--benchmark", f"photo-tasks:{corpus}:haze",
            "--whole-side", "32", "--json", str(out), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    images = json.loads(out.read_text())["results"][0]["images"]
    assert sorted(i["name"] for i in images) == ["p0@32px.png", "p2@32px.png", "p4@32px.png"]
    assert main(["evaluate", "--model", "classical:auto", "--benchmark", f"synthetic:{corpus}",
                 "--whole-side", "32"]) != 0  # fmt: skip
    assert "--whole-side applies to photo-tasks" in capsys.readouterr().err


def test_a_rendering_makes_every_clean_photo_pale_before_degrading(corpus):
    """``rendering="pale"``: the targets are the pale photos, degraded as the plain ones are."""
    plain = PhotoTasksBenchmark(corpus, keys=("haze", "clean"), whole_side=32)
    pale = PhotoTasksBenchmark(corpus, keys=("haze", "clean"), whole_side=32, rendering="pale")
    plain_clean = plain.columns(None)[1]
    haze, clean = pale.columns(None)
    for i in range(len(clean)):
        target = clean[i].target
        assert torch.equal(clean[i].input, target) and clean[i].meta["rendering"] == "pale"
        assert abs(float(target.mean()) - 0.67) < 0.02
        assert float((target.amax(0) - target.amin(0)).mean()) < 0.1  # almost grey
        assert torch.equal(haze[i].target, target) and not torch.equal(haze[i].input, target)
        assert not torch.equal(target, plain_clean[i].target)
    assert "rendered 'pale' first" in pale.notes()[-1]
    with pytest.raises(ConfigError, match="unknown photo rendering"):
        PhotoTasksBenchmark(corpus, rendering="foggy")


def test_the_defocus_rendering_from_the_command_line(corpus, tmp_path, capsys):
    """``aioir evaluate --rendering defocus``: the targets are the photos out of focus (smoother
    than the plain ones); other benchmarks and unknown names refuse it in one line."""
    from aioir.cli import main

    plain = get_benchmark(f"photo-tasks:{corpus}:clean", whole_side=32).columns(None)[0]
    bench = get_benchmark(f"photo-tasks:{corpus}:clean", whole_side=32, rendering="defocus")
    assert isinstance(bench, PhotoTasksBenchmark) and bench.rendering == "defocus"
    column = bench.columns(None)[0]
    for i in range(len(column)):
        sharp, soft = plain[i].target, column[i].target
        assert torch.equal(column[i].input, soft) and column[i].meta["rendering"] == "defocus"
        assert float(soft.diff(dim=-1).abs().mean()) < float(sharp.diff(dim=-1).abs().mean())
    with pytest.raises(ConfigError, match="--rendering applies to photo-tasks"):
        get_benchmark(f"synthetic:{corpus}", rendering="defocus")
    out = tmp_path / "defocus.json"
    argv = ["evaluate", "--model", "classical:auto", "--benchmark", f"photo-tasks:{corpus}:clean",
            "--whole-side", "32", "--rendering", "defocus", "--json", str(out), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    notes = json.loads(out.read_text())["results"][0]
    assert "rendered 'defocus' first" in json.dumps(notes)
    assert main(["evaluate", "--model", "classical:auto", "--benchmark",
                 f"photo-tasks:{corpus}:clean", "--rendering", "bokeh"]) != 0  # fmt: skip
    assert "unknown photo rendering 'bokeh'" in capsys.readouterr().err


def test_the_dark_rendering_scores_against_the_photos_rendered_dim(corpus):
    """``--rendering dark``: every clean target is the photo rendered dark (mean 0.12)."""
    bench = get_benchmark(f"photo-tasks:{corpus}:clean,lowlight", whole_side=32, rendering="dark")
    clean, lowlight = bench.columns(None)
    for i in range(len(clean)):
        target = clean[i].target
        assert abs(float(target.mean()) - 0.12) < 0.01  # 8-bit rounding and clipping
        assert torch.equal(clean[i].input, target) and torch.equal(lowlight[i].target, target)
        assert float(lowlight[i].input.mean()) < float(target.mean())  # darker still


def test_the_high_key_rendering_scores_against_the_photos_rendered_bright(corpus):
    """``--rendering high-key``: every clean target is the photo rendered bright and near-white."""
    plain = get_benchmark(f"photo-tasks:{corpus}:clean", whole_side=32)
    bench = get_benchmark(f"photo-tasks:{corpus}:clean,haze", whole_side=32, rendering="high-key")
    (before,) = plain.columns(None)
    clean, haze = bench.columns(None)
    for i in range(len(clean)):
        target = clean[i].target
        assert float(target.mean()) > float(before[i].target.mean()) + 0.1
        assert torch.equal(clean[i].input, target) and torch.equal(haze[i].target, target)


def test_the_low_key_rendering_scores_against_the_photos_rendered_dark(corpus):
    """``--rendering low-key``: every clean target is the photo with its mid-tones sunk."""
    plain = get_benchmark(f"photo-tasks:{corpus}:clean", whole_side=32)
    bench = get_benchmark(
        f"photo-tasks:{corpus}:clean,lowlight", whole_side=32, rendering="low-key"
    )
    (before,) = plain.columns(None)
    clean, lowlight = bench.columns(None)
    for i in range(len(clean)):
        target = clean[i].target
        assert float(target.mean()) < float(before[i].target.mean()) - 0.05
        assert torch.equal(clean[i].input, target) and torch.equal(lowlight[i].target, target)


def test_the_grey_rendering_makes_target_and_degraded_input_black_and_white(corpus):
    """``--rendering grey``: a greyscale file holds its noise grey, so the input is rendered too."""
    bench = get_benchmark(f"photo-tasks:{corpus}:s25,clean", whole_side=32, rendering="grey")
    noisy, clean = bench.columns(None)
    for i in range(len(clean)):
        for case in (noisy[i], clean[i]):
            for image in (case.input, case.target):
                assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])
        assert torch.equal(noisy[i].target, clean[i].target)
        assert torch.equal(clean[i].input, clean[i].target)  # the clean column: exactly
        assert float((noisy[i].input - noisy[i].target).abs().mean()) > 0.01  # noise kept
    assert "and every degraded input after" in bench.notes()[-1]
