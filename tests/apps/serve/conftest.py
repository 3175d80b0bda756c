"""Fixtures of the ``aioir serve`` tests: the reference restorer, a running server, a headless
Chromium (skipped with the reason when it is not installed; ``make test`` installs it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from aioir.apps.serve import make_server, model_choices
from serve_helpers import Chromium, find_chromium


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    found = find_chromium()
    if found is None:
        pytest.skip(
            "chromium not found: `make test` installs it (apt-get install chromium), or set "
            "AIOIR_CHROMIUM to a Chromium executable"
        )
    return found


@pytest.fixture
def browser(
    chromium_executable: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Chromium]:
    profile = tmp_path_factory.mktemp("chromium") / "profile"
    chromium = Chromium(chromium_executable, profile)
    try:
        chromium.call("Browser.getVersion")
        yield chromium
    finally:
        chromium.close()


@pytest.fixture(scope="session")
def reference():
    """``Restorer("default")``: what the page's results must equal."""
    from aioir.restore import Restorer

    return Restorer("default")


@pytest.fixture(scope="session")
def served() -> Iterator[Any]:
    """A server on a free loopback port offering the shipped default model (loaded)."""
    server = make_server(model_choices(), port=0)
    server.service.preload()
    server.start()
    try:
        yield server
    finally:
        server.close()
