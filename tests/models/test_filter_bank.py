"""The filter bank as a wrapper: restoring, its saved form, and the format-1 translation."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from aioir.errors import CheckpointError, ConfigError
from aioir.models import (
    FilterBankRestorer,
    Restormer,
    create_model,
    load_model,
    save_pretrained,
    unwrap,
)
from aioir.models.wrappers import wrap_model, wrapper_specs
from helpers import hinting_filter_bank


def _wrapped(name: str = "udair-tiny", filters: int = 3) -> FilterBankRestorer:
    torch.manual_seed(0)
    model = FilterBankRestorer(create_model(name), filters=filters, taps=5).eval()
    torch.manual_seed(1)
    with torch.no_grad():  # a gate that mixes every candidate, and filters that are not deltas
        torch.nn.init.normal_(model.filter_bank.gate[-1].weight, std=0.5)
        model.filter_bank.set_filters(torch.rand(filters, 5, 5) / 25)
    return model


def test_wrapper_chooses_among_the_network_output_and_the_input_at_any_size():
    plain = create_model("udair-tiny").eval()
    model = FilterBankRestorer(plain, filters=3, taps=5).eval()
    assert unwrap(model) is plain and model.size_multiple == 8
    keys = set(model.state_dict())
    assert {f"restorer.{k}" for k in plain.state_dict()} <= keys
    assert all(k.startswith(("restorer.", "filter_bank.")) for k in keys)
    x = torch.rand(1, 3, 21, 30)
    with torch.no_grad():
        model.filter_bank.gate[-1].bias[0] = 60.0  # all weight on the network's output
        assert torch.allclose(model(x), plain(x), atol=1e-5)
        model.filter_bank.gate[-1].bias[0] = -60.0
        model.filter_bank.gate[-1].bias[1] = 60.0  # all weight on the input
        assert torch.allclose(model(x), x, atol=1e-5)


def test_any_restormer_can_be_wrapped_and_udair_gates_on_its_degradation_map(tmp_path):
    udair, restormer = create_model("udair-tiny"), create_model("restormer-tiny")
    assert (udair.feature_channels, udair.context_map_channels) == (16, 32)
    assert restormer.context_map_channels == restormer.feature_channels == 32
    x = torch.rand(1, 3, 16, 24)
    maps = udair.eval().forward_padded_with_maps(x)
    assert torch.equal(maps.context, udair.context(x)["decoder_level3"])
    assert torch.equal(maps.image, udair.forward_padded(x))
    for name in ("restormer-tiny", "promptir-tiny"):
        assert _wrapped(name)(torch.rand(1, 3, 13, 17)).shape == (1, 3, 13, 17)
    with pytest.raises(ConfigError, match="cannot carry a filter bank"):
        FilterBankRestorer(torch.nn.Conv2d(3, 3, 1))
    bare = FilterBankRestorer(Restormer(dim=8, num_blocks=(1, 1, 1, 1)), filters=2, taps=3)
    assert not hasattr(bare, "aioir_config")  # a network built without the registry has none
    with pytest.raises(ConfigError, match="no aioir_config"):
        save_pretrained(bare, tmp_path / "bare")


def test_saved_form_lists_the_wrapper_and_loads_back_identically(tmp_path):
    model = _wrapped()
    assert wrapper_specs(model) == [{"name": "filter_bank", "filters": 3, "taps": 5, "hidden": 64}]
    assert model.aioir_config == {
        "architecture": "udair", "preset": "tiny", "overrides": {},
        "wrappers": wrapper_specs(model),
    }  # fmt: skip
    save_pretrained(model, tmp_path / "folder")
    save_pretrained(model, tmp_path / "file.safetensors")
    config = json.loads((tmp_path / "folder/config.json").read_text())
    assert config["format_version"] == 2 and config["overrides"] == {}
    assert config["wrappers"] == wrapper_specs(model)
    x = torch.rand(1, 3, 19, 26)
    with torch.no_grad():
        want = model(x)
        for path in (tmp_path / "folder", tmp_path / "file.safetensors"):
            loaded = load_model(path)
            assert isinstance(loaded, FilterBankRestorer) and bool(loaded.filter_bank.fitted)
            assert torch.equal(loaded(x), want)
    plain = json.loads(
        (
            save_pretrained(create_model("udair-tiny"), tmp_path / "plain").parent / "config.json"
        ).read_text()
    )
    assert plain["format_version"] == 2 and "wrappers" not in plain


def _format_1(model: FilterBankRestorer, taps: bool) -> tuple[dict, dict]:
    """``model`` as the code before the wrapper saved it: head arguments among the overrides,
    the network's keys at the top level beside ``filter_bank.*``."""
    overrides = {"filter_bank": model.filter_bank.num_filters}
    if taps:
        overrides["filter_taps"] = model.filter_bank.taps
    config = {
        "format": "aioir", "format_version": 1, "architecture": "udair", "preset": "tiny",
        "overrides": overrides, "metadata": {"note": "old"},
    }  # fmt: skip
    state = {k.removeprefix("restorer."): v.contiguous() for k, v in model.state_dict().items()}
    return config, state


def test_format_1_models_with_a_filter_bank_load_as_the_wrapper(tmp_path):
    model = _wrapped()
    x = torch.rand(2, 3, 24, 17)
    with torch.no_grad():
        want = model(x)
    config, state = _format_1(model, taps=True)
    assert not any(k.startswith("restorer.") for k in state)
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    save_file(state, str(folder / "model.safetensors"))
    single = tmp_path / "old.safetensors"
    save_file(state, str(single), metadata={"aioir_config": json.dumps(config)})
    for path in (folder, single):
        loaded = load_model(path)
        assert isinstance(loaded, FilterBankRestorer)
        assert loaded.aioir_metadata == {"note": "old"}
        assert loaded.aioir_config["overrides"] == {}  # the head is no longer an argument
        with torch.no_grad():
            assert torch.equal(loaded(x), want)
    # saving it again writes the new form
    save_pretrained(loaded, tmp_path / "new")
    new = json.loads((tmp_path / "new/config.json").read_text())
    assert new["format_version"] == 2 and new["wrappers"][0]["filters"] == 3
    # `filter_taps` left out meant the default, 15
    default_taps = FilterBankRestorer(create_model("udair-tiny"), filters=2).eval()
    config, state = _format_1(default_taps, taps=False)
    save_file(state, str(tmp_path / "taps.safetensors"), {"aioir_config": json.dumps(config)})
    assert load_model(tmp_path / "taps.safetensors").filter_bank.taps == 15


def test_filter_bank_arguments_of_a_registered_name_are_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match=r"'filter_bank' is no longer a model argument"):
        load_model("udair-tiny", filter_bank=12)
    save_pretrained(create_model("udair-tiny"), tmp_path / "plain")
    with pytest.raises(ConfigError, match=r"'filter_taps' is no longer a model argument"):
        load_model(tmp_path / "plain", filter_taps=5)


def test_unknown_wrappers_and_newer_formats_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="unknown model wrapper 'tiles'"):
        wrap_model(create_model("udair-tiny"), [{"name": "tiles"}])
    with pytest.raises(ConfigError, match="invalid options for the 'filter_bank' wrapper"):
        wrap_model(create_model("udair-tiny"), [{"name": "filter_bank", "size": 3}])
    folder = tmp_path / "future"
    save_pretrained(create_model("udair-tiny"), folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "format_version": 3}))
    with pytest.raises(CheckpointError, match="format 3 is newer"):
        load_model(folder)


def _expert(seed: int = 2) -> torch.nn.Module:
    torch.manual_seed(seed)
    expert = create_model("residual-cnn-tiny")
    with torch.no_grad():  # not the identity an untrained one is
        expert.body[-1].weight.normal_(0, 0.2)
    return expert.eval()


def test_an_expert_is_one_more_candidate_the_gate_can_choose():
    plain = create_model("udair-tiny").eval()
    expert = _expert()
    model = FilterBankRestorer(plain, filters=2, taps=3, experts=[expert]).eval()
    head = model.filter_bank
    assert (head.num_experts, head.num_candidates, head.gate[-1].out_features) == (1, 5, 5)
    assert any(k.startswith("filter_bank.experts.0.body.") for k in model.state_dict())
    x = torch.rand(1, 3, 16, 24)
    with torch.no_grad():
        head.gate[-1].bias.fill_(-60.0)
        head.gate[-1].bias[4] = 60.0  # all weight on the expert
        assert torch.allclose(model(x), expert(x), atol=1e-5)
        assert not torch.allclose(model(x), x, atol=1e-3)
    assert model.inference_bytes_per_pixel is None or model.inference_bytes_per_pixel > 0
    # --explain names the choice
    assert model.candidate_names() == [
        "network output", "input", "filter 1", "filter 2", "residual-cnn-tiny",
    ]  # fmt: skip
    assert model.describe_decisions() == ["filter bank: residual-cnn-tiny 1.00"]
    with torch.no_grad():
        head.gate[-1].bias.copy_(torch.tensor([1.0, 0.0, -60.0, -60.0, 1.0]))
        model(torch.rand(2, 3, 16, 24))
    assert model.describe_decisions() == 2 * ["filter bank: network output 0.42, "
                                              "residual-cnn-tiny 0.42, input 0.16"]  # fmt: skip
    # two experts of one architecture (a noise and a haze expert) are told apart
    twice = FilterBankRestorer(plain, filters=2, taps=3, experts=[_expert(), _expert()])
    assert twice.candidate_names()[-2:] == [
        "residual-cnn-tiny (expert 1)", "residual-cnn-tiny (expert 2)",
    ]  # fmt: skip


def test_declared_memory_is_the_heads_plus_the_larger_of_network_and_expert():
    """An expert runs after the network has returned: the larger of the two counts, not both."""
    network = create_model("udair-tiny")
    small, large = _expert(), _expert(seed=3)
    small.inference_bytes_per_pixel, large.inference_bytes_per_pixel = 100, 10**5
    head, inner = 16 * network.feature_channels, network.inference_bytes_per_pixel
    for experts, largest in (([], inner), ([small], inner), ([small, large], 10**5)):
        model = FilterBankRestorer(network, filters=2, taps=3, experts=experts)
        assert model.inference_bytes_per_pixel == head + largest


def test_experts_are_saved_as_registry_records_and_load_back_identically(tmp_path):
    model = FilterBankRestorer(create_model("udair-tiny"), filters=2, taps=3, experts=[_expert()])
    torch.manual_seed(3)
    with torch.no_grad():
        torch.nn.init.normal_(model.filter_bank.gate[-1].weight, std=0.5)
    record = {"architecture": "residual-cnn", "preset": "tiny", "overrides": {}}
    assert wrapper_specs(model)[0]["experts"] == [record]
    save_pretrained(model.eval(), tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.filter_bank.num_experts == 1
    x = torch.rand(2, 3, 13, 18)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    # an expert built outside the registry cannot be described, so not saved
    stray = FilterBankRestorer(create_model("udair-tiny"), experts=[torch.nn.Identity()])
    with pytest.raises(ConfigError, match="Identity expert cannot be saved"):
        save_pretrained(stray, tmp_path / "stray")
    with pytest.raises(ConfigError, match="needs an 'architecture'"):
        FilterBankRestorer(create_model("udair-tiny"), experts=[{"preset": "tiny"}])


def test_a_self_ensembled_expert_is_saved_with_its_mode_and_averages_over_flips(tmp_path):
    from aioir.nn.ensemble import GeometricEnsemble, self_ensemble

    expert = _expert()
    model = FilterBankRestorer(
        create_model("udair-tiny"), filters=2, taps=3, experts=[GeometricEnsemble(expert)]
    ).eval()
    record = {"architecture": "residual-cnn", "preset": "tiny", "overrides": {},
              "self_ensemble": "flips"}  # fmt: skip
    assert wrapper_specs(model)[0]["experts"] == [record]
    assert model.candidate_names()[-1] == "residual-cnn-tiny (self-ensemble flips)"
    assert any(k.startswith("filter_bank.experts.0.module.body.") for k in model.state_dict())
    head, x = model.filter_bank, torch.rand(1, 3, 16, 24)
    with torch.no_grad():
        head.gate[-1].bias.fill_(-60.0)
        head.gate[-1].bias[4] = 60.0  # all weight on the expert
        assert torch.allclose(model(x), self_ensemble(expert, x, "flips"), atol=1e-5)
        assert not torch.allclose(model(x), expert(x), atol=1e-4)
    save_pretrained(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert isinstance(loaded.filter_bank.experts[0], GeometricEnsemble)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_an_expert_label_names_it_in_explain_and_is_saved(tmp_path):
    from aioir.models.filter_bank import EXPERT_LABEL
    from aioir.nn.ensemble import GeometricEnsemble

    plain, ensembled = _expert(), GeometricEnsemble(_expert(seed=3))
    setattr(ensembled, EXPERT_LABEL, "noise expert")
    model = FilterBankRestorer(
        create_model("udair-tiny"), filters=2, taps=3, experts=[plain, ensembled]
    ).eval()
    assert model.candidate_names()[-2:] == ["residual-cnn-tiny", "noise expert"]
    assert wrapper_specs(model)[0]["experts"][1] == {
        "architecture": "residual-cnn", "preset": "tiny", "overrides": {},
        "self_ensemble": "flips", "label": "noise expert",
    }  # fmt: skip
    save_pretrained(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.candidate_names() == model.candidate_names()
    assert "label" not in wrapper_specs(loaded)[0]["experts"][0]


def test_a_gate_reading_input_statistics_is_saved_as_such_and_loads_back_identically(tmp_path):
    from aioir.nn.filter_bank import InputStatisticsFilterBankHead

    torch.manual_seed(0)
    model = FilterBankRestorer(create_model("udair-tiny"), filters=2, taps=3, input_statistics=True)
    with torch.no_grad():
        torch.nn.init.normal_(model.filter_bank.gate[-1].weight, std=0.5)
    assert isinstance(model.filter_bank, InputStatisticsFilterBankHead)
    assert wrapper_specs(model)[0]["input_statistics"] is True
    assert "input_statistics" not in wrapper_specs(_wrapped())[0]  # older files stay as they were
    save_pretrained(model.eval(), tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert isinstance(loaded.filter_bank, InputStatisticsFilterBankHead)
    x = torch.rand(2, 3, 13, 18)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


@pytest.mark.parametrize("gate", ["single", "routed", "routed, statistics"])
@pytest.mark.parametrize("gate_descriptor", ["full", "compact"])
def test_a_gate_reading_a_classifier_is_saved_as_such_and_loads_back_identically(
    tmp_path, gate_descriptor, gate
):
    from aioir.nn.degradation_classifier import DegradationClassifier
    from aioir.nn.filter_bank import (
        ClassifierFilterBankHead,
        CompactClassifierFilterBankHead,
        RoutedClassifierFilterBankHead,
        RoutedCompactClassifierFilterBankHead,
        StatisticsRoutedClassifierFilterBankHead,
        StatisticsRoutedCompactClassifierFilterBankHead,
    )

    routed, statistics = gate != "single", gate.endswith("statistics")
    torch.manual_seed(0)
    classifier = DegradationClassifier(["noise", "haze", "clean"], widths=(4, 6), hidden=8)
    model = FilterBankRestorer(
        create_model("udair-tiny"), filters=2, taps=3, classifier=classifier,
        gate_descriptor=gate_descriptor, routed_gate=routed, gate_statistics=statistics,
    )  # fmt: skip
    with torch.no_grad():
        torch.nn.init.normal_(model.filter_bank.gate[-1].weight, std=0.5)
    spec = wrapper_specs(model)[0]
    assert spec["classifier"] == {"classes": ["noise", "haze", "clean"], "widths": [4, 6],
                                  "hidden": 8}  # fmt: skip
    assert spec.get("gate_descriptor", "full") == gate_descriptor
    assert spec.get("routed_gate", False) is routed
    assert spec.get("gate_statistics", False) is statistics
    save_pretrained(model.eval(), tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    kind = {
        ("full", "single"): ClassifierFilterBankHead,
        ("compact", "single"): CompactClassifierFilterBankHead,
        ("full", "routed"): RoutedClassifierFilterBankHead,
        ("compact", "routed"): RoutedCompactClassifierFilterBankHead,
        ("full", "routed, statistics"): StatisticsRoutedClassifierFilterBankHead,
        ("compact", "routed, statistics"): StatisticsRoutedCompactClassifierFilterBankHead,
    }[gate_descriptor, gate]
    assert type(loaded.filter_bank) is kind
    x = torch.rand(2, 3, 13, 18)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert torch.equal(loaded.filter_bank.classifier.head[-1].bias, classifier.head[-1].bias)
    lines = loaded.describe_decisions()
    assert len(lines) == 2 and all("(classifier: " in line for line in lines)
    assert lines[0].startswith("filter bank: ")


def test_classifier_options_are_checked():
    network = create_model("udair-tiny")
    with pytest.raises(ConfigError, match="compact"):
        FilterBankRestorer(network, filters=2, taps=3, gate_descriptor="compact")
    with pytest.raises(ConfigError, match="full or compact"):
        FilterBankRestorer(network, filters=2, taps=3, gate_descriptor="tiny")
    with pytest.raises(ConfigError, match="routed by a classifier"):
        FilterBankRestorer(network, filters=2, taps=3, routed_gate=True)
    with pytest.raises(ConfigError, match="statistics belong to a routed gate"):
        FilterBankRestorer(
            network, filters=2, taps=3, classifier={"classes": ["a", "b"]}, gate_statistics=True
        )
    with pytest.raises(ConfigError, match="told gate belongs to a routed gate"):
        FilterBankRestorer(
            network, filters=2, taps=3, classifier={"classes": ["a"]}, told_gate=True
        )
    record = {"classes": ["a", "b"]}
    with pytest.raises(ConfigError, match="not both"):
        FilterBankRestorer(network, filters=2, taps=3, classifier=record, input_statistics=True)
    with pytest.raises(ConfigError, match="needs classes"):
        FilterBankRestorer(network, filters=2, taps=3, classifier={"widths": [4]})


def _routed(classes: tuple[str, ...] = ("noise", "noise+jpeg", "haze", "lowlight", "clean")):
    from aioir.nn.degradation_classifier import DegradationClassifier

    torch.manual_seed(0)
    classifier = DegradationClassifier(list(classes), widths=(4, 6), hidden=8)
    model = FilterBankRestorer(
        create_model("udair-tiny"), filters=2, taps=3, classifier=classifier, routed_gate=True
    )
    with torch.no_grad():
        torch.nn.init.normal_(model.filter_bank.gate[-1].weight, std=0.5)
        torch.nn.init.normal_(model.filter_bank.gate[-1].bias, std=2.0)
    return model.eval()


def test_a_task_the_user_gives_routes_the_gate_to_that_class_alone():
    model = _routed()
    head = model.filter_bank
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        blind = model(x)
        blind_weights = head.last_weights.clone()
    assert "(classifier: " in model.describe_decisions()[0]

    model.set_inference_options(task="low-light")  # an alias of lowlight
    assert head.given_classes == [3]
    with torch.no_grad():
        told = model(x)
    assert all(line.endswith("(told: lowlight)") for line in model.describe_decisions())
    assert not torch.allclose(told, blind)
    # the weights are the lowlight class's gate alone: its block of the routed gate's logits
    with torch.no_grad():
        descriptor = head.descriptor(*model.head_inputs(x))
        logits = head.gate(head.normalize(descriptor)).view(2, 5, -1)[:, 3]
    assert torch.allclose(head.last_weights, logits.softmax(dim=1), atol=1e-6)
    assert not torch.allclose(head.last_weights, blind_weights)

    model.set_inference_options(task="haze+noise")  # several: equally likely
    assert head.given_classes == [0, 2]
    model.set_inference_options(task="noise+jpeg")  # a class whose name has a '+'
    assert head.given_classes == [1]
    model.set_inference_options(task=None)  # the classifier decides again
    assert head.given_classes == []
    with torch.no_grad():
        assert torch.equal(model(x), blind)
    assert "task" not in str(head.state_dict().keys())  # nothing of it is saved


def test_a_told_gate_chooses_when_told_and_is_saved_with_the_head(tmp_path):
    """With a told gate the blind choice is the routed gate's as before; told, the told gate
    chooses (here: the input, whatever the task), reading the told routes in the classifier's
    place; saved and loaded back as such."""
    from aioir.nn.filter_bank import ToldGate, told_routes

    blind_model = _routed()
    torch.manual_seed(0)
    model = FilterBankRestorer(
        create_model("udair-tiny"), filters=2, taps=3, routed_gate=True, told_gate=True,
        classifier=blind_model.filter_bank.classifier,
    )  # fmt: skip
    model.load_state_dict(blind_model.state_dict(), strict=False)
    model.eval()
    head = model.filter_bank
    assert isinstance(head.told_gate, ToldGate)
    assert wrapper_specs(model)[0]["told_gate"] is True
    assert "told_gate" not in wrapper_specs(blind_model)[0]
    with torch.no_grad():
        head.told_gate.gate[-1].weight.zero_()
        head.told_gate.gate[-1].bias.copy_(torch.eye(head.num_candidates)[1].repeat(5) * 50.0)
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(x), blind_model(x))  # blind: the told gate is not read
        model.set_inference_options(task="haze")
        blind_model.set_inference_options(task="haze")
        torch.testing.assert_close(model(x), x, atol=1e-5, rtol=0)  # the input, chosen
        assert not torch.allclose(blind_model(x), x, atol=1e-3)
        descriptor = head.descriptor(*model.head_inputs(x))
        told = head.told_descriptor(descriptor, told_routes(5, [2]))
    assert torch.equal(told[:, :-5], descriptor[:, :-5])
    assert torch.equal(told[:, -5:], told_routes(5, [2]).expand(2, 5))
    save_pretrained(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert isinstance(loaded.filter_bank.told_gate, ToldGate)
    with torch.no_grad():
        told_out = model(x)
        model.set_inference_options(task=None)
        assert torch.equal(loaded(x), model(x))
        loaded.set_inference_options(task="haze")
        assert torch.equal(loaded(x), told_out)


def test_a_task_the_head_cannot_take_is_a_clear_error():
    from aioir.nn.filter_bank import ClassifierFilterBankHead

    model = _routed()
    with pytest.raises(ConfigError, match=r"knows the tasks noise, noise\+jpeg, .*; not 'snow'"):
        model.set_inference_options(task="snow")
    with pytest.raises(ConfigError, match="not 'haze\\+snow'"):
        model.set_inference_options(task="haze+snow")
    assert model.filter_bank.given_classes == []
    with pytest.raises(ConfigError, match=r"network \(UDAIR\) takes no inference options"):
        model.set_inference_options(task="haze", adapter_mode="soft")
    with pytest.raises(ConfigError, match="no gate per degradation class"):
        _wrapped().set_inference_options(task="haze")
    unrouted = _routed()
    unrouted.filter_bank = ClassifierFilterBankHead(
        4, 2, 2, 3, 8, classifier=unrouted.filter_bank.classifier
    )
    with pytest.raises(ConfigError, match="no gate per degradation class"):
        unrouted.set_inference_options(task="haze")
    with pytest.raises(ValueError, match="class indices"):
        model.filter_bank.give_classes([7])


def test_options_go_to_the_outermost_model_that_takes_them():
    from aioir.models.wrappers import options_taker

    network = create_model("udair-tiny")
    assert options_taker(network) is None
    model = FilterBankRestorer(network, filters=2, taps=3)
    assert options_taker(model) is model
    seen: list[dict] = []
    network.set_inference_options = lambda **options: seen.append(options)  # takes options now
    model.set_inference_options(adapter_mode="soft")  # the head passes on what it does not use
    assert seen == [{"adapter_mode": "soft"}]


def test_an_expert_with_a_grey_twin_is_saved_as_such_and_loads_back_identically(tmp_path):
    from aioir.models.filter_bank import label_expert
    from aioir.nn.grey_twin import GreyTwin

    twin = GreyTwin(_expert(), _expert(seed=3))
    model = FilterBankRestorer(
        create_model("udair-tiny"), filters=2, taps=3, experts=[label_expert(twin, "noise")]
    ).eval()
    record = wrapper_specs(model)[0]["experts"][0]
    assert record["grey"] == {"architecture": "residual-cnn", "preset": "tiny", "overrides": {}}
    assert record["label"] == "noise" and "label" not in record["grey"]
    save_pretrained(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    expert = loaded.filter_bank.experts[0]
    assert isinstance(expert, GreyTwin) and loaded.candidate_names()[-1] == "noise"
    grey = torch.rand(1, 1, 13, 18).expand(1, 3, 13, 18)
    with torch.no_grad():
        assert torch.equal(expert(grey), twin.grey(grey))
        assert not torch.equal(expert(grey), twin.colour(grey))


def test_an_expert_stored_in_half_precision_is_saved_so_and_loads_back_in_float32(tmp_path):
    """Only that expert's tensors are half precision in the file; loaded back, the model runs
    in float32 with those weights, and saving it again keeps the storage."""
    from safetensors.torch import load_file

    from aioir.models.checkpoints import STORAGE_DTYPE
    from aioir.models.filter_bank import store_expert_as

    full, half = _expert(seed=2), store_expert_as(_expert(seed=3), "float16")
    model = FilterBankRestorer(
        create_model("udair-tiny"), filters=2, taps=3, experts=[full, half]
    ).eval()
    weights = save_pretrained(model, tmp_path / "m")
    dtypes = {k: v.dtype for k, v in load_file(str(weights)).items()}
    prefix = "filter_bank.experts.1."
    assert {d for k, d in dtypes.items() if k.startswith(prefix)} == {torch.float16}
    assert torch.float16 not in {d for k, d in dtypes.items() if not k.startswith(prefix)}
    assert wrapper_specs(model)[0]["experts"][1]["storage"] == "float16"
    loaded = load_model(tmp_path / "m")
    expert = loaded.filter_bank.experts[1]
    assert getattr(expert, STORAGE_DTYPE) == "float16"
    for p, q in zip(half.parameters(), expert.parameters(), strict=True):
        assert q.dtype == torch.float32 and torch.equal(q, p.half().float())
    for p, q in zip(full.parameters(), loaded.filter_bank.experts[0].parameters(), strict=True):
        assert torch.equal(p, q)
    again = save_pretrained(loaded, tmp_path / "again")
    assert again.stat().st_size == weights.stat().st_size
    with pytest.raises(ConfigError, match="storage must be one of"):
        store_expert_as(_expert(), "int4")


def test_a_head_that_held_back_on_a_degradation_it_read_suggests_telling_it():
    """:meth:`FilterBankRestorer.suggested_task`: read as haze (0.95), returned as it came,
    while told haze the head would restore it — the hint names haze, how sure the classifier
    was and how much of the choice telling it moves; none before a restoration, when told,
    when the told choice is the blind one, for a class under the least probability, for rain
    (never suggested) and for a head without a routed gate."""
    from aioir.models.filter_bank import SUGGEST_MIN_PROBABILITY
    from aioir.models.protocols import TaskSuggester

    model = hinting_filter_bank()
    head = model.filter_bank
    assert isinstance(model, TaskSuggester) and model.suggested_task() is None
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        model(x)
    hint = model.suggested_task()
    assert hint is not None and hint.task == "haze"
    assert hint.probability == pytest.approx(0.95, abs=1e-3) and hint.change == pytest.approx(1.0)
    assert head.given_classes == []  # asking left it blind
    model.set_inference_options(task="haze")
    with torch.no_grad():
        model(x)
    assert model.suggested_task() is None  # told already
    model.set_inference_options(task=None)
    with torch.no_grad():  # told, the same choice as blind: nothing to suggest
        head.told_gate.gate[-1].bias.copy_(head.gate[-1].bias[: head.num_candidates].repeat(4))
        model(x)
    assert model.suggested_task() is None
    hinting = hinting_filter_bank(haze=SUGGEST_MIN_PROBABILITY - 0.05)  # too unsure: no hint
    with torch.no_grad():
        hinting(x)
    assert hinting.suggested_task() is None
    for read, hinted in (("noise", "noise"), ("rain", None)):  # rain is never suggested
        model = hinting_filter_bank(read=read)
        with torch.no_grad():
            model(x)
        hint = model.suggested_task()
        assert (hint and hint.task) == hinted
    unrouted = _wrapped()
    with torch.no_grad():
        unrouted(x)
    assert unrouted.suggested_task() is None
