"""The offline photo corpus: clean photographs taken from Debian packages.

Synthetic-degradation training (:mod:`aioir.data.synthetic`) needs clean, high-quality photos
with a known licence that can be fetched without web scraping. Debian ships such photos in its
wallpaper packages (and a few others); a TSV list (columns ``package``, ``path_in_package``,
``license`` and an optional ``split``; ``#`` starts a comment line) names the files to use.
Three lists ship with aioir (``aioir/assets/``, see :data:`SHIPPED_LISTS`): ``photos`` (the
default, 38 wallpaper photos), ``photos-v4`` (83 photos) and ``photos-v4-val2`` (38 more photos,
all pinned to ``val``); docs/datasets.md §6 lists their sources.

:func:`build_photo_corpus` then

1. downloads each package with ``apt-get download`` into a cache folder (kept, so rebuilds need
   no network),
2. extracts it with ``dpkg-deb -x`` and copies the listed files; a path ``ARCHIVE#ENTRY`` names
   an entry of an Eet archive in the package (Enlightenment's ``*.edj`` wallpapers,
   :mod:`aioir.data.eet`),
3. names them ``<package>-<stem>.<ext>`` (lower case, ``[a-z0-9-]`` only; a generic stem such as
   the plasma wallpapers' ``2560x1600`` is replaced by the wallpaper's folder name, an archive
   entry without a meaningful name, such as ``edje/images/0``, by the archive's name),
4. down-scales images whose long side exceeds ``max_side`` (Lanczos; JPEG quality 95 with 4:4:4
   chroma, or PNG); files that need no change are copied byte for byte,
5. writes ``SOURCES.tsv`` with provenance, licence, checksum, size and a fixed split.

**Split.** Files are ordered by ``u`` = the first 8 bytes of ``sha256(normalised name)``; the
last ``round(0.15 n)`` are test, the ``round(0.15 n)`` before them val, the rest train (at least
one each when n ≥ 3). So the split depends only on the set of names, never on listing order or
platform, and is exactly ~70/15/15 even for a short list (a plain per-file hash threshold gave
31/4/3 on the 38 shipped photos). Adding a photo moves at most the files at the split borders.
A list row whose ``split`` column is set keeps that split; only the other rows are ranked and cut
as above. ``photos-v4`` pins each photo it shares with ``photos`` to its ``photos`` split, so no
photo changes sides between the two corpora (a model trained on either one never saw the other's
test photos).

**Reserved packages.** The images of the Debian package ``opencv-doc`` are kept for independent
evaluation; a list that names it is refused (:data:`RESERVED_PACKAGES`).

Building is idempotent: a file already present with the recorded checksum and the size
``max_side`` implies is reused; every write goes through a temporary file and ``os.replace``.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path, PurePosixPath

from PIL import Image

from aioir.data.eet import read_entry
from aioir.errors import AioirError, ConfigError, DatasetLayoutError
from aioir.io import list_images, write_bytes_atomically

__all__ = [
    "RESERVED_PACKAGES",
    "SHIPPED_LISTS",
    "SPLITS",
    "PhotoCorpus",
    "PhotoEntry",
    "PhotoRecord",
    "build_photo_corpus",
    "clean_photo_splits",
    "default_list_file",
    "download_deb",
    "is_photo_corpus",
    "load_corpus",
    "main_photos",
    "normalised_name",
    "read_photo_list",
    "resolve_list_file",
    "split_of",
]

#: The corpus splits, with their target shares.
SPLITS: dict[str, float] = {"train": 0.70, "val": 0.15, "test": 0.15}

#: Lists shipped in ``aioir/assets/`` (``<name>.tsv``), selectable by name (``--list photos-v4``).
SHIPPED_LISTS: tuple[str, ...] = ("photos", "photos-v4", "photos-v4-val2")

#: Packages whose images must never enter a corpus, with the reason.
RESERVED_PACKAGES: dict[str, str] = {
    "opencv-doc": "its images are reserved for independent evaluation (docs/datasets.md §6)",
}

SOURCES_FILE = "SOURCES.tsv"
_COLUMNS = (
    "file",
    "package",
    "version",
    "path_in_package",
    "license",
    "sha256",
    "width",
    "height",
    "split",
    "orig_width",
    "orig_height",
)
_LIST_COLUMNS = ("package", "path_in_package", "license")
_SPLIT_COLUMN = "split"
_GENERIC_STEM = re.compile(r"^(\d+x\d+|screenshot|image|wallpaper|background)$", re.IGNORECASE)
_SKIP_DIRS = {"images", "contents", "content"}


@dataclasses.dataclass(frozen=True)
class PhotoEntry:
    """One line of the photo list: which file of which package, under which licence.

    ``split`` pins the photo to a split (``train``, ``val`` or ``test``); ``""`` lets the hash
    rank decide (see the module docstring).
    """

    package: str
    path_in_package: str
    license: str
    split: str = ""


@dataclasses.dataclass(frozen=True)
class PhotoRecord:
    """One row of ``SOURCES.tsv``: a corpus file and where it came from."""

    file: str
    package: str
    version: str
    path_in_package: str
    license: str
    sha256: str
    width: int
    height: int
    split: str
    orig_width: int
    orig_height: int


@dataclasses.dataclass(frozen=True)
class PhotoCorpus:
    """A built photo corpus: its folder and the records of ``SOURCES.tsv``."""

    root: Path
    records: tuple[PhotoRecord, ...]

    def __len__(self) -> int:
        return len(self.records)

    @property
    def files(self) -> list[Path]:
        """All photo paths, sorted by file name."""
        return [self.root / r.file for r in sorted(self.records, key=lambda r: r.file)]

    def split(self, name: str) -> list[Path]:
        """The photo paths of split ``name`` (``train``, ``val`` or ``test``), sorted."""
        if name not in SPLITS:
            raise ConfigError(
                f"photo corpus split {name!r} is unknown; expected one of {list(SPLITS)}"
            )
        return [
            self.root / r.file
            for r in sorted(self.records, key=lambda r: r.file)
            if r.split == name
        ]

    def total_bytes(self) -> int:
        """Total size of the photo files on disk."""
        return sum((self.root / r.file).stat().st_size for r in self.records)


def default_list_file() -> Path:
    """The photo list shipped with aioir (``aioir/assets/photos.tsv``)."""
    return Path(str(resources.files("aioir").joinpath("assets", "photos.tsv")))


def resolve_list_file(list_file: str | os.PathLike[str] | None = None) -> Path:
    """The path of a photo list: a TSV file, the name of a shipped list, or ``None`` (default).

    An existing file wins over a shipped list of the same name.
    """
    if list_file is None:
        return default_list_file()
    path = Path(list_file)
    name = str(list_file)
    if not path.exists() and name.removesuffix(".tsv") in SHIPPED_LISTS:
        return default_list_file().with_name(f"{name.removesuffix('.tsv')}.tsv")
    return path


def read_photo_list(list_file: str | os.PathLike[str] | None = None) -> list[PhotoEntry]:
    """Parse a photo list TSV (``package``, ``path_in_package``, ``license``, optional ``split``;
    header required), given as a path or a shipped list's name (:func:`resolve_list_file`)."""
    path = resolve_list_file(list_file)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        shipped = ", ".join(SHIPPED_LISTS)
        raise ConfigError(
            f"{path}: cannot read the photo list ({exc.strerror or exc}); give a TSV file or a "
            f"shipped list ({shipped})"
        ) from None
    rows = list(csv.reader(io.StringIO(text), delimiter="\t"))
    rows = [r for r in rows if r and any(c.strip() for c in r) and not r[0].startswith("#")]
    if not rows or tuple(c.strip() for c in rows[0][:3]) != _LIST_COLUMNS:
        header = " TAB ".join(_LIST_COLUMNS)
        raise ConfigError(f"{path}: the photo list must start with the header {header}")
    has_split = len(rows[0]) > 3 and rows[0][3].strip() == _SPLIT_COLUMN
    entries = []
    for lineno, row in enumerate(rows[1:], start=2):
        if len(row) < 3 or not all(c.strip() for c in row[:3]):
            raise ConfigError(f"{path}: row {lineno} needs 3 tab-separated non-empty columns")
        split = row[3].strip() if has_split and len(row) > 3 else ""
        if split and split not in SPLITS:
            raise ConfigError(
                f"{path}: row {lineno}: split {split!r} is unknown; expected one of {list(SPLITS)}"
            )
        entry = PhotoEntry(*(c.strip() for c in row[:3]), split=split)
        if entry.package in RESERVED_PACKAGES:
            raise ConfigError(
                f"{path}: row {lineno} names {entry.package}: "
                f"{RESERVED_PACKAGES[entry.package]}; it must not enter a photo corpus"
            )
        entries.append(entry)
    if not entries:
        raise ConfigError(f"{path}: the photo list names no photos")
    return entries


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def normalised_name(package: str, path_in_package: str) -> str:
    """The corpus file name of a packaged photo: ``<package>-<stem>.<ext>``, lower case, safe chars.

    A generic stem (``2560x1600``, ``screenshot``, …) is replaced by the nearest meaningful parent
    folder, so ``/usr/share/wallpapers/Kite/contents/images/2560x1600.jpg`` becomes ``…-kite.jpg``.
    An archive entry (``ARCHIVE#ENTRY``) is named after the entry, or after the archive when the
    entry's name is generic or a number: ``…/Mountain.edj#edje/images/0`` becomes
    ``…-mountain.jpg`` (an entry without an extension is taken to be a JPEG stream, as edje's
    lossy images are).
    """
    archive, member = _split_entry(path_in_package)
    if member is not None:
        m = PurePosixPath(member)
        stem = m.stem if m.suffix else m.name
        if not stem or stem.isdigit() or _GENERIC_STEM.match(stem):
            stem = PurePosixPath(archive).stem
        ext = m.suffix.lower() or ".jpg"
        ext = ".jpg" if ext in (".jpeg", ".jpg") else ext
        return f"{_slug(package)}-{_slug(stem)}{ext}"
    p = Path(path_in_package)
    stem = p.stem
    if _GENERIC_STEM.match(stem):
        for parent in reversed(p.parent.parts):
            if parent.lower() not in _SKIP_DIRS and parent != "/":
                stem = parent
                break
    ext = p.suffix.lower()
    ext = ".jpg" if ext in (".jpeg", ".jpg") else ext
    return f"{_slug(package)}-{_slug(stem)}{ext}"


def _split_entry(path_in_package: str) -> tuple[str, str | None]:
    """``(ARCHIVE, ENTRY)`` for ``ARCHIVE#ENTRY``, ``(path, None)`` for a plain path."""
    archive, sep, entry = path_in_package.partition("#")
    return (archive, entry) if sep and entry else (path_in_package, None)


def _fraction(name: str) -> float:
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_of(names: Iterable[str], fixed: Mapping[str, str] | None = None) -> dict[str, str]:
    """The fixed split of each normalised file name (see the module docstring).

    ``fixed`` maps names to the split they are pinned to; the other names are ranked by hash and
    cut ~70/15/15 among themselves.
    """
    pool = set(names)
    pinned = {k: v for k, v in (fixed or {}).items() if v and k in pool}
    unknown = sorted(set(pinned.values()) - set(SPLITS))
    if unknown:
        raise ConfigError(f"split {unknown[0]!r} is unknown; expected one of {list(SPLITS)}")
    free = pool - set(pinned)
    ordered = sorted(free, key=lambda n: (_fraction(n), n))
    n = len(ordered)
    shares = list(SPLITS.values())
    n_val = max(1, round(shares[1] * n)) if n >= len(SPLITS) else 0
    n_test = max(1, round(shares[2] * n)) if n >= len(SPLITS) else 0
    n_train = n - n_val - n_test
    labels = ["train"] * n_train + ["val"] * n_val + ["test"] * n_test
    return {**dict(zip(ordered, labels)), **pinned}


def download_deb(package: str, cache_dir: Path) -> Path:
    """The ``.deb`` of ``package`` in ``cache_dir``, fetched with ``apt-get download`` if absent."""
    cached = sorted(cache_dir.glob(f"{package}_*.deb"))
    if cached:
        return cached[-1]
    if shutil.which("apt-get") is None:
        raise AioirError(
            "apt-get not found: building the photo corpus needs a Debian/Ubuntu system (apt-get, dpkg-deb)"
        )
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".download-") as tmp:
        proc = subprocess.run(
            ["apt-get", "download", package], cwd=tmp, capture_output=True, text=True, check=False
        )
        debs = sorted(Path(tmp).glob(f"{package}_*.deb"))
        if proc.returncode != 0 or not debs:
            lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
            errors = [ln for ln in lines if ln.startswith("E:")] or lines or ["no .deb produced"]
            hint = ""
            if any(
                "Unable to locate" in ln or "has no installation candidate" in ln for ln in lines
            ):
                hint = "; the package lists may be missing: run `apt-get update` first"
            raise AioirError(f"apt-get download {package} failed: {errors[0]}{hint}")
        target = cache_dir / debs[0].name
        os.replace(debs[0], target)
    return target


def _deb_version(deb: Path) -> str:
    proc = subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise AioirError(f"{deb}: dpkg-deb cannot read the package ({proc.stderr.strip()})")
    return proc.stdout.strip()


def _extract(deb: Path, into: Path) -> None:
    if shutil.which("dpkg-deb") is None:
        raise AioirError(
            "dpkg-deb not found: building the photo corpus needs a Debian/Ubuntu system"
        )
    proc = subprocess.run(
        ["dpkg-deb", "-x", str(deb), str(into)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise AioirError(f"{deb}: dpkg-deb -x failed ({proc.stderr.strip().splitlines()[-1:]})")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _scaled_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    long_side = max(width, height)
    if long_side <= max_side:
        return width, height
    scale = max_side / long_side
    return max(1, round(width * scale)), max(1, round(height * scale))


def _convert(src: Path, dst: Path, max_side: int) -> tuple[int, int, int, int]:
    """Copy or down-scale ``src`` into ``dst``; return (width, height, orig_width, orig_height)."""
    try:
        with Image.open(src) as img:
            img.load()
            orig_w, orig_h = img.size
            w, h = _scaled_size(orig_w, orig_h, max_side)
            ext = dst.suffix.lower()
            fmt = {".jpg": "JPEG", ".png": "PNG"}.get(ext)
            if (w, h) == (orig_w, orig_h) and img.format == fmt and img.mode in ("RGB", "L"):
                write_bytes_atomically(dst, src.read_bytes(), overwrite=True)
                return w, h, orig_w, orig_h
            rgb = img.convert("RGB")
    except (OSError, Image.DecompressionBombError) as exc:
        raise AioirError(f"{src}: cannot read the packaged image ({exc})") from None
    if (w, h) != rgb.size:
        rgb = rgb.resize((w, h), Image.Resampling.LANCZOS, reducing_gap=3.0)
    buf = io.BytesIO()
    if fmt == "JPEG":
        rgb.save(buf, format="JPEG", quality=95, subsampling=0, optimize=True)
    else:
        rgb.save(buf, format="PNG", optimize=False)
    write_bytes_atomically(dst, buf.getvalue(), overwrite=True)
    return w, h, orig_w, orig_h


def _output_name(entry: PhotoEntry) -> str:
    name = normalised_name(entry.package, entry.path_in_package)
    if not name.endswith((".jpg", ".png")):
        # Other formats (webp, svg-less rasters, …) are stored as PNG.
        name = name.rsplit(".", 1)[0] + ".png"
    return name


def _read_sources(path: Path) -> list[PhotoRecord]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        if reader.fieldnames is None or not set(_COLUMNS) <= set(reader.fieldnames):
            raise DatasetLayoutError(f"{path}: not a photo corpus SOURCES.tsv (columns {_COLUMNS})")
        records = []
        for row in reader:
            try:
                records.append(
                    PhotoRecord(
                        **{
                            k: int(row[k])
                            if k in ("width", "height", "orig_width", "orig_height")
                            else row[k]
                            for k in _COLUMNS
                        }
                    )
                )
            except (TypeError, ValueError):
                raise DatasetLayoutError(f"{path}: malformed row for {row.get('file')!r}") from None
    return records


def _write_sources(path: Path, records: Sequence[PhotoRecord]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t", lineterminator="\n")
    writer.writerow(_COLUMNS)
    for r in sorted(records, key=lambda r: r.file):
        writer.writerow([getattr(r, c) for c in _COLUMNS])
    data = buf.getvalue().encode("utf-8")
    if not (path.is_file() and path.read_bytes() == data):
        write_bytes_atomically(path, data, overwrite=True)


def is_photo_corpus(root: str | os.PathLike[str]) -> bool:
    """True when ``root`` has a photo corpus's ``SOURCES.tsv`` (its columns; a folder with
    another ``SOURCES.tsv``, e.g. the shipped samples' attributions, is not a corpus)."""
    sources = Path(root) / SOURCES_FILE
    if not sources.is_file():
        return False
    with sources.open(encoding="utf-8", newline="") as fh:
        header = next(csv.reader(fh, delimiter="\t"), [])
    return set(_COLUMNS) <= set(header)


def load_corpus(dest: str | os.PathLike[str]) -> PhotoCorpus:
    """Open a corpus built by :func:`build_photo_corpus` (reads ``DEST/SOURCES.tsv``)."""
    root = Path(dest)
    sources = root / SOURCES_FILE
    if not sources.is_file():
        raise DatasetLayoutError(
            f"{sources}: missing; build the photo corpus first with `aioir data photos {root}`"
        )
    records = _read_sources(sources)
    missing = [r.file for r in records if not (root / r.file).is_file()]
    if missing:
        raise DatasetLayoutError(
            f"{root}: {len(missing)} photo(s) listed in {SOURCES_FILE} are missing (e.g. {missing[0]}); rebuild it"
        )
    return PhotoCorpus(root=root, records=tuple(sorted(records, key=lambda r: r.file)))


def clean_photo_splits(root: str | os.PathLike[str]) -> tuple[list[Path], list[Path]]:
    """The (train, val) clean photos of ``root``: a corpus (``SOURCES.tsv``) or a folder with
    ``train/`` and ``val/`` sub-folders of clean photos."""
    root = Path(root)
    if (root / SOURCES_FILE).is_file():
        corpus = load_corpus(root)
        return corpus.split("train"), corpus.split("val")
    if (root / "train").is_dir() and (root / "val").is_dir():
        return list_images(root / "train"), list_images(root / "val")
    raise DatasetLayoutError(
        f"{root}: neither a photo corpus (SOURCES.tsv; build one with `aioir data photos`) nor "
        "a folder with train/ and val/ sub-folders of clean photos"
    )


def build_photo_corpus(
    dest: str | os.PathLike[str],
    list_file: str | os.PathLike[str] | None = None,
    max_side: int = 2048,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> PhotoCorpus:
    """Build (or bring up to date) the photo corpus in ``dest``; see the module docstring.

    ``list_file`` is a TSV path or a shipped list's name (default ``photos``); ``cache_dir`` holds
    the downloaded ``.deb`` files (default ``DEST/.cache``).
    """
    from tqdm.auto import tqdm

    if int(max_side) < 16:
        raise ConfigError(f"max_side must be at least 16, got {max_side}")
    where = resolve_list_file(list_file)
    entries = read_photo_list(where)
    root = Path(dest)
    cache = Path(cache_dir) if cache_dir is not None else root / ".cache"
    root.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)

    names = [_output_name(e) for e in entries]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{where}: two photos map to the same corpus name {dupes[0]!r}")
    splits = split_of(names, {n: e.split for e, n in zip(entries, names)})

    sources = root / SOURCES_FILE
    old = {r.file: r for r in _read_sources(sources)} if sources.is_file() else {}

    by_package: dict[str, list[tuple[PhotoEntry, str]]] = {}
    for entry, name in zip(entries, names):
        by_package.setdefault(entry.package, []).append((entry, name))

    records: list[PhotoRecord] = []
    bar = tqdm(total=len(entries), desc="photos", unit="img", disable=not progress)
    try:
        for package, items in by_package.items():
            bar.set_postfix_str(package)
            deb = download_deb(package, cache)
            version = _deb_version(deb)
            todo = []
            for entry, name in items:
                prev = old.get(name)
                if (
                    prev is not None
                    and prev.package == package
                    and prev.version == version
                    and prev.path_in_package == entry.path_in_package
                    and (prev.width, prev.height)
                    == _scaled_size(prev.orig_width, prev.orig_height, int(max_side))
                    and (root / name).is_file()
                    and _sha256(root / name) == prev.sha256
                ):
                    records.append(
                        dataclasses.replace(prev, license=entry.license, split=splits[name])
                    )
                    bar.update(1)
                else:
                    todo.append((entry, name))
            if not todo:
                continue
            with tempfile.TemporaryDirectory(dir=cache, prefix=".extract-") as tmp:
                _extract(deb, Path(tmp))
                for entry, name in todo:
                    archive, member = _split_entry(entry.path_in_package)
                    src = Path(tmp) / archive.lstrip("/")
                    if not src.is_file():
                        raise ConfigError(f"{where}: {archive} is not in {package} {version}")
                    if member is not None:
                        data = read_entry(src, member)
                        src = Path(tmp) / f".member-{name}"
                        src.write_bytes(data)
                    w, h, ow, oh = _convert(src, root / name, int(max_side))
                    records.append(
                        PhotoRecord(
                            file=name,
                            package=package,
                            version=version,
                            path_in_package=entry.path_in_package,
                            license=entry.license,
                            sha256=_sha256(root / name),
                            width=w,
                            height=h,
                            split=splits[name],
                            orig_width=ow,
                            orig_height=oh,
                        )
                    )
                    bar.update(1)
    finally:
        bar.close()

    current = {r.file for r in records}
    for stale in set(old) - current:  # files of an earlier list that are no longer wanted
        (root / stale).unlink(missing_ok=True)
    _write_sources(sources, records)
    return load_corpus(root)


def main_photos(
    dest: str | os.PathLike[str],
    list_file: str | os.PathLike[str] | None = None,
    max_side: int = 2048,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> int:
    """CLI entry (``aioir data photos DEST``): build the corpus, print a summary, return 0 or 1."""
    start = time.perf_counter()
    try:
        corpus = build_photo_corpus(dest, list_file, max_side, cache_dir, progress)
    except AioirError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    counts = ", ".join(f"{s} {len(corpus.split(s))}" for s in SPLITS)
    size_mb = corpus.total_bytes() / 1e6
    print(
        f"photo corpus: {len(corpus)} images ({counts}), {size_mb:.1f} MB in {corpus.root} "
        f"[{time.perf_counter() - start:.1f} s]; provenance in {corpus.root / SOURCES_FILE}"
    )
    return 0
