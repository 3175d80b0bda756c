"""A tiny clean-photo corpus for the training tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import make_corpus


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus"))
