"""The package's dependency directions hold: low layers import nothing above them.

Each check runs in a fresh interpreter so earlier imports in the test session cannot hide a
violation.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# layer -> modules it must NOT pull in when imported alone
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "aioir": ("torch", "numpy", "PIL", "lightning"),
    "aioir.errors": ("torch", "numpy"),
    "aioir.geometry": ("aioir.nn", "aioir.models", "aioir.data", "lightning"),
    "aioir.cli": ("torch", "lightning"),
    "aioir.io": ("torch", "aioir.models", "aioir.data", "lightning"),
    "aioir.metrics": ("aioir.models", "aioir.data", "aioir.degradations", "lightning"),
    "aioir.degradations": ("aioir.models", "aioir.data", "aioir.metrics", "lightning"),
    "aioir.nn": ("aioir.data", "aioir.degradations", "aioir.metrics", "lightning"),
    "aioir.models": ("aioir.data", "aioir.degradations", "aioir.metrics", "lightning"),
    "aioir.data.layouts": ("aioir.models", "lightning"),
    "aioir.restore": ("lightning", "aioir.engine", "aioir.evaluate", "aioir.data"),
    "aioir.evaluate": ("lightning", "aioir.engine"),
    "aioir.apps": ("torch", "aioir.restore", "aioir.data", "lightning"),
    "aioir.apps.demo": ("lightning", "aioir.engine", "aioir.evaluate"),
    "aioir.losses": ("aioir.models", "aioir.data", "lightning"),
}


def _loaded_after_import(module: str) -> set[str]:
    code = textwrap.dedent(
        f"""
        import importlib, sys
        importlib.import_module({module!r})
        print("\\n".join(sorted(sys.modules)))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return set(out.split())


@pytest.mark.parametrize("module", sorted(FORBIDDEN))
def test_layer_imports_nothing_above_it(module):
    loaded = _loaded_after_import(module)
    bad = [m for m in FORBIDDEN[module] if m in loaded]
    assert not bad, f"importing {module} also imported {bad}"


def test_lazy_top_level_names_resolve():
    import aioir

    lazy = set(aioir._LAZY) | set(aioir._SUBPACKAGES)
    assert lazy <= set(aioir.__all__), "every lazy name is public"
    for name in sorted(lazy):
        assert getattr(aioir, name) is not None
