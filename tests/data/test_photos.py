"""The offline photo corpus builder, on a fake .deb built in the test."""

from __future__ import annotations

import csv
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from aioir.data import photos
from aioir.data.photos import (
    build_photo_corpus,
    clean_photo_splits,
    load_corpus,
    main_photos,
    normalised_name,
    read_photo_list,
    split_of,
)
from aioir.errors import AioirError, ConfigError, DatasetLayoutError

FILES = {
    "usr/share/wallpapers/Kite/contents/images/2560x1600.jpg": ((80, 50), "JPEG"),
    "usr/share/wallpapers/Path/contents/images/2560x1600.jpg": ((60, 40), "JPEG"),
    "usr/share/backgrounds/Big_Photo.png": ((300, 200), "PNG"),
    "usr/share/backgrounds/tall_by_Some_One.jpg": ((40, 90), "JPEG"),
}


@pytest.fixture
def fake_deb(tmp_path: Path) -> Path:
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed")
    tree = tmp_path / "tree"
    for i, (rel, (size, fmt)) in enumerate(FILES.items()):
        path = tree / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, (40 * i, 200 - 30 * i, 90)).save(path, fmt)
    (tree / "DEBIAN").mkdir()
    (tree / "DEBIAN" / "control").write_text(
        "Package: fake-wallpapers\nVersion: 1:1.2-3\nArchitecture: all\n"
        "Maintainer: Test <t@example.org>\nDescription: test photos\n"
    )
    deb = tmp_path / "fake-wallpapers_1.2-3_all.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", str(tree), str(deb)],
        check=True,
        capture_output=True,
    )
    return deb


@pytest.fixture
def list_file(tmp_path: Path) -> Path:
    rows = ["package\tpath_in_package\tlicense"]
    rows += [f"fake-wallpapers\t/{rel}\tCC0-1.0" for rel in FILES]
    path = tmp_path / "list.tsv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_builds_renames_scales_splits_and_is_idempotent(
    tmp_path: Path, fake_deb: Path, list_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def fake_download(package: str, cache_dir: Path) -> Path:
        calls.append(package)
        assert cache_dir == tmp_path / "out" / ".cache"
        return fake_deb

    monkeypatch.setattr(photos, "download_deb", fake_download)
    dest = tmp_path / "out"
    corpus = build_photo_corpus(dest, list_file=list_file, max_side=128, progress=False)
    names = sorted(p.name for p in corpus.files)
    assert names == [
        "fake-wallpapers-big-photo.png",
        "fake-wallpapers-kite.jpg",
        "fake-wallpapers-path.jpg",
        "fake-wallpapers-tall-by-some-one.jpg",
    ]
    rows = {r["file"]: r for r in csv.DictReader((dest / "SOURCES.tsv").open(), delimiter="\t")}
    big = rows["fake-wallpapers-big-photo.png"]
    assert (big["width"], big["height"], big["orig_width"]) == ("128", "85", "300")
    assert Image.open(dest / big["file"]).size == (128, 85)
    kite = rows["fake-wallpapers-kite.jpg"]
    assert kite["version"] == "1:1.2-3" and kite["license"] == "CC0-1.0"
    assert kite["path_in_package"] == "/usr/share/wallpapers/Kite/contents/images/2560x1600.jpg"
    src = fake_deb.parent / "tree" / kite["path_in_package"].lstrip("/")
    assert (dest / kite["file"]).read_bytes() == src.read_bytes()  # small JPEG copied verbatim
    for r in rows.values():
        assert r["sha256"] == hashlib.sha256((dest / r["file"]).read_bytes()).hexdigest()
    assert {len(corpus.split(s)) for s in ("train", "val", "test")} == {2, 1}
    assert sum(len(corpus.split(s)) for s in ("train", "val", "test")) == 4
    assert not list(dest.glob("*.tmp")) and not list((dest / ".cache").glob(".extract-*"))

    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in dest.iterdir() if p.is_file()}
    again = build_photo_corpus(dest, list_file=list_file, max_side=128, progress=False)
    after = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in dest.iterdir() if p.is_file()}
    assert again.records == corpus.records
    assert after == before  # nothing rewritten, not even SOURCES.tsv
    assert load_corpus(dest).records == corpus.records

    # a different max_side rebuilds exactly the affected file
    bigger = build_photo_corpus(dest, list_file=list_file, max_side=256, progress=False)
    assert {r.file: r.width for r in bigger.records}["fake-wallpapers-big-photo.png"] == 256
    assert calls == ["fake-wallpapers"] * 3

    assert main_photos(dest, list_file=list_file, max_side=256, progress=False) == 0
    missing = tmp_path / "bad.tsv"
    missing.write_text(list_file.read_text() + "fake-wallpapers\t/usr/share/nope.jpg\tCC0-1.0\n")
    with pytest.raises(ConfigError, match=r"nope\.jpg is not in fake-wallpapers"):
        build_photo_corpus(dest, list_file=missing, progress=False)
    assert main_photos(dest, list_file=missing, progress=False) == 1


def test_download_error_tells_to_run_apt_get_update(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "apt-get"
    fake.write_text("#!/bin/sh\necho 'E: Unable to locate package fake-wallpapers' >&2\nexit 100\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(AioirError, match=r"Unable to locate.*run `apt-get update`") as info:
        photos.download_deb("fake-wallpapers", tmp_path)
    assert "\n" not in str(info.value)


def test_names_lists_and_splits(tmp_path: Path) -> None:
    assert (
        normalised_name(
            "plasma-workspace-wallpapers",
            "/usr/share/wallpapers/summer_1am/contents/images/2560x1600.jpg",
        )
        == "plasma-workspace-wallpapers-summer-1am.jpg"
    )
    assert (
        normalised_name("lomiri-wallpapers-16.04", "/a/Wine_by_X.JPEG")
        == "lomiri-wallpapers-16-04-wine-by-x.jpg"
    )
    shipped = read_photo_list()
    names = [normalised_name(e.package, e.path_in_package) for e in shipped]
    assert len(set(names)) == len(names) == 38
    split = split_of(names)
    assert split == split_of(reversed(names))
    counts = {s: sum(v == s for v in split.values()) for s in ("train", "val", "test")}
    assert counts == {"train": 26, "val": 6, "test": 6}
    bad = tmp_path / "bad.tsv"
    bad.write_text("pkg\tpath\n")
    with pytest.raises(ConfigError, match="header"):
        read_photo_list(bad)
    with pytest.raises(DatasetLayoutError, match="aioir data photos"):
        load_corpus(tmp_path / "nowhere")


def test_clean_photo_splits_of_a_train_val_folder(tmp_path: Path) -> None:
    for split in ("train", "val"):
        (tmp_path / split).mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / split / f"{split}.png")
    train, val = clean_photo_splits(tmp_path)
    assert [p.name for p in train] == ["train.png"] and [p.name for p in val] == ["val.png"]
    with pytest.raises(DatasetLayoutError, match="neither a photo corpus"):
        clean_photo_splits(tmp_path / "train")
