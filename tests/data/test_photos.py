"""The offline photo corpus builder, on a fake .deb built in the test."""

from __future__ import annotations

import csv
import hashlib
import io
import shutil
import subprocess
from importlib import resources
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
    resolve_list_file,
    split_of,
)
from aioir.errors import AioirError, ConfigError, DatasetLayoutError
from helpers import eet_bytes

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


def _build_deb(tmp_path: Path, package: str, files: dict[str, bytes]) -> Path:
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed")
    tree = tmp_path / f"tree-{package}"
    for rel, data in files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(data)
    (tree / "DEBIAN").mkdir()
    (tree / "DEBIAN" / "control").write_text(
        f"Package: {package}\nVersion: 0.1-1\nArchitecture: all\n"
        "Maintainer: Test <t@example.org>\nDescription: test photos\n"
    )
    deb = tmp_path / f"{package}_0.1-1_all.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", str(tree), str(deb)],
        check=True,
        capture_output=True,
    )
    return deb


def _jpeg(size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def test_eet_entries_and_pinned_splits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    full, small = _jpeg((96, 54), (200, 120, 40)), _jpeg((48, 27), (200, 120, 40))
    files = {
        f"usr/share/backgrounds/{name}.edj": eet_bytes(
            {"edje/images/1": small, "edje/images/0": full}
        )
        for name in ("Snow-Trees", "Peaks", "Bamboo", "Mountain")
    }
    files["usr/share/backgrounds/plain.jpg"] = small
    deb = _build_deb(tmp_path, "fake-e-data", files)
    monkeypatch.setattr(photos, "download_deb", lambda package, cache_dir: deb)
    rows = ["package\tpath_in_package\tlicense\tsplit", "# a comment line"]
    rows += [
        "fake-e-data\t/usr/share/backgrounds/Snow-Trees.edj#edje/images/0\tBSD-2-clause\ttest",
        "fake-e-data\t/usr/share/backgrounds/Peaks.edj#edje/images/0\tBSD-2-clause\ttest",
        "fake-e-data\t/usr/share/backgrounds/Bamboo.edj#edje/images/0\tBSD-2-clause",
        "fake-e-data\t/usr/share/backgrounds/Mountain.edj#edje/images/1\tBSD-2-clause\t",
        "fake-e-data\t/usr/share/backgrounds/plain.jpg\tCC0-1.0",
    ]
    list_file = tmp_path / "v.tsv"
    list_file.write_text("\n".join(rows) + "\n")
    corpus = build_photo_corpus(tmp_path / "out", list_file=list_file, progress=False)
    by_name = {r.file: r for r in corpus.records}
    assert sorted(by_name) == [
        "fake-e-data-bamboo.jpg",
        "fake-e-data-mountain.jpg",
        "fake-e-data-peaks.jpg",
        "fake-e-data-plain.jpg",
        "fake-e-data-snow-trees.jpg",
    ]
    snow = by_name["fake-e-data-snow-trees.jpg"]
    assert snow.path_in_package == "/usr/share/backgrounds/Snow-Trees.edj#edje/images/0"
    assert (snow.width, snow.height, snow.split) == (96, 54, "test")
    assert (tmp_path / "out" / snow.file).read_bytes() == full  # the entry, byte for byte
    assert by_name["fake-e-data-mountain.jpg"].width == 48  # the entry the row names
    assert by_name["fake-e-data-peaks.jpg"].split == "test"
    # the three unpinned photos are cut among themselves: one train, one val, one test
    free = ("fake-e-data-bamboo.jpg", "fake-e-data-mountain.jpg", "fake-e-data-plain.jpg")
    assert sorted(by_name[n].split for n in free) == ["test", "train", "val"]

    bad = tmp_path / "bad.tsv"
    bad.write_text(rows[0] + "\nfake-e-data\t/usr/share/backgrounds/Peaks.edj#nope\tMIT\n")
    with pytest.raises(AioirError, match=r"Peaks\.edj: no entry 'nope'"):
        build_photo_corpus(tmp_path / "out2", list_file=bad, progress=False)
    bad.write_text(rows[0] + "\nfake-e-data\t/usr/share/backgrounds/plain.jpg\tMIT\ttrian\n")
    with pytest.raises(ConfigError, match=r"row 2: split 'trian' is unknown"):
        read_photo_list(bad)


def test_split_pins_leave_the_rest_to_the_hash_rank() -> None:
    names = [f"p{i}.jpg" for i in range(20)]
    plain = split_of(names)
    pinned = split_of(names, {"p0.jpg": "test", "p1.jpg": "", "elsewhere.jpg": "val"})
    assert pinned["p0.jpg"] == "test" and "elsewhere.jpg" not in pinned
    assert pinned == {**split_of(names[1:]), "p0.jpg": "test"}
    assert split_of(names, {}) == plain == split_of(names, None)
    with pytest.raises(ConfigError, match="unknown"):
        split_of(names, {"p0.jpg": "holdout"})


def test_reserved_packages_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text(
        "package\tpath_in_package\tlicense\n"
        "opencv-doc\t/usr/share/doc/opencv-doc/examples/data/fruits.jpg\tBSD-3-clause\n"
    )
    with pytest.raises(ConfigError, match=r"opencv-doc.*reserved for independent evaluation"):
        read_photo_list(bad)


def test_shipped_v4_list_keeps_the_v1_splits_and_leaves_out_the_samples() -> None:
    assert resolve_list_file("photos-v4").name == "photos-v4.tsv"
    assert resolve_list_file("photos") == resolve_list_file(None)
    v1, v4 = read_photo_list("photos"), read_photo_list("photos-v4")
    key = {(e.package, e.path_in_package): e for e in v4}
    samples_tsv = Path(str(resources.files("aioir").joinpath("assets", "samples", "SOURCES.tsv")))
    with samples_tsv.open(encoding="utf-8") as fh:
        samples = {(r["package"], r["path_in_package"]) for r in csv.DictReader(fh, delimiter="\t")}
    assert len(samples) == 5 and not samples & set(key)
    assert all(e.package not in photos.RESERVED_PACKAGES for e in v4)
    v1_split = split_of(normalised_name(e.package, e.path_in_package) for e in v1)
    for e in v1:  # every v1 photo but the samples, pinned to its v1 split
        if (e.package, e.path_in_package) not in samples:
            pinned = key[(e.package, e.path_in_package)]
            assert pinned.split == v1_split[normalised_name(e.package, e.path_in_package)]
            assert pinned.license == e.license
    names = [photos._output_name(e) for e in v4]
    assert len(set(names)) == len(names) == 83
    split = split_of(names, {n: e.split for e, n in zip(v4, names)})
    counts = {s: sum(v == s for v in split.values()) for s in ("train", "val", "test")}
    assert counts == {"train": 60, "val": 11, "test": 12}


def test_shipped_val2_list_is_new_photos_all_pinned_to_val() -> None:
    """``photos-v4-val2`` widens the v4 corpus's val split only: none of its photos is in
    ``photos``, ``photos-v4`` or the samples (so no model trained on those saw them), every one
    is pinned to ``val``, and none comes from a reserved package."""
    val2 = read_photo_list("photos-v4-val2")
    older = {(e.package, e.path_in_package) for e in read_photo_list("photos")}
    older |= {(e.package, e.path_in_package) for e in read_photo_list("photos-v4")}
    samples_tsv = Path(str(resources.files("aioir").joinpath("assets", "samples", "SOURCES.tsv")))
    with samples_tsv.open(encoding="utf-8") as fh:
        older |= {(r["package"], r["path_in_package"]) for r in csv.DictReader(fh, delimiter="\t")}
    assert len(val2) == 38 and not {(e.package, e.path_in_package) for e in val2} & older
    assert {e.split for e in val2} == {"val"} and all(e.license for e in val2)
    assert all(e.package not in photos.RESERVED_PACKAGES for e in val2)
    assert not any("opencv" in e.package for e in val2)
    names = [photos._output_name(e) for e in val2]
    v4_names = {photos._output_name(e) for e in read_photo_list("photos-v4")}
    assert len(set(names)) == len(names) and not set(names) & v4_names
