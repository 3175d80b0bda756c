"""Named benchmarks: declarative descriptions of which test cases a paper's table is made of.

A :class:`Benchmark` turns a data root into :class:`Column` objects — one per table column
(``SOTS``, ``Rain100L``, ``σ15`` …) — and each column yields :class:`Case` objects: the degraded
input, the ground truth (or ``None`` for real-world sets without it) and metadata. Registered
names (:func:`get_benchmark`):

``promptir-3task``
    SOTS-outdoor, Rain100L, CBSD68 σ 15/25/50 on the PromptIR tree (``docs/datasets.md`` §2):
    500 + 100 + 3 × 68 = 804 cases.
``promptir-5task``
    SOTS-outdoor, Rain100L, CBSD68 σ 25, GoPro, LOL-v1: 500 + 100 + 68 + 1,111 + 15 = 1,794.
``udair-source`` / ``udair-target``
    UDAIR's five source test sets / five real-world target sets on the ``udair`` tree (§3);
    URHI and LIME have no ground truth and are scored with NIQE only.
``paired:DIR[:TASK]``
    any ``DIR/input`` ↔ ``DIR/target`` folders (same stem); ``TASK`` tells ``classical:auto``
    which method to use.
``synthetic:DIR[:TASKS]``
    clean photos degraded on the fly, one column per task (comma-separated; default the six
    tasks noise, rain, haze, lowlight, blur, underwater). ``DIR`` is a folder of clean images or
    a photo corpus built by ``aioir data photos`` (its ``test`` split is used).

**Seeded test degradations.** Noisy CBSD68 inputs are ``GaussianNoise(σ, quantize=True)`` (8-bit
clean image + σ·N(0, 1), clipped, 8-bit) drawn with the generator seeded by
``seed_from_name(file name, σ)``; synthetic inputs are drawn by
:class:`~aioir.data.synthetic.SyntheticDegradationDataset` with ``deterministic=True`` (seed from
task and file name; the degradation of the task and its severity — uniform inside the
``moderate`` tier by default — are drawn per image). Both depend only on the file name, never on
listing order or on the method, so every run and every method sees the same inputs.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import torch

from aioir.errors import AioirError, ConfigError, DatasetLayoutError
from aioir.tasks import CORE_TASKS, TASKS, canonical_task

__all__ = [
    "BENCHMARKS",
    "DEFAULT_SYNTHETIC_TASKS",
    "Benchmark",
    "Case",
    "Column",
    "ColumnSpec",
    "CountReport",
    "LayoutBenchmark",
    "PairedBenchmark",
    "SyntheticBenchmark",
    "get_benchmark",
    "list_benchmarks",
    "noisy_input",
]

#: Tasks of ``synthetic:DIR`` when none are given.
DEFAULT_SYNTHETIC_TASKS: tuple[str, ...] = CORE_TASKS

Rounding = Literal["round", "truncate"]


@dataclasses.dataclass(frozen=True)
class Case:
    """One test case: ``input``/``target`` are 3×H×W float32 tensors in [0, 1].

    ``dataset`` is the column key, ``name`` the image's path relative to its folder, ``task`` the
    restoration task (``""`` when unknown), ``meta`` what the benchmark knows (e.g. ``sigma``).
    """

    dataset: str
    name: str
    task: str
    input: torch.Tensor
    target: torch.Tensor | None
    meta: Mapping[str, Any] = dataclasses.field(default_factory=dict)


class Column:
    """One table column: a sized, indexable source of :class:`Case`.

    Args:
        key: short identifier (``sots``, ``bsd68-s25``) used in JSON/CSV.
        title: column heading (``SOTS``, ``σ25``).
        task: restoration task or ``""``.
        size: number of cases found.
        load: ``index -> Case``.
        expected: the protocol's case count, or None when there is none.
        has_target: whether cases carry ground truth.
        source: the folder it reads, for messages.
    """

    def __init__(
        self,
        key: str,
        title: str,
        task: str,
        size: int,
        load: Callable[[int], Case],
        *,
        expected: int | None = None,
        has_target: bool = True,
        source: str = "",
    ) -> None:
        self.key, self.title, self.task = key, title, task
        self.size, self.expected = size, expected
        self.has_target, self.source = has_target, source
        self._load = load

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> Case:
        if not 0 <= index < self.size:
            raise IndexError(f"{self.key}: case {index} out of range ({self.size} cases)")
        return self._load(index)

    def __repr__(self) -> str:
        return f"Column({self.key!r}, {self.size} cases, expected={self.expected})"


@dataclasses.dataclass
class CountReport:
    """Case counts found vs expected; :attr:`short` lists one line per column that is off."""

    benchmark: str
    found: int
    expected: int | None
    short: list[str]

    @property
    def ok(self) -> bool:
        """True when every column and the total match (or nothing is expected)."""
        return not self.short and (self.expected is None or self.found == self.expected)

    def message(self) -> str:
        """One line naming every column that is off and the total."""
        total = f"{self.found:,} cases" + (
            f", expected {self.expected:,}" if self.expected is not None else ""
        )
        return f"{self.benchmark}: " + "; ".join([*self.short, total])


def noisy_input(clean: torch.Tensor, name: str, sigma: float, rounding: Rounding) -> torch.Tensor:
    """The seeded noisy version of a clean 3×H×W image: ``seed_from_name(name, σ)``."""
    from aioir.degradations import make_generator, seed_from_name
    from aioir.degradations.noise import GaussianNoise

    gen = make_generator(seed_from_name(name, round(sigma)))
    noise = GaussianNoise(sigma=float(sigma), quantize=True, rounding=rounding)
    return noise.apply(clean[None].float(), gen)[0].clamp_(0.0, 1.0)


class Benchmark(abc.ABC):
    """A named set of columns. Subclasses are small declarative dataclasses."""

    name: str
    description: str
    #: the metric protocol used when none is given
    default_protocol: str = "clean"
    #: total cases the protocol expects (None: no count check)
    expected_total: int | None = None
    #: whether a ``--data-root`` is needed
    needs_root: bool = True

    @abc.abstractmethod
    def columns(self, root: Path | None, *, noise_rounding: Rounding = "round") -> list[Column]:
        """Build the columns from the data under ``root`` (DatasetLayoutError if it is wrong)."""

    def notes(self, noise_rounding: Rounding = "round") -> list[str]:
        """Lines printed under the protocol header: how the inputs were made."""
        return []

    def check_counts(self, columns: Sequence[Column]) -> CountReport:
        """Compare the columns' sizes with the expected counts."""
        short = [
            f"{c.key} has {c.size:,} images, expected {c.expected:,} ({c.source})"
            for c in columns
            if c.expected is not None and c.size != c.expected
        ]
        found = sum(c.size for c in columns)
        return CountReport(self.name, found, self.expected_total, short)


def _require_root(root: Path | None, benchmark: str) -> Path:
    if root is None:
        raise ConfigError(f"benchmark {benchmark} needs --data-root (the dataset root folder)")
    root = Path(root)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "dataset root does not exist"
        raise DatasetLayoutError(f"{root}: {what}")
    return root


def _paired_column(
    key: str,
    title: str,
    task: str,
    folder: Path,
    input_dir: str,
    target_dir: str,
    pairing: str,
    expected: int | None,
    recursive: bool = False,
    label: str = "",
) -> Column:
    from aioir.data.folders import PairedFolderDataset

    ds = PairedFolderDataset(
        folder, input_dir, target_dir, task=task, pairing=pairing, recursive=recursive
    )

    def load(i: int) -> Case:
        item = ds[i]
        return Case(key, str(item["name"]), task, item["input"], item["target"], {})

    return Column(key, title, task, len(ds), load, expected=expected, source=label or str(folder))


def _image_column(
    key: str, title: str, task: str, folder: Path, expected: int | None, label: str = ""
) -> Column:
    """Real degraded images without ground truth."""
    from aioir.data.folders import UnpairedFolderDataset

    ds = UnpairedFolderDataset(folder)

    def load(i: int) -> Case:
        item = ds[i]
        return Case(key, str(item["name"]), task, item["input"], None, {})

    return Column(
        key,
        title,
        task,
        len(ds),
        load,
        expected=expected,
        has_target=False,
        source=label or str(folder),
    )


def _noise_column(
    key: str,
    title: str,
    folder: Path,
    sigma: float,
    rounding: Rounding,
    expected: int | None,
    label: str = "",
) -> Column:
    """Clean images + seeded 8-bit Gaussian noise of ``sigma`` (0–255 scale)."""
    from aioir.data.folders import UnpairedFolderDataset

    ds = UnpairedFolderDataset(folder)

    def load(i: int) -> Case:
        item = ds[i]
        clean, name = item["input"], str(item["name"])
        meta = {"sigma": float(sigma), "rounding": rounding}
        return Case(key, name, "noise", noisy_input(clean, name, sigma, rounding), clean, meta)

    return Column(
        key, title, "noise", len(ds), load, expected=expected, source=label or str(folder)
    )


@dataclasses.dataclass(frozen=True)
class ColumnSpec:
    """One column of a :class:`LayoutBenchmark`.

    ``part``: the layout part's path (``test/dehaze``); ``kind``: ``paired``, ``noise`` (clean
    part + seeded noise of ``sigma``) or ``images`` (no ground truth); ``expected``: the case
    count (None: unchecked).
    """

    key: str
    title: str
    part: str
    kind: Literal["paired", "noise", "images"] = "paired"
    sigma: float | None = None
    expected: int | None = None


@dataclasses.dataclass(frozen=True)
class LayoutBenchmark(Benchmark):
    """Columns read from the parts of a registered :mod:`aioir.data.layouts` layout."""

    name: str
    description: str
    layout: str
    specs: tuple[ColumnSpec, ...]
    default_protocol: str = "clean"
    expected_total: int | None = None
    needs_root: bool = True

    def with_counts(
        self, counts: Mapping[str, int | None], total: int | Literal["sum"] | None = "sum"
    ) -> LayoutBenchmark:
        """A copy with the expected counts of the given column keys replaced (tests, subsets).

        ``total="sum"`` recomputes the expected total from the columns (None if any is None).
        """
        keys = {s.key for s in self.specs}
        unknown = sorted(set(counts) - keys)
        if unknown:
            raise ConfigError(f"{self.name}: unknown columns {unknown}; columns: {sorted(keys)}")
        specs = tuple(
            dataclasses.replace(s, expected=counts[s.key]) if s.key in counts else s
            for s in self.specs
        )
        if total == "sum":
            values = [s.expected for s in specs]
            total = None if any(v is None for v in values) else sum(values)  # type: ignore[misc]
        return dataclasses.replace(self, specs=specs, expected_total=total)

    def columns(self, root: Path | None, *, noise_rounding: Rounding = "round") -> list[Column]:
        from aioir.data.layouts import get_layout

        root = _require_root(root, self.name)
        layout = get_layout(self.layout)
        out: list[Column] = []
        problems: list[str] = []
        for spec in self.specs:
            part = layout.part(spec.part)
            folder = root / part.path
            task = part.task or ""
            try:
                if spec.kind == "noise":
                    if spec.sigma is None:
                        raise ConfigError(f"{self.name}: column {spec.key} needs a sigma")
                    col = _noise_column(
                        spec.key,
                        spec.title,
                        folder,
                        spec.sigma,
                        noise_rounding,
                        spec.expected,
                        part.path,
                    )
                elif spec.kind == "images":
                    col = _image_column(
                        spec.key, spec.title, task, folder, spec.expected, part.path
                    )
                else:
                    col = _paired_column(
                        spec.key,
                        spec.title,
                        task,
                        folder,
                        part.input_dir,
                        part.target_dir,
                        part.pairing,
                        spec.expected,
                        part.recursive,
                        part.path,
                    )
            except AioirError as exc:
                problems.append(str(exc))
                continue
            out.append(col)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise DatasetLayoutError(
                f"{self.name} under {root}: {problems[0]}{more}; check the tree with "
                f"`aioir data check {root} --layout {self.layout}`"
            )
        return out

    def notes(self, noise_rounding: Rounding = "round") -> list[str]:
        sigmas = [s.sigma for s in self.specs if s.kind == "noise"]
        lines = []
        if sigmas:
            how = (
                "truncated to uint8 as PromptIR's code does (−0.5 DN bias)"
                if noise_rounding == "truncate"
                else "rounded to 8 bit"
            )
            levels = "/".join(f"{s:g}" for s in sigmas)
            lines.append(
                f"noisy inputs: clean image + σ·N(0,1), σ = {levels} (0–255), clipped, {how}; "
                "seed = seed_from_name(file name, σ)"
            )
        no_gt = [s.title for s in self.specs if s.kind == "images"]
        if no_gt:
            lines.append(f"no ground truth (NIQE only): {', '.join(no_gt)}")
        return lines


@dataclasses.dataclass(frozen=True)
class PairedBenchmark(Benchmark):
    """``paired:DIR[:TASK]``: ``DIR/input`` ↔ ``DIR/target`` (same stem, any suffix)."""

    folder: Path
    task: str = ""
    input_dir: str = "input"
    target_dir: str = "target"
    default_protocol: str = "clean"
    expected_total: int | None = None
    needs_root: bool = False

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"paired:{self.folder}" + (f":{self.task}" if self.task else "")

    @property
    def description(self) -> str:  # type: ignore[override]
        return f"{self.input_dir}/ and {self.target_dir}/ under {self.folder}, paired by stem"

    def columns(self, root: Path | None, *, noise_rounding: Rounding = "round") -> list[Column]:
        folder = self.folder if root is None else Path(root) / self.folder
        if not folder.is_dir():
            what = "is not a folder" if folder.exists() else "folder does not exist"
            raise DatasetLayoutError(f"{folder}: {what} (benchmark {self.name})")
        key = folder.resolve().name or "data"
        return [
            _paired_column(
                key, key, self.task, folder, self.input_dir, self.target_dir, "stem", None
            )
        ]


@dataclasses.dataclass(frozen=True)
class SyntheticBenchmark(Benchmark):
    """``synthetic:DIR[:TASKS]``: clean photos degraded on the fly, one column per task.

    ``severity``: a tier (``mild``/``moderate``/``severe``, drawn uniformly inside the tier per
    image), ``"random"`` or a float in [0, 1] (fixed). ``crop``: side of a per-image seeded crop
    (None: whole images). ``seed``: base seed of every per-image generator.
    """

    folder: Path
    tasks: tuple[str, ...] = DEFAULT_SYNTHETIC_TASKS
    severity: str | float = "moderate"
    crop: int | None = None
    seed: int = 0
    default_protocol: str = "clean"
    expected_total: int | None = None
    needs_root: bool = False

    @property
    def name(self) -> str:  # type: ignore[override]
        tasks = "" if self.tasks == DEFAULT_SYNTHETIC_TASKS else ":" + ",".join(self.tasks)
        return f"synthetic:{self.folder}{tasks}"

    @property
    def description(self) -> str:  # type: ignore[override]
        return f"clean photos in {self.folder} degraded on the fly ({', '.join(self.tasks)})"

    def images(self, root: Path | None = None) -> list[Path]:
        """The clean images: a photo corpus's ``test`` split, or every image in the folder
        (also when its ``SOURCES.tsv`` is not a corpus's, e.g. the shipped sample photos)."""
        from aioir.data.photos import is_photo_corpus, load_corpus
        from aioir.io import list_images

        folder = self.folder if root is None else Path(root) / self.folder
        if not folder.is_dir():
            what = "is not a folder" if folder.exists() else "folder does not exist"
            raise DatasetLayoutError(f"{folder}: {what} (benchmark {self.name})")
        if is_photo_corpus(folder):
            paths = load_corpus(folder).split("test")
        else:
            paths = list_images(folder)
        if not paths:
            raise DatasetLayoutError(f"{folder}: no clean images (benchmark {self.name})")
        return paths

    def columns(self, root: Path | None, *, noise_rounding: Rounding = "round") -> list[Column]:
        from aioir.data.synthetic import SyntheticDegradationDataset

        paths = self.images(root)
        try:  # one dataset for every task: each photo is decoded and cached once
            ds = SyntheticDegradationDataset(
                paths,
                list(self.tasks),
                patch_size=self.crop,
                severity=self.severity,
                seed=self.seed,
                deterministic=True,
            )
        except ConfigError as exc:
            raise ConfigError(f"benchmark {self.name}: {exc}") from None
        out = []
        for t, task in enumerate(self.tasks):
            # item seeds depend on (task, file name), not on the task's position
            def load(i: int, task: str = task, offset: int = t * ds.per_task) -> Case:
                item = ds[offset + i]
                meta = {"severity": self.severity, "seed": ds.item_seed(offset + i)}
                return Case(task, str(item["name"]), task, item["input"], item["target"], meta)

            out.append(Column(task, task, task, ds.per_task, load, source=str(self.folder)))
        return out

    def notes(self, noise_rounding: Rounding = "round") -> list[str]:
        sev = (
            f"severity uniform inside the '{self.severity}' tier per image"
            if isinstance(self.severity, str) and self.severity != "random"
            else f"severity {self.severity}"
        )
        crop = f"seeded {self.crop}×{self.crop} crop per image" if self.crop else "whole images"
        return [
            f"synthetic inputs: every registered degradation of each task, drawn per image; {sev}; "
            f"{crop}; seed = seed_from_name('task/file name/0', {self.seed})"
        ]


def _promptir(name: str, five: bool) -> LayoutBenchmark:
    sots = ColumnSpec("sots", "SOTS", "test/dehaze", expected=500)
    rain = ColumnSpec("rain100l", "Rain100L", "test/derain/Rain100L", expected=100)

    def noise(s: int, title: str) -> ColumnSpec:
        return ColumnSpec(f"bsd68-s{s}", title, "test/denoise/bsd68", "noise", s, 68)

    if five:
        specs = (
            sots,
            rain,
            noise(25, "BSD68 σ25"),
            ColumnSpec("gopro", "GoPro", "test/deblur/gopro", expected=1111),
            ColumnSpec("lol", "LOL", "test/enhance/lol", expected=15),
        )
        layout, total, desc = (
            "promptir-5task",
            1794,
            "5-task: SOTS, Rain100L, CBSD68 σ25, GoPro, LOL-v1",
        )
    else:
        specs = (sots, rain, noise(15, "σ15"), noise(25, "σ25"), noise(50, "σ50"))
        layout, total, desc = "promptir-3task", 804, "3-task: SOTS, Rain100L, CBSD68 σ15/25/50"
    return LayoutBenchmark(name, desc, layout, specs, "promptir", total)


def _udair_source() -> LayoutBenchmark:
    specs = (
        ColumnSpec("denoising", "SIDD", "test/denoising", expected=336),
        ColumnSpec("dehazing", "OTS", "test/dehazing", expected=561),
        ColumnSpec("deraining", "RealRain-1k", "test/deraining", expected=448),
        ColumnSpec("low-light", "LOL", "test/low-light", expected=200),
        ColumnSpec("underwater", "UIEB", "test/underwater", expected=190),
    )
    return LayoutBenchmark(
        "udair-source",
        "UDAIR source test sets: SIDD, OTS subset, RealRain-1k, LOL mix, UIEB (native size)",
        "udair",
        specs,
        "udair",
        1735,
    )


def _udair_target() -> LayoutBenchmark:
    specs = (
        ColumnSpec("denoising_polyu", "PolyU", "test/denoising_polyu"),
        ColumnSpec("dehazing_urhi", "URHI", "test/dehazing_urhi/images", "images"),
        ColumnSpec("deraining_lhp", "LHP-Rain", "test/deraining_lhp"),
        ColumnSpec("low-light_lime", "LIME", "test/low-light_lime/images", "images"),
        ColumnSpec("underwater_ufo", "UFO-120", "test/underwater_ufo"),
    )
    return LayoutBenchmark(
        "udair-target",
        "UDAIR real-world target sets: PolyU, URHI, LHP-Rain, LIME, UFO (native size)",
        "udair",
        specs,
        "udair",
        None,
    )


#: The named benchmarks (``paired:`` and ``synthetic:`` are parsed by :func:`get_benchmark`).
BENCHMARKS: dict[str, LayoutBenchmark] = {
    b.name: b
    for b in (
        _promptir("promptir-3task", five=False),
        _promptir("promptir-5task", five=True),
        _udair_source(),
        _udair_target(),
    )
}


def list_benchmarks() -> list[str]:
    """Registered names plus the two parametrised forms."""
    return [*BENCHMARKS, "paired:DIR[:TASK]", "synthetic:DIR[:TASKS]"]


def get_benchmark(spec: str | Benchmark, *, crop: int | None = None) -> Benchmark:
    """A benchmark from its name or ``paired:DIR[:TASK]`` / ``synthetic:DIR[:TASKS]``.

    ``crop`` applies to ``synthetic:`` only (side of a seeded per-image crop).
    """
    if isinstance(spec, Benchmark):
        return spec
    text = str(spec).strip()
    if text in BENCHMARKS:
        return BENCHMARKS[text]
    kind, sep, rest = text.partition(":")
    if sep and kind in ("paired", "synthetic") and rest:
        folder, _, extra = rest.partition(":")
        extra = ",".join(canonical_task(t) for t in extra.split(",")) if extra else extra
        if kind == "paired":
            if extra and extra not in TASKS:
                raise ConfigError(
                    f"benchmark {text}: unknown task {extra!r}; tasks: {', '.join(TASKS)}"
                )
            return PairedBenchmark(Path(folder), extra)
        tasks = tuple(t.strip() for t in extra.split(",") if t.strip()) or DEFAULT_SYNTHETIC_TASKS
        bad = [t for t in tasks if t not in TASKS]
        if bad:
            raise ConfigError(f"benchmark {text}: unknown tasks {bad}; tasks: {', '.join(TASKS)}")
        if crop is not None and crop < 8:
            raise ConfigError(f"--crop must be at least 8 px, not {crop}")
        return SyntheticBenchmark(Path(folder), tasks, crop=crop)
    raise ConfigError(f"unknown benchmark {text!r}; expected one of {', '.join(list_benchmarks())}")
