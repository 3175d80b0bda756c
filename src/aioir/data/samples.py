"""Small sample photos shipped with aioir, for demos, docs and smoke tests.

Five CC-BY / CC-BY-SA photographs from Debian's ``lomiri-wallpapers-16.04`` package, down-scaled
to 512 px on the long side. All come from the photo corpus's held-out splits (two from ``test``,
three from ``val``; none from ``train``), so a demo that restores them with a model trained on
the corpus is not shown training images. Attribution and modifications are in
``aioir/assets/samples/SOURCES.tsv`` (:func:`sample_sources`).
"""

from __future__ import annotations

import csv
import io
from importlib import resources
from pathlib import Path

__all__ = ["sample_images", "sample_sources"]

_EXTENSIONS = (".jpg", ".jpeg", ".png")


def _samples_dir() -> Path:
    return Path(str(resources.files("aioir").joinpath("assets", "samples")))


def sample_images() -> list[Path]:
    """Paths of the shipped sample photos, sorted by file name."""
    folder = _samples_dir()
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in _EXTENSIONS and p.is_file())


def sample_sources() -> list[dict[str, str]]:
    """The rows of ``SOURCES.tsv``: file, package, path_in_package, license, author, modifications,
    corpus_split."""
    text = (_samples_dir() / "SOURCES.tsv").read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text), delimiter="\t"))
