"""The sample photos shipped with aioir."""

from __future__ import annotations

from PIL import Image

from aioir.data.samples import sample_images, sample_sources


def test_samples_exist_are_small_and_attributed() -> None:
    paths = sample_images()
    assert 4 <= len(paths) <= 6
    assert sum(p.stat().st_size for p in paths) <= 2_000_000
    rows = {r["file"]: r for r in sample_sources()}
    assert set(rows) == {p.name for p in paths}
    for p in paths:
        with Image.open(p) as img:
            assert img.format == "JPEG" and img.mode == "RGB"
            assert max(img.size) <= 512
        row = rows[p.name]
        assert row["license"].startswith(("CC0", "CC-BY"))
        assert row["author"] and row["package"] and row["path_in_package"].startswith("/")
        assert row["corpus_split"] in ("val", "test")  # never a training photo
