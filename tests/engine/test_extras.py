"""Training extras: a method's config section, parsed, validated and written back."""

from __future__ import annotations

import dataclasses

import pytest

from aioir.engine.config import config_from_dict, config_to_dict
from aioir.engine.extras import (
    EXTRAS,
    TrainingExtraSpec,
    get_training_extra,
    register_training_extra,
)
from aioir.errors import ConfigError

BASE = {"model": {"name": "restormer-tiny"}, "trainer": {"max_steps": 1}}


@dataclasses.dataclass
class _ProbeConfig:
    level: int = 1

    def validate(self, where: str) -> None:
        if self.level < 0:
            raise ConfigError(f"{where}.level: must be >= 0")


@pytest.fixture
def probe():
    spec = register_training_extra(TrainingExtraSpec("probe", _ProbeConfig, lambda ctx: None))
    yield spec
    EXTRAS.unregister("probe")


def test_an_extra_section_is_parsed_overridden_and_written_back(probe):
    config = config_from_dict({**BASE, "probe": {"level": 3}}, overrides=["probe.level=4"])
    assert config.extras["probe"] == _ProbeConfig(4)
    assert config_to_dict(config)["probe"] == {"level": 4}
    assert "extras" not in config_to_dict(config)
    assert config_from_dict(BASE).extras["probe"] == _ProbeConfig()  # absent: defaults


def test_an_extra_section_is_checked_like_the_others(probe):
    with pytest.raises(ConfigError, match=r"probe\.bogus"):
        config_from_dict({**BASE, "probe": {"bogus": 1}})
    with pytest.raises(ConfigError, match=r"probe\.level: must be >= 0"):
        config_from_dict({**BASE, "probe": {"level": -1}})
    with pytest.raises(ConfigError, match="wrong type"):
        config_from_dict({**BASE, "probe": {"level": "high"}})


def test_unknown_sections_name_the_extras_and_extras_is_not_a_key(probe):
    with pytest.raises(ConfigError, match="probe") as err:
        config_from_dict({**BASE, "nonsense": {}})
    assert "extras" not in str(err.value).split("known:")[1]
    with pytest.raises(ConfigError, match="unknown key 'extras'"):
        config_from_dict({**BASE, "extras": {}})


def test_the_installed_methods_register_their_sections():
    spec = get_training_extra("source_bank")
    assert spec is not None and spec.config_type.__name__ == "SourceBankConfig"
