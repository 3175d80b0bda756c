"""YAML task specs → TaskSpec: names, fixed and ranged parameters, severities, errors."""

from __future__ import annotations

import pickle

import pytest
import torch

from aioir.data.synthetic import TaskSpec
from aioir.data.task_specs import ParamDegradation, fixed_gaussian_noise, parse_task_specs
from aioir.errors import ConfigError


def test_a_list_of_names_gives_default_specs() -> None:
    assert parse_task_specs(["noise", "haze"]) == {"noise": TaskSpec(), "haze": TaskSpec()}


def test_mapping_with_degradations_and_severity() -> None:
    specs = parse_task_specs(
        {
            "noise": {
                "degradations": ["camera_noise", {"name": "gaussian_noise", "sigma": [0, 50]}]
            },
            "haze": None,
            "rain": {"severity": [0.2, 0.4]},
        }
    )
    assert list(specs) == ["noise", "haze", "rain"]
    assert specs["noise"].degradations == (
        "camera_noise",
        ParamDegradation("gaussian_noise", (("sigma", [0, 50]),)),
    )
    assert specs["haze"] == TaskSpec()
    assert specs["rain"].severity == (0.2, 0.4)


def test_param_degradation_fixes_or_draws_fields() -> None:
    ranged = ParamDegradation("gaussian_noise", (("sigma", [10, 20]),))
    sigmas = [ranged(0.5, torch.Generator().manual_seed(s)).sigma for s in range(8)]
    assert all(10 <= s <= 20 for s in sigmas) and len(set(sigmas)) > 1
    assert ranged(0.5, torch.Generator().manual_seed(3)) == ranged(
        0.5, torch.Generator().manual_seed(3)
    )
    fixed = fixed_gaussian_noise(25)
    assert fixed(1.0, torch.Generator()).sigma == 25.0
    assert (
        fixed
        == fixed_gaussian_noise(25.0)
        == ParamDegradation("gaussian_noise", (("sigma", 25.0),))
    )
    assert pickle.loads(pickle.dumps(fixed)) == fixed  # DataLoader workers


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        (None, "no tasks given"),
        ("noise", "expected a list of task names or a mapping"),
        ({"noise": ["gaussian_noise"]}, r"data\.tasks\.noise: expected a mapping"),
        ({"noise": {"sigma": 5}}, "unknown key 'sigma'"),
        ({"noise": {"degradations": [{"name": "nope"}]}}, r"data\.tasks\.noise: .*nope"),
        ({"noise": {"degradations": [{"name": "gaussian_noise", "s": 1}]}}, "no parameter 's'"),
        ({"noise": {"degradations": [3]}}, "bad degradation entry 3"),
        ({"haze+rain": {"degradations": ["jpeg"]}}, r"haze\+rain: a composite task .* severity"),
        ({"haze++rain": None}, "empty component"),
        (["haze+haze"], "repeats a component"),
    ],
)
def test_errors_name_the_entry(tasks, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_task_specs(tasks)


def test_a_composite_name_is_a_spec_with_only_a_severity() -> None:
    specs = parse_task_specs(
        {"haze": None, "haze+rain": {"severity": "severe"}, "rain+noise": None}
    )
    assert specs["haze+rain"] == TaskSpec((), "severe")
    assert specs["rain+noise"] == TaskSpec()
