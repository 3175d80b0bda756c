"""The package's dependency directions hold: low layers import nothing above them.

Each check runs in a fresh interpreter so earlier imports in the test session cannot hide a
violation.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# layer -> modules it must NOT pull in when imported alone
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "aioir": ("torch", "numpy", "PIL", "lightning"),
    "aioir.errors": ("torch", "numpy"),
    "aioir.tasks": ("torch", "numpy"),
    "aioir.color": ("torch", "numpy"),
    "aioir.geometry": ("aioir.nn", "aioir.models", "aioir.data", "lightning"),
    "aioir.cli": ("torch", "lightning"),
    "aioir.io": ("torch", "aioir.models", "aioir.data", "lightning"),
    "aioir.metrics": ("aioir.models", "aioir.data", "aioir.degradations", "lightning"),
    "aioir.degradations": ("aioir.models", "aioir.data", "aioir.metrics", "lightning"),
    "aioir.nn": ("aioir.data", "aioir.degradations", "aioir.metrics", "lightning"),
    "aioir.models": ("aioir.data", "aioir.degradations", "aioir.metrics", "lightning"),
    "aioir.data": ("aioir.engine", "aioir.models", "aioir.nn", "aioir.metrics", "lightning"),
    "aioir.data.layouts": ("aioir.models", "lightning"),
    "aioir.data.patches": ("aioir.engine", "aioir.models", "aioir.metrics", "lightning"),
    "aioir.data.task_specs": ("aioir.engine", "aioir.models", "aioir.metrics", "lightning"),
    "aioir.restore": ("lightning", "aioir.engine", "aioir.evaluate", "aioir.data"),
    "aioir.evaluate": ("lightning", "aioir.engine"),
    "aioir.apps": ("torch", "aioir.restore", "aioir.data", "lightning"),
    "aioir.apps.demo": ("lightning", "aioir.engine", "aioir.evaluate"),
    "aioir.losses": ("aioir.models", "aioir.data", "lightning"),
    "aioir.plugins": ("torch", "aioir.methods"),
    "aioir.engine.extras": ("torch", "lightning", "aioir.methods"),
    "aioir.models.artifacts": ("lightning", "aioir.methods", "aioir.engine"),
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


# ------------------------------------------------------------------------------ method packages
SRC = Path(__file__).resolve().parents[1] / "src" / "aioir"
#: class names only a method package may use (its model, its artefacts)
METHOD_CLASSES = {"UDAIR", "UDAIRBase", "UDAIRNAF", "UDAIROutput", "DAM", "SourceBank", "PromptIR"}
METHOD_CLASSES |= {"ABAIR", "ABAIRFeatures", "DegradationEstimator", "GatedTransformerBlock"}
METHOD_CLASSES |= {"CPL", "NegativePrompts", "ContrastivePromptLoss", "EncoderFeatures"}
METHOD_CLASSES |= {"PerceiveIR", "PerceiveIROutput", "CompactFeatureExtractor"}


def _shared_modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "methods" not in p.relative_to(SRC).parts)


def _imported_modules(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value.startswith("aioir.methods.")  # importlib.import_module("...")
        ):
            names.append(node.value)
    return names


@pytest.mark.parametrize("path", _shared_modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_shared_layers_import_no_method_package(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bad = [
        m for m in _imported_modules(tree) if m == "aioir.methods" or m.startswith("aioir.methods.")
    ]
    assert not bad, f"{path.relative_to(SRC)} imports {bad}: use a registry or hook instead"
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    names |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert not names & METHOD_CLASSES, f"{path.relative_to(SRC)} uses {names & METHOD_CLASSES}"


def test_every_method_package_is_an_installed_entry_point():
    from aioir.plugins import load_methods

    packages = {p.name for p in (SRC / "methods").iterdir() if (p / "__init__.py").is_file()}
    assert packages <= set(load_methods()), "declare each method package in pyproject.toml"
