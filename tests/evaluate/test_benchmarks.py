"""Benchmarks: registry and parsing, fixture trees of every layout, counts, seeded inputs."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from aioir.data import folders
from aioir.degradations import make_generator, seed_from_name
from aioir.degradations.noise import GaussianNoise
from aioir.errors import ConfigError, DatasetLayoutError
from aioir.evaluate.benchmarks import (
    BENCHMARKS,
    CDD11_LIKE_COMBOS,
    COMPOSITE_CROP,
    DEFAULT_SYNTHETIC_TASKS,
    CompositeBenchmark,
    PairedBenchmark,
    SyntheticBenchmark,
    get_benchmark,
    noisy_input,
)

THREE_TASK_FIXTURE = {"sots": 2, "rain100l": 2, "bsd68-s15": 3, "bsd68-s25": 3, "bsd68-s50": 3}
FIVE_TASK_FIXTURE = {"sots": 2, "rain100l": 2, "bsd68-s25": 3, "gopro": 2, "lol": 2}


def test_registered_benchmarks_have_the_protocol_counts():
    three, five = BENCHMARKS["promptir-3task"], BENCHMARKS["promptir-5task"]
    assert three.expected_total == 804 == sum(s.expected for s in three.specs)
    assert five.expected_total == 1794 == sum(s.expected for s in five.specs)
    assert [s.title for s in three.specs] == ["SOTS", "Rain100L", "σ15", "σ25", "σ50"]
    assert [s.key for s in five.specs] == ["sots", "rain100l", "bsd68-s25", "gopro", "lol"]
    assert BENCHMARKS["udair-source"].expected_total == 336 + 561 + 448 + 200 + 190
    assert three.default_protocol == "promptir"
    assert BENCHMARKS["udair-target"].default_protocol == "udair"


def test_parsing_of_parametrised_benchmarks(tmp_path):
    p = get_benchmark(f"paired:{tmp_path}:rain")
    assert isinstance(p, PairedBenchmark) and p.task == "rain" and p.folder == tmp_path
    s = get_benchmark(f"synthetic:{tmp_path}")
    assert isinstance(s, SyntheticBenchmark) and s.tasks == DEFAULT_SYNTHETIC_TASKS
    s = get_benchmark(f"synthetic:{tmp_path}:haze,noise", crop=32)
    assert s.tasks == ("haze", "noise") and s.crop == 32


@pytest.mark.parametrize(
    "spec",
    [
        "promptir-4task",
        "paired:",
        "synthetic:x:fog",
        "paired:x:fog",
        "nope:x",
        "composite:x:haze+fog",
        "composite:x:haze+haze",
        "composite:x:haze+rain,haze+rain",
    ],
)
def test_bad_benchmark_names_raise_one_line_config_errors(spec):
    with pytest.raises(ConfigError) as exc:
        get_benchmark(spec)
    assert "\n" not in str(exc.value)


def test_promptir_3task_counts_are_checked_and_name_the_short_columns(promptir_tree):
    bench = BENCHMARKS["promptir-3task"]
    columns = bench.columns(promptir_tree)
    assert [len(c) for c in columns] == [2, 2, 3, 3, 3]
    report = bench.check_counts(columns)
    assert not report.ok
    msg = report.message()
    assert "sots has 2 images, expected 500 (test/dehaze)" in msg
    assert "bsd68-s15 has 3 images, expected 68" in msg
    assert "13 cases, expected 804" in msg
    fixed = bench.with_counts(THREE_TASK_FIXTURE)
    assert fixed.expected_total == 13
    assert fixed.check_counts(fixed.columns(promptir_tree)).ok


def test_promptir_5task_fixture_tree(promptir_tree):
    bench = BENCHMARKS["promptir-5task"].with_counts(FIVE_TASK_FIXTURE)
    columns = bench.columns(promptir_tree)
    assert bench.check_counts(columns).ok
    case = columns[0][0]  # SOTS: hazy 0000_0.8_0.2.png pairs with 0000.png by the ots rule
    assert case.task == "haze" and case.name == "0000_0.8_0.2.png"
    assert case.input.shape == case.target.shape == (3, 40, 48)
    gopro = columns[3][1]
    assert gopro.task == "blur" and gopro.name == "g1.png"


def test_missing_part_names_the_folder_and_the_check_command(promptir_tree):
    import shutil

    shutil.rmtree(promptir_tree / "test/derain/Rain100L/target")
    with pytest.raises(DatasetLayoutError) as exc:
        BENCHMARKS["promptir-3task"].columns(promptir_tree)
    msg = str(exc.value)
    assert "Rain100L/target: missing folder" in msg
    assert "aioir data check" in msg and "\n" not in msg


def test_missing_root_and_no_root(tmp_path):
    with pytest.raises(DatasetLayoutError, match="dataset root does not exist"):
        BENCHMARKS["promptir-3task"].columns(tmp_path / "absent")
    with pytest.raises(ConfigError, match="needs --data-root"):
        BENCHMARKS["udair-source"].columns(None)


def test_udair_fixture_tree(udair_tree):
    source = BENCHMARKS["udair-source"]
    cols = source.columns(udair_tree)
    assert [c.key for c in cols] == [
        "denoising",
        "dehazing",
        "deraining",
        "low-light",
        "underwater",
    ]
    assert all(c.has_target for c in cols) and not source.check_counts(cols).ok
    target = BENCHMARKS["udair-target"].columns(udair_tree)
    no_gt = {c.key for c in target if not c.has_target}
    assert no_gt == {"dehazing_urhi", "low-light_lime"}
    lime = next(c for c in target if c.key == "low-light_lime")
    case = lime[0]
    assert case.target is None and case.task == "lowlight" and case.input.shape == (3, 100, 200)
    assert BENCHMARKS["udair-target"].check_counts(target).ok  # no expected counts for targets


def test_paired_benchmark(paired_dir):
    (col,) = get_benchmark(f"paired:{paired_dir}:noise").columns(None)
    assert len(col) == 3 and col.key == "mine" and col[2].name == "p2.png"
    assert col[0].task == "noise"
    # relative folders resolve against the data root
    (col2,) = get_benchmark("paired:mine").columns(paired_dir.parent)
    assert torch.equal(col2[1].input, col[1].input)


# --------------------------------------------------------------------------- seeded inputs
def _noise_inputs(root: Path, rounding="round") -> dict[str, dict[str, torch.Tensor]]:
    cols = BENCHMARKS["promptir-3task"].columns(root, noise_rounding=rounding)
    return {c.key: {c[i].name: c[i].input for i in range(len(c))} for c in cols if "bsd" in c.key}


def test_noisy_inputs_are_seeded_by_file_name_and_sigma(promptir_tree):
    a, b = _noise_inputs(promptir_tree), _noise_inputs(promptir_tree)
    for key in a:
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name])
    # independent computation: GaussianNoise with seed_from_name(file name, σ)
    (col,) = [
        c for c in BENCHMARKS["promptir-3task"].columns(promptir_tree) if c.key == "bsd68-s25"
    ]
    case = col[1]
    gen = make_generator(seed_from_name(case.name, 25))
    expected = GaussianNoise(25.0, quantize=True, rounding="round").apply(case.target[None], gen)[0]
    assert torch.equal(case.input, expected)
    assert case.meta["sigma"] == 25.0
    # the σ levels are different draws, and the noise level is about right
    n15 = a["bsd68-s15"]["img0.png"] - col[0].target
    n50 = a["bsd68-s50"]["img0.png"] - col[0].target
    assert 10 / 255 < n15.std() < 20 / 255 and 35 / 255 < n50.std() < 55 / 255


def test_noisy_inputs_do_not_depend_on_listing_order(promptir_tree, monkeypatch):
    reference = _noise_inputs(promptir_tree)
    original = folders.list_images

    def shuffled(folder, recursive=False):
        paths = list(original(folder, recursive))
        random.Random(7).shuffle(paths)
        return paths

    monkeypatch.setattr(folders, "list_images", shuffled)
    again = _noise_inputs(promptir_tree)
    assert reference.keys() == again.keys()
    for key in reference:
        assert reference[key].keys() == again[key].keys()
        for name, x in reference[key].items():
            assert torch.equal(x, again[key][name])


def test_truncation_biases_the_noise_by_half_a_level(crops):
    clean = torch.from_numpy(crops(3, 64, 64)).permute(2, 0, 1)
    clean = (clean * 255).round() / 255
    rounded = noisy_input(clean, "x.png", 15, "round")
    truncated = noisy_input(clean, "x.png", 15, "truncate")
    bias = float((truncated - rounded).mean() * 255)
    assert -0.6 < bias < -0.4


def test_synthetic_inputs_are_seeded_and_order_independent(clean_dir, monkeypatch):
    bench = get_benchmark(f"synthetic:{clean_dir}:noise,haze,lowlight", crop=32)

    def inputs():
        return {(c.key, c[i].name): c[i].input for c in bench.columns(None) for i in range(len(c))}

    first = inputs()
    assert len(first) == 9
    assert all(x.shape == (3, 32, 32) for x in first.values())
    import aioir.io

    original = aioir.io.list_images

    def shuffled(folder, recursive=False):
        paths = list(original(folder, recursive))
        paths.reverse()
        return paths

    monkeypatch.setattr(aioir.io, "list_images", shuffled)
    second = inputs()
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_synthetic_benchmark_on_the_shipped_sample_photos():
    """The samples' SOURCES.tsv (attributions) is not a photo corpus's: every photo is used
    (it used to be refused as a broken corpus)."""
    from aioir.data.samples import sample_images

    folder = sample_images()[0].parent
    bench = get_benchmark(f"synthetic:{folder}:clean")
    assert [p.name for p in bench.images()] == [p.name for p in sample_images()]


def test_composite_benchmark_parsing_and_the_cdd11_like_default(tmp_path):
    b = get_benchmark(f"composite:{tmp_path}")
    assert isinstance(b, CompositeBenchmark) and b.tasks == CDD11_LIKE_COMBOS
    assert b.crop == COMPOSITE_CROP and b.name == f"composite:{tmp_path}"
    # CDD-11's shape: 4 singles, 5 pairs, 2 triples; noise stands in for snow
    sizes = [len(c.split("+")) for c in CDD11_LIKE_COMBOS]
    assert (sizes.count(1), sizes.count(2), sizes.count(3)) == (4, 5, 2)
    assert "snow" not in "".join(CDD11_LIKE_COMBOS)
    assert any("noise in place of snow" in line for line in b.notes())
    c = get_benchmark(f"composite:{tmp_path}:haze+blur,rain", crop=32)
    assert c.tasks == ("haze+blur", "rain") and c.crop == 32
    assert c.name == f"composite:{tmp_path}:haze+blur,rain"
    s = get_benchmark(f"synthetic:{tmp_path}:haze+rain")  # a composite column there too
    assert s.tasks == ("haze+rain",) and not isinstance(s, CompositeBenchmark)


def test_composite_columns_are_seeded_and_share_each_photos_crop(clean_dir, monkeypatch):
    bench = get_benchmark(f"composite:{clean_dir}:haze,lowlight+haze,lowlight+haze+noise", crop=32)

    def cases():
        return {(c.key, c[i].name): c[i] for c in bench.columns(None) for i in range(len(c))}

    first = cases()
    assert len(first) == 9
    for (key, name), case in first.items():
        assert case.task == key and case.input.shape == (3, 32, 32)
        same_photo = first[("haze", name)]
        assert torch.equal(case.target, same_photo.target)  # the same crop in every column
    inputs = [first[(k, "c0.png")].input for k in bench.tasks]
    assert not torch.equal(inputs[0], inputs[1]) and not torch.equal(inputs[1], inputs[2])
    import aioir.io

    original = aioir.io.list_images
    monkeypatch.setattr(aioir.io, "list_images", lambda f, r=False: original(f, r)[::-1])
    second = cases()
    assert all(torch.equal(first[k].input, second[k].input) for k in first)
