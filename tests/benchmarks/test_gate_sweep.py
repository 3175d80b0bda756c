"""``benchmarks/gate_sweep.py``: a gate setting scored from the examples is the fit's own gate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from aioir.engine.config import build_config
from aioir.engine.filter_bank import FilterBankFitConfig, fit
from aioir.models import load_model
from helpers import load_benchmark, make_corpus, tiny_filter_bank_fit_config
from udair_helpers import build_tiny_udair


def _one_photo(folder, seed: int):
    """A folder holding one random 40×48 photo."""
    folder.mkdir()
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(folder / "a.png")
    return folder


def _fitted(tmp_path) -> tuple[dict, Path, list[str]]:
    """A tiny fit at ``tmp_path/fitted`` with its examples file, a folder of one photo and the
    sweep's arguments for them: (raw config, photos, argv)."""
    corpus = make_corpus(tmp_path / "corpus")
    base = build_tiny_udair(tmp_path / "base")
    examples = tmp_path / "examples.safetensors"
    raw = tiny_filter_bank_fit_config(corpus, base, gate_examples_file=str(examples))
    fit(build_config(FilterBankFitConfig, raw, "test"), tmp_path / "fitted")
    photos = _one_photo(tmp_path / "photos", seed=0)
    argv = ["--model", str(tmp_path / "fitted"), "--examples", str(examples),
            "--photos", str(photos), "--limit", "1", "--threads", "1"]  # fmt: skip
    return raw, photos, argv


def test_the_fits_own_settings_reproduce_the_saved_gate(tmp_path):
    raw, photos, argv = _fitted(tmp_path)
    sweep = load_benchmark("gate_sweep")
    out = sweep.main([*argv, "--grid", "gate_epochs=20,40", "--json", str(tmp_path / "s.json")])
    own, longer = out["results"]
    assert own["setting"] == {"gate_epochs": 20} and own["columns"] == out["as_saved"]
    assert longer["columns"] != own["columns"]
    assert (tmp_path / "s.json").is_file() and len(out["inputs"]) == 10
    with pytest.raises(SystemExit):
        sweep.main([*argv, "--grid", "taps=3"])  # not a gate option
    with pytest.raises(SystemExit):
        sweep.main([*argv, "--grid", "input_statistics=maybe"])
    with pytest.raises(SystemExit):  # the file has no input statistics yet
        sweep.main([*argv, "--grid", "input_statistics=true"])
    # a fit whose gate reads them adds them to the file; then the sweep compares both gates
    raw["filter_bank"]["input_statistics"] = True
    fit(build_config(FilterBankFitConfig, raw, "test"), tmp_path / "statistics")
    plain, statistics = sweep.main([*argv, "--grid", "input_statistics=false,true"])["results"]
    assert plain["setting"] == {"input_statistics": False} and plain["columns"] == own["columns"]
    assert statistics["setting"] == {"input_statistics": True}
    # more crops per photo: more cases per column (one photo, so 3 where the bar has 2)
    model = load_model(tmp_path / "fitted").eval()
    cases = sweep.restore_cases(model, str(photos), None, crops_per_photo=3)
    assert [len(c.targets) for c in cases] == 10 * [3]
    # whole photos beside the crops: one case per photo at the long side asked, both scored,
    # the setting chosen by the mean of the two floored gains
    whole = sweep.main([*argv, "--grid", "gate_epochs=20,40", "--whole-photos", "36"])
    first = whole["results"][0]
    assert first["columns"] == own["columns"] and len(whole["whole_inputs"]) == 10
    assert first["whole_columns"] == whole["whole_as_saved"]
    assert first["choice"] == pytest.approx(
        (first["floored_gain"] + first["whole_floored_gain"]) / 2
    )
    cases = sweep.restore_cases(model, str(photos), None, whole_side=36)
    assert {tuple(t.shape) for c in cases for t in c.targets} == {(3, 30, 36)}


def test_floored_gain_charges_every_column_under_its_floor():
    sweep = load_benchmark("gate_sweep")
    inputs = {"a": 20.0, "b": 30.0}
    assert sweep.floored_gain({"a": 24.0, "b": 32.0, "clean": 45.0}, inputs) == 3.0
    assert sweep.floored_gain({"a": 24.0, "b": 29.0, "clean": 38.0}, inputs) == 1.5 - 1.0 - 2.0


def test_extra_examples_files_and_rendered_photos(tmp_path):
    """A fit with ``extra_gate_data`` is reproduced from its two example files given in order;
    ``--pale`` scores the whole photos rendered pale too, the choice the mean of three gains;
    ``--defocus`` the photos out of focus, the mean of four."""
    corpus = make_corpus(tmp_path / "corpus")
    base = build_tiny_udair(tmp_path / "base")
    main, pale = tmp_path / "main.safetensors", tmp_path / "pale.safetensors"
    extra = {"data": {"pale": 1.0}, "items_per_task": 3, "examples_file": str(pale)}
    raw = tiny_filter_bank_fit_config(
        corpus, base, gate_examples_file=str(main), extra_gate_data=[extra]
    )
    fit(build_config(FilterBankFitConfig, raw, "test"), tmp_path / "fitted")
    photos = _one_photo(tmp_path / "photos", seed=1)

    sweep = load_benchmark("gate_sweep")
    argv = ["--model", str(tmp_path / "fitted"), "--examples", str(main), "--examples",
            str(pale), "--photos", str(photos), "--limit", "1", "--threads", "1",
            "--grid", "gate_epochs=20"]  # fmt: skip
    out = sweep.main([*argv, "--whole-photos", "36", "--pale"])
    (own,) = out["results"]
    assert own["columns"] == out["as_saved"] and own["pale_columns"] == out["pale_as_saved"]
    assert own["choice"] == pytest.approx(
        (own["floored_gain"] + own["whole_floored_gain"] + own["pale_floored_gain"]) / 3
    )
    assert own["pale_columns"] != own["whole_columns"]
    main_only = sweep.main(argv[:4] + argv[6:])["results"][0]  # without the pale examples
    assert main_only["columns"] != own["columns"]
    with pytest.raises(SystemExit):
        sweep.main([*argv, "--pale"])  # pale photos are whole photos
    # --defocus: the whole photos out of focus too, one more gain in the mean
    both = sweep.main([*argv, "--whole-photos", "36", "--pale", "--defocus"])
    (own,) = both["results"]
    assert own["defocus_columns"] == both["defocus_as_saved"]
    assert own["defocus_columns"] != own["whole_columns"] != own["pale_columns"]
    kinds = ("floored_gain", "whole_floored_gain", "pale_floored_gain", "defocus_floored_gain")
    assert own["choice"] == pytest.approx(sum(own[k] for k in kinds) / 4)
    with pytest.raises(SystemExit):
        sweep.main([*argv, "--defocus"])  # out-of-focus photos are whole photos too


def test_a_cache_takes_an_added_expert_without_running_the_network_again(tmp_path, capsys):
    """A model refitted with one more expert reuses the cached cases: only the new expert's
    candidate is made, from each cached input, equal to what a fresh restore gives."""
    corpus = make_corpus(tmp_path / "corpus")
    base = build_tiny_udair(tmp_path / "base")
    examples = tmp_path / "examples.safetensors"
    raw = tiny_filter_bank_fit_config(corpus, base, gate_examples_file=str(examples))
    fit(build_config(FilterBankFitConfig, raw, "test"), tmp_path / "plain")
    raw["filter_bank"]["experts"] = ["dark-channel-prior"]
    fit(build_config(FilterBankFitConfig, raw, "test"), tmp_path / "expert")
    photos = _one_photo(tmp_path / "photos", seed=2)
    sweep = load_benchmark("gate_sweep")
    cache = str(tmp_path / "cases.pt")

    plain = load_model(tmp_path / "plain").eval()
    sweep.cached_cases(plain, str(photos), 1, cache)
    expert = load_model(tmp_path / "expert").eval()
    cases = sweep.cached_cases(expert, str(photos), 1, cache)
    assert "1 added and 0 changed expert(s) run on their inputs" in capsys.readouterr().out
    fresh = sweep.restore_cases(expert, str(photos), 1)
    for c, f in zip(cases, fresh, strict=True):
        assert torch.allclose(c.candidates[0], f.candidates[0], atol=1e-6)
    assert sweep.cached_cases(expert, str(photos), 1, cache)  # now held whole
    assert "restored cases reused\n" in capsys.readouterr().out
    # the plain model cannot use a cache holding more candidates than it has: restored again
    sweep.cached_cases(plain, str(photos), 1, cache)
    out = capsys.readouterr().out
    assert out.startswith("restored ") and "reused" not in out


def test_a_cache_runs_a_changed_expert_again_without_the_network(tmp_path, capsys, monkeypatch):
    """A model whose expert has other weights reuses the cached cases: that expert's candidate
    is made again from each cached input, equal to what a fresh restore gives; the network is
    not run."""
    from aioir.models import create_model, save_pretrained

    corpus = make_corpus(tmp_path / "corpus")
    base = build_tiny_udair(tmp_path / "base")
    raw = tiny_filter_bank_fit_config(
        corpus, base, gate_examples_file=str(tmp_path / "examples.safetensors")
    )
    for seed, name in ((0, "first"), (1, "second")):
        torch.manual_seed(seed)
        expert = create_model("residual-cnn-tiny")
        with torch.no_grad():
            expert.body[-1].weight.normal_(0, 0.1)
        save_pretrained(expert, tmp_path / f"expert-{name}")
        raw["filter_bank"]["experts"] = ["dark-channel-prior", str(tmp_path / f"expert-{name}")]
        fit(build_config(FilterBankFitConfig, raw, "test"), tmp_path / name)
    photos = _one_photo(tmp_path / "photos", seed=3)
    sweep = load_benchmark("gate_sweep")
    cache = str(tmp_path / "cases.pt")
    sweep.cached_cases(load_model(tmp_path / "first").eval(), str(photos), 1, cache)
    second = load_model(tmp_path / "second").eval()
    fresh = sweep.restore_cases(second, str(photos), 1)

    def no_network(*args, **kwargs):
        raise AssertionError("the network ran again")

    monkeypatch.setattr(sweep, "restore_cases", no_network)
    capsys.readouterr()
    cases = sweep.cached_cases(second, str(photos), 1, cache)
    assert "0 added and 1 changed expert(s)" in capsys.readouterr().out
    for c, f in zip(cases, fresh, strict=True):
        assert c.candidates[0].shape == f.candidates[0].shape
        torch.testing.assert_close(c.candidates[0], f.candidates[0], atol=1e-6, rtol=0)
    sweep.cached_cases(second, str(photos), 1, cache)  # now held whole
    assert "restored cases reused\n" in capsys.readouterr().out


def test_examples_of_other_expert_weights_at_the_same_path_are_refused(tmp_path, capsys):
    """The examples' columns name each expert's weights: a model whose expert has other
    weights at the same path is refused with one line that says how to add them."""
    import shutil

    from aioir.models import create_model, save_pretrained

    corpus = make_corpus(tmp_path / "corpus")
    base = build_tiny_udair(tmp_path / "base")
    expert_path = tmp_path / "expert"
    for seed, name in ((0, "first"), (1, "second")):
        shutil.rmtree(expert_path, ignore_errors=True)
        torch.manual_seed(seed)
        expert = create_model("residual-cnn-tiny")
        with torch.no_grad():
            expert.body[-1].weight.normal_(0, 0.1)
        save_pretrained(expert, expert_path)
        examples = str(tmp_path / f"{name}.safetensors")
        raw = tiny_filter_bank_fit_config(
            corpus, base, gate_examples_file=examples, experts=[str(expert_path)]
        )
        fit(build_config(FilterBankFitConfig, raw, "test"), tmp_path / name)
    photos = _one_photo(tmp_path / "photos", seed=3)
    sweep = load_benchmark("gate_sweep")
    argv = ["--model", str(tmp_path / "second"), "--photos", str(photos), "--limit", "1",
            "--threads", "1", "--grid", "gate_epochs=20"]  # fmt: skip
    capsys.readouterr()
    with pytest.raises(SystemExit):
        sweep.main([*argv, "--examples", str(tmp_path / "first.safetensors")])
    err = capsys.readouterr().err
    assert "no scores for" in err and '"weights": ' in err and "gate_examples_file" in err
    out = sweep.main([*argv, "--examples", str(tmp_path / "second.safetensors")])
    assert out["results"][0]["columns"] == out["as_saved"]


def test_save_writes_the_model_a_fit_with_the_chosen_setting_gives(tmp_path):
    raw, _, argv = _fitted(tmp_path)
    sweep = load_benchmark("gate_sweep")
    out = sweep.main([*argv, "--grid", "gate_epochs=40", "--save", str(tmp_path / "chosen")])
    raw["filter_bank"]["gate_epochs"] = 40
    refit = fit(build_config(FilterBankFitConfig, raw, "test"), tmp_path / "refit").model
    saved = load_model(tmp_path / "chosen")
    for k, v in refit.state_dict().items():
        assert torch.equal(saved.state_dict()[k], v), k
    record = saved.aioir_metadata["filter_bank"]
    assert record["filter_bank"]["gate_epochs"] == 40 and saved.aioir_metadata["val"] is None
    assert record["gate_sweep"]["setting"] == {"gate_epochs": 40}
    assert record["gate_sweep"]["choice"] == out["results"][0]["choice"]
    with pytest.raises(SystemExit):  # never over an existing model
        sweep.main([*argv, "--grid", "gate_epochs=20", "--save", str(tmp_path / "chosen")])


def test_a_saved_sweep_keeps_the_models_told_gate_and_says_so(tmp_path):
    """The sweep refits blind gates only: the saved model keeps the fit's told gate, and its
    record names the model and options that gate was fitted with."""
    corpus = make_corpus(tmp_path / "corpus")
    base = build_tiny_udair(tmp_path / "base")
    examples = tmp_path / "examples.safetensors"
    classifier = {"widths": [4, 8], "hidden": 8, "items_per_task": 6, "pale_items_per_task": 0,
                  "patch_size": 32, "min_crop": 16, "steps": 10, "batch_size": 8}  # fmt: skip
    raw = tiny_filter_bank_fit_config(corpus, base, gate_examples_file=str(examples),
                                      classifier=classifier, routed_gate=True, told_gate=True)  # fmt: skip
    fitted = fit(build_config(FilterBankFitConfig, raw, "test"), tmp_path / "fitted").model
    photos = _one_photo(tmp_path / "photos", seed=0)
    argv = ["--model", str(tmp_path / "fitted"), "--examples", str(examples),
            "--photos", str(photos), "--limit", "1", "--threads", "1"]  # fmt: skip
    load_benchmark("gate_sweep").main(
        [*argv, "--grid", "gate_epochs=40", "--save", str(tmp_path / "chosen")]
    )
    saved = load_model(tmp_path / "chosen")
    told = {k: v for k, v in fitted.filter_bank.state_dict().items() if k.startswith("told_gate.")}
    assert told
    for k, v in told.items():
        assert torch.equal(saved.filter_bank.state_dict()[k], v), k
    sweep = saved.aioir_metadata["filter_bank"]["gate_sweep"]
    assert sweep["told_gate"] == {"kept_from": str(tmp_path / "fitted"),
                                  "fitted_with": {"gate_epochs": 20}}  # fmt: skip


def test_several_photo_folders_are_scored_as_one_set(tmp_path):
    argv = _fitted(tmp_path)[2]
    other = _one_photo(tmp_path / "other", seed=3)
    sweep = load_benchmark("gate_sweep")
    grid = ["--grid", "gate_epochs=20"]
    first = sweep.main([*argv, *grid])["results"][0]["columns"]
    second = sweep.main([*argv[:4], "--photos", str(other), *argv[6:], *grid])["results"][0]
    caches = ["--cache", str(tmp_path / "a.pt"), "--cache", str(tmp_path / "b.pt")]
    both = sweep.main([*argv, "--photos", str(other), *caches, *grid])["results"][0]["columns"]
    for key, value in both.items():  # one case per folder and column: the mean of the two
        assert value == pytest.approx((first[key] + second["columns"][key]) / 2, abs=1e-4)
    assert (tmp_path / "a.pt").is_file() and (tmp_path / "b.pt").is_file()
    again = sweep.main([*argv, "--photos", str(other), *caches, *grid])["results"][0]["columns"]
    assert again == both  # read back from the two caches
    with pytest.raises(SystemExit):  # more caches than folders
        sweep.main([*argv, *caches, *grid])


def test_keep_gains_refuses_settings_that_give_a_task_up(tmp_path):
    sweep = load_benchmark("gate_sweep")
    saved = {"crops": {"haze": 16.0, "noise": 30.0, "clean": 50.0}}
    inputs = {"crops": {"haze": 14.0, "noise": 29.8, "clean": 100.0}}
    kept = {"columns": {"haze": 15.2, "noise": 20.0, "clean": 40.0}}
    dropped = {"columns": {"haze": 14.5, "noise": 30.0, "clean": 50.0}}
    # haze: the saved gate gains 2 dB, half is 1 dB; noise gains < 0.5 dB and clean has no
    # input gain, so neither is held to anything
    assert sweep._given_up(kept, saved, inputs, 0.5) == []
    assert sweep._given_up(dropped, saved, inputs, 0.5) == ["crops haze"]
    argv = _fitted(tmp_path)[2]
    grid = ["--grid", "gate_epochs=20,40"]
    out = sweep.main([*argv, *grid, "--keep-gains", "0"])
    assert all(r["gives_up"] == [] for r in out["results"])
    with pytest.raises(SystemExit):  # no setting keeps 100 times the saved gate's gains
        sweep.main([*argv, *grid, "--keep-gains", "100", "--json", str(tmp_path / "none.json")])
    written = json.loads((tmp_path / "none.json").read_text())  # the scores are kept all the same
    assert len(written["results"]) == 2 and all(r["gives_up"] for r in written["results"])


def test_per_task_options_are_swept_with_each_examples_task(tmp_path):
    sweep = load_benchmark("gate_sweep")
    assert sweep._option_value({}, "haze:2/noise+jpeg:0.5") == {"haze": 2.0, "noise+jpeg": 0.5}
    assert sweep._option_value({}, "none") == {} and sweep._option_value([], "none") == []
    assert sweep._option_value([], "haze/noise+jpeg") == ["haze", "noise+jpeg"]
    with pytest.raises(ValueError):
        sweep._option_value({}, "haze")
    _, _, argv = _fitted(tmp_path)
    out = sweep.main([*argv, "--grid", "gate_task_weights=none,blur:20",
                      "--grid", "gate_target_tasks=blur"])  # fmt: skip
    own, heavy = out["results"]
    assert own["setting"] == {"gate_task_weights": {}, "gate_target_tasks": ["blur"]}
    assert own["columns"] == out["as_saved"]  # no target term: the tasks change nothing
    assert heavy["setting"]["gate_task_weights"] == {"blur": 20.0}
    assert heavy["train_expected"] != own["train_expected"]
