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
    tasks noise, rain, haze, lowlight, blur, underwater; ``a+b`` is a composite task). ``DIR``
    is a folder of clean images or a photo corpus built by ``aioir data photos`` (its ``test``
    split is used).
``composite:DIR[:COMBOS]``
    a CDD-11-like composite-degradation benchmark on the same photos: one column per
    combination (comma-separated, components joined by ``+``), each component drawn per image
    and the chain applied in physical order (haze → rain → blur → low light → noise). Default:
    :data:`CDD11_LIKE_COMBOS`, CDD-11's eleven combinations of low light, haze, rain and snow
    with **noise in place of snow** (aioir has no snow degradation); seeded 256×256 crops
    (``--crop`` changes the side).
``photo-tasks:DIR[:COLUMNS]``
    aioir's per-task bar: seeded 256×256 crops (two per photo) of the clean photos in ``DIR`` (a
    photo corpus's ``test`` split), one column per restoration goal, each made by exactly one
    pinned degradation — Gaussian noise σ 15 / 25 / 50 (8-bit, σ known to the methods as
    ``meta["sigma"]``), camera noise (signal-dependent + JPEG, σ not given), haze, low light,
    rain, underwater, camera-shake motion blur, and ``clean`` (input = target). ``COLUMNS``
    selects some of them (comma-separated keys, :data:`PHOTO_TASK_COLUMNS`).

**Seeded test degradations.** Noisy CBSD68 inputs are ``GaussianNoise(σ, quantize=True)`` (8-bit
clean image + σ·N(0, 1), clipped, 8-bit) drawn with the generator seeded by
``seed_from_name(file name, σ)``; synthetic inputs are drawn by
:class:`~aioir.data.synthetic.SyntheticDegradationDataset` with ``deterministic=True`` (seed from
task and file name; the degradation of the task and its severity — uniform inside the
``moderate`` tier by default — are drawn per image). Both depend only on the file name, never on
listing order or on the method, so every run and every method sees the same inputs.

**photo-tasks.** Every column of ``photo-tasks:DIR`` reads the same crops: crop ``k`` of photo
``P`` has its top-left corner drawn with ``seed_from_name('crop/P/k')`` (photos smaller than the
crop are bicubic-upscaled first), and its case name is ``<stem>@<k><suffix>``. The Gaussian
columns add ``GaussianNoise(σ, quantize=True)`` seeded by ``seed_from_name(case name, σ)`` (the
CBSD68 protocol above). Every other column draws its degradation's parameters at a severity
uniform inside the ``moderate`` tier (camera noise: then JPEG inside the ``mild`` tier, quality
67–95, as a camera writes it) from ``seed_from_name('<column>/<case name>')``, applied to the crop
with 16 px of real context that is cut away afterwards (blur kernels see no artificial border).
Cases are ordered crop-major (all photos' crop 0, then crop 1), so ``--limit N`` with N = the
number of photos evaluates one crop of every photo. Inputs depend only on the photo's file name,
its pixels, the crop side and ``k`` — never on the method or the listing order.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from aioir.errors import AioirError, ConfigError, DatasetLayoutError
from aioir.tasks import CORE_TASKS, TASKS, canonical_task

__all__ = [
    "BENCHMARKS",
    "CDD11_LIKE_COMBOS",
    "COMPOSITE_CROP",
    "DEFAULT_SYNTHETIC_TASKS",
    "PHOTO_TASK_COLUMNS",
    "Benchmark",
    "Case",
    "Column",
    "ColumnSpec",
    "CompositeBenchmark",
    "CountReport",
    "LayoutBenchmark",
    "PairedBenchmark",
    "PhotoTaskColumn",
    "PhotoTasksBenchmark",
    "SyntheticBenchmark",
    "get_benchmark",
    "list_benchmarks",
    "noisy_input",
]

#: Tasks of ``synthetic:DIR`` when none are given.
DEFAULT_SYNTHETIC_TASKS: tuple[str, ...] = CORE_TASKS

#: Columns of ``composite:DIR``: CDD-11's 11 combinations (4 single, 5 pairs, 2 triples of low
#: light, haze, rain, snow) with noise standing in for snow, which aioir does not synthesise.
CDD11_LIKE_COMBOS: tuple[str, ...] = (
    "lowlight",
    "haze",
    "rain",
    "noise",
    "lowlight+haze",
    "lowlight+rain",
    "lowlight+noise",
    "haze+rain",
    "haze+noise",
    "lowlight+haze+rain",
    "lowlight+haze+noise",
)

#: Side of ``composite:DIR``'s seeded crops when ``--crop`` is not given.
COMPOSITE_CROP = 256

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

    if TYPE_CHECKING:
        # read-only here: a subclass gives each as a dataclass field (LayoutBenchmark) or as a
        # property computed from its fields (PairedBenchmark, SyntheticBenchmark, …)
        @property
        def name(self) -> str: ...
        @property
        def description(self) -> str: ...

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


def _clean_photos(folder: Path, benchmark: str) -> list[Path]:
    """A photo corpus's ``test`` split, or every image in ``folder`` (DatasetLayoutError if
    there is none)."""
    from aioir.data.photos import is_photo_corpus, load_corpus
    from aioir.io import list_images

    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "folder does not exist"
        raise DatasetLayoutError(f"{folder}: {what} (benchmark {benchmark})")
    paths = load_corpus(folder).split("test") if is_photo_corpus(folder) else list_images(folder)
    if not paths:
        raise DatasetLayoutError(f"{folder}: no clean images (benchmark {benchmark})")
    return paths


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
            known = [s.expected for s in specs if s.expected is not None]
            total = sum(known) if len(known) == len(specs) else None
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
    def name(self) -> str:
        return f"paired:{self.folder}" + (f":{self.task}" if self.task else "")

    @property
    def description(self) -> str:
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
    #: crop each photo at the same place in every column (see SyntheticDegradationDataset)
    shared_crops: bool = False

    @property
    def name(self) -> str:
        tasks = "" if self.tasks == DEFAULT_SYNTHETIC_TASKS else ":" + ",".join(self.tasks)
        return f"synthetic:{self.folder}{tasks}"

    @property
    def description(self) -> str:
        return f"clean photos in {self.folder} degraded on the fly ({', '.join(self.tasks)})"

    def images(self, root: Path | None = None) -> list[Path]:
        """The clean images: a photo corpus's ``test`` split, or every image in the folder
        (also when its ``SOURCES.tsv`` is not a corpus's, e.g. the shipped sample photos)."""
        return _clean_photos(self.folder if root is None else Path(root) / self.folder, self.name)

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
                shared_crops=self.shared_crops,
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


@dataclasses.dataclass(frozen=True)
class CompositeBenchmark(SyntheticBenchmark):
    """``composite:DIR[:COMBOS]``: clean photos with composite degradations, one column per
    combination (``lowlight+haze``; a single task is a column too). Each component's degradation
    and severity are drawn per image (``severity`` tier) and the chain is applied in physical
    order (haze → rain → blur → low light → noise → jpeg); seeded crops of side ``crop``, at
    the same place in every column (as CDD-11 shows each scene under all its degradations).
    """

    tasks: tuple[str, ...] = CDD11_LIKE_COMBOS
    crop: int | None = COMPOSITE_CROP
    shared_crops: bool = True

    @property
    def name(self) -> str:
        combos = "" if self.tasks == CDD11_LIKE_COMBOS else ":" + ",".join(self.tasks)
        return f"composite:{self.folder}{combos}"

    @property
    def description(self) -> str:
        return f"composite degradations of the clean photos in {self.folder} ({len(self.tasks)} combinations)"

    def notes(self, noise_rounding: Rounding = "round") -> list[str]:
        lines = super().notes(noise_rounding)
        if self.crop:
            lines.append("each photo is cropped at the same place in every column")
        lines.append(
            "composite inputs: one degradation per component, each with its own severity draw, "
            "applied in physical order haze → rain → blur → low light → noise"
        )
        if self.tasks == CDD11_LIKE_COMBOS:
            lines.append(
                "CDD-11-like: CDD-11's 11 combinations with noise in place of snow (no snow "
                "degradation); synthetic, not CDD-11's images"
            )
        return lines


@dataclasses.dataclass(frozen=True)
class PhotoTaskColumn:
    """One column of ``photo-tasks:DIR``: how its inputs are made from the clean crops.

    ``degradations``: ``(registered name, severity tier)`` pairs applied in order (none: the
    input is the clean crop); ``sigma``: 8-bit Gaussian noise of this σ (0–255), given to the
    methods as ``meta["sigma"]``, instead of ``degradations``.
    """

    key: str
    title: str
    task: str
    degradations: tuple[tuple[str, str], ...] = ()
    sigma: float | None = None

    def describe(self) -> str:
        """One phrase for the notes: what made this column's inputs."""
        if self.sigma is not None:
            return f"GaussianNoise(σ {self.sigma:g}, 8-bit, σ known)"
        if not self.degradations:
            return "none (input = target)"
        return " → ".join(f"{name} ({tier})" for name, tier in self.degradations)


#: The columns of ``photo-tasks:DIR``, in table order (the rows of the default model's goal).
PHOTO_TASK_COLUMNS: tuple[PhotoTaskColumn, ...] = (
    PhotoTaskColumn("s15", "σ15", "noise", sigma=15.0),
    PhotoTaskColumn("s25", "σ25", "noise", sigma=25.0),
    PhotoTaskColumn("s50", "σ50", "noise", sigma=50.0),
    PhotoTaskColumn(
        "camera-noise", "camera noise", "noise", (("camera_noise", "moderate"), ("jpeg", "mild"))
    ),
    PhotoTaskColumn("haze", "haze", "haze", (("haze", "moderate"),)),
    PhotoTaskColumn("lowlight", "low light", "lowlight", (("low_light", "moderate"),)),
    PhotoTaskColumn("rain", "rain", "rain", (("rain", "moderate"),)),
    PhotoTaskColumn("underwater", "underwater", "underwater", (("underwater", "moderate"),)),
    PhotoTaskColumn("motion-blur", "motion blur", "blur", (("motion_blur", "moderate"),)),
    PhotoTaskColumn("clean", "clean", "clean"),
)


class _PhotoCrops:
    """The seeded crops of ``photo-tasks``: decoded once per photo, shared by every column.
    With ``whole_side`` each photo is one case instead: the whole photo, its long side
    resized to ``whole_side`` (never up-scaled). With ``rendering`` (a key of
    :data:`PHOTO_RENDERINGS`) every photo is first rendered so, and that is the clean target."""

    def __init__(
        self,
        paths: Sequence[Path],
        crop: int,
        crops_per_photo: int,
        margin: int,
        whole_side: int | None = None,
        rendering: str | None = None,
    ):
        self.paths, self.crop, self.margin, self.whole_side = list(paths), crop, margin, whole_side
        self.rendering = rendering
        self.per_photo = 1 if whole_side else crops_per_photo
        self._cache: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.paths) * self.per_photo

    def locate(self, index: int) -> tuple[Path, int]:
        """``(photo, crop number)`` of case ``index`` (crop-major order)."""
        k, j = divmod(index, len(self.paths))
        return self.paths[j], k

    def case_name(self, photo: Path, k: int) -> str:
        if self.whole_side:
            return f"{photo.stem}@{self.whole_side}px{photo.suffix}"
        return f"{photo.stem}@{k}{photo.suffix}"

    def _photo(self, j: int) -> torch.Tensor:
        cached = self._cache.get(j)
        if cached is None:
            from aioir.data.transforms import ensure_min_size
            from aioir.io import read_image

            rgb = torch.from_numpy(read_image(self.paths[j])).permute(2, 0, 1).float()
            if self.whole_side:
                rgb = _fit_long_side(rgb, self.whole_side)
            else:
                rgb = ensure_min_size(rgb, self.crop)
            if self.rendering:
                rgb = PHOTO_RENDERINGS[self.rendering](rgb[None])[0]
            cached = rgb.mul(255.0).round_().clamp_(0, 255).to(torch.uint8).contiguous()
            self._cache[j] = cached
        return cached

    def region(self, index: int) -> tuple[torch.Tensor, tuple[int, int, int, int, int, int]]:
        """Crop ``index`` with up to ``margin`` px of context: ``(1×3×h×w region in [0, 1],
        (top, left) of the crop in the photo, (dt, dl) of the crop in the region, (height,
        width) of the crop)``; with ``whole_side``, the whole (resized) photo."""
        from aioir.data.transforms import random_crop_box
        from aioir.degradations import make_generator, seed_from_name

        photo, k = self.locate(index)
        img = self._photo(index % len(self.paths))
        _, h, w = img.shape
        if self.whole_side:
            return img.float().div(255.0)[None], (0, 0, 0, 0, h, w)
        gen = make_generator(seed_from_name(f"crop/{photo.name}/{k}"))
        top, left = random_crop_box(h, w, self.crop, gen)
        t0, l0 = max(0, top - self.margin), max(0, left - self.margin)
        t1 = min(h, top + self.crop + self.margin)
        l1 = min(w, left + self.crop + self.margin)
        region = img[:, t0:t1, l0:l1].float().div_(255.0)[None]
        return region, (top, left, top - t0, left - l0, self.crop, self.crop)


def _transform(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """``aioir.data.transforms.<name>`` at its defaults, imported on first use (the data
    package is not needed to evaluate without a rendering)."""

    def render(images: torch.Tensor) -> torch.Tensor:
        from aioir.data import transforms

        return getattr(transforms, name)(images)

    return render


#: renderings of the clean photos that ``photo-tasks`` can apply first (``rendering=``): each
#: B×3×H×W → B×3×H×W. ``pale``: bright, flat and almost grey
#: (:func:`aioir.data.transforms.pale_rendering`, its default look), where a haze detector
#: sees haze in a photo that has none. ``dark``: dim, its exposure scaled down (mean 0.12,
#: :func:`aioir.data.transforms.dark_rendering`), where a low-light enhancer sees
#: under-exposure in a night scene and brightens it. ``defocus``: the whole photo out of
#: focus (a 4-px disk, :func:`aioir.data.transforms.defocus_rendering`), where a deblurring
#: network sees blur in bokeh and invents detail. ``grey``: a black-and-white photo
#: (:func:`aioir.data.transforms.grey_rendering`), the degraded input rendered grey too
#: (:data:`INPUT_RENDERINGS`), so its noise is the same in every channel as in a greyscale file.
#: ``high-key``: bright and near-white with its dark accents kept
#: (:func:`aioir.data.transforms.high_key_rendering`), where a haze detector sees haze again.
#: ``low-key``: dark with its highlights kept (:func:`aioir.data.transforms.low_key_rendering`),
#: a night scene exposed for its lights, where a low-light enhancer brightens it again.
PHOTO_RENDERINGS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "pale": _transform("pale_rendering"),
    "dark": _transform("dark_rendering"),
    "defocus": _transform("defocus_rendering"),
    "grey": _transform("grey_rendering"),
    "high-key": _transform("high_key_rendering"),
    "low-key": _transform("low_key_rendering"),
}
#: renderings applied to the degraded input as well as to the clean photo
INPUT_RENDERINGS = frozenset({"grey"})


def _fit_long_side(image: torch.Tensor, side: int) -> torch.Tensor:
    """``3×H×W`` ``image`` with its long side ``side`` (antialiased bicubic; never up-scaled)."""
    h, w = image.shape[-2:]
    if max(h, w) <= side:
        return image
    scale = side / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    resized = torch.nn.functional.interpolate(
        image[None], size=size, mode="bicubic", antialias=True, align_corners=False
    )
    return resized[0].clamp(0.0, 1.0)


@dataclasses.dataclass(frozen=True)
class PhotoTasksBenchmark(Benchmark):
    """``photo-tasks:DIR[:COLUMNS]``: one column per restoration goal on seeded photo crops.

    ``keys``: keys of :data:`PHOTO_TASK_COLUMNS` (default all, in table order); ``crop``:
    side of the square crops; ``crops_per_photo``: crops per photo (cases per column = photos ×
    this); ``margin``: context kept around a crop while degrading; ``whole_side``: instead of
    crops, every photo whole, its long side resized to this (one case per photo per column);
    ``rendering``: a key of :data:`PHOTO_RENDERINGS` applied to every clean photo first (a
    photo kind the folder lacks, e.g. ``pale``; the degradations draw as for the photo itself).
    """

    folder: Path
    keys: tuple[str, ...] = tuple(c.key for c in PHOTO_TASK_COLUMNS)
    crop: int = 256
    crops_per_photo: int = 2
    margin: int = 16
    whole_side: int | None = None
    rendering: str | None = None
    default_protocol: str = "clean"
    expected_total: int | None = None
    needs_root: bool = False

    def __post_init__(self) -> None:
        known = {c.key for c in PHOTO_TASK_COLUMNS}
        bad = [k for k in self.keys if k not in known]
        if bad or not self.keys:
            raise ConfigError(
                f"benchmark photo-tasks:{self.folder}: unknown columns {bad or '(none given)'}; "
                f"columns: {', '.join(c.key for c in PHOTO_TASK_COLUMNS)}"
            )
        if self.crop < 8:
            raise ConfigError(f"--crop must be at least 8 px, not {self.crop}")
        if self.crops_per_photo < 1:
            raise ConfigError(f"crops per photo must be at least 1, not {self.crops_per_photo}")
        if self.whole_side is not None and self.whole_side < 8:
            raise ConfigError(
                f"whole photos need a long side of at least 8 px, not {self.whole_side}"
            )
        if self.rendering is not None and self.rendering not in PHOTO_RENDERINGS:
            raise ConfigError(
                f"unknown photo rendering {self.rendering!r}; known: {', '.join(PHOTO_RENDERINGS)}"
            )

    @property
    def name(self) -> str:
        every = tuple(c.key for c in PHOTO_TASK_COLUMNS)
        return f"photo-tasks:{self.folder}" + (
            "" if self.keys == every else ":" + ",".join(self.keys)
        )

    @property
    def description(self) -> str:
        if self.whole_side:
            return (
                f"per-task bar on the clean photos in {self.folder}, whole, long side "
                f"{self.whole_side} px"
            )
        return f"per-task bar on seeded {self.crop}² crops of the clean photos in {self.folder}"

    def specs(self) -> list[PhotoTaskColumn]:
        """The selected columns, in the order given."""
        by_key = {c.key: c for c in PHOTO_TASK_COLUMNS}
        return [by_key[k] for k in self.keys]

    def columns(self, root: Path | None, *, noise_rounding: Rounding = "round") -> list[Column]:
        folder = self.folder if root is None else Path(root) / self.folder
        crops = _PhotoCrops(
            _clean_photos(folder, self.name), self.crop, self.crops_per_photo, self.margin,
            self.whole_side, self.rendering,
        )  # fmt: skip
        return [self._column(spec, crops, noise_rounding) for spec in self.specs()]

    def _column(self, spec: PhotoTaskColumn, crops: _PhotoCrops, rounding: Rounding) -> Column:
        from aioir.degradations import (
            degradation_class,
            make_generator,
            seed_from_name,
            severity_from_tier,
        )

        def load(i: int) -> Case:
            region, (top, left, dt, dl, h, w) = crops.region(i)
            photo, k = crops.locate(i)
            name = crops.case_name(photo, k)
            clean = region[0, :, dt : dt + h, dl : dl + w].contiguous()
            box = [top, left, h, w] if self.whole_side else [top, left, h]  # crops: square
            meta: dict[str, Any] = {"photo": photo.name, "crop": k, "box": box}
            if self.rendering:
                meta["rendering"] = self.rendering
            if spec.sigma is not None:
                meta.update(sigma=float(spec.sigma), rounding=rounding)
                degraded = noisy_input(clean, name, spec.sigma, rounding)
            elif spec.degradations:
                gen = make_generator(seed_from_name(f"{spec.key}/{name}"))
                out = region
                for deg_name, tier in spec.degradations:
                    severity = severity_from_tier(tier, gen)
                    out = degradation_class(deg_name).sample(severity, gen).apply(out, gen)
                    out = out.clamp(0.0, 1.0)
                degraded = out[0, :, dt : dt + h, dl : dl + w].contiguous()
                meta["degradations"] = [d for d, _ in spec.degradations]
            else:
                return Case(spec.key, name, spec.task, clean.clone(), clean, meta)
            if self.rendering in INPUT_RENDERINGS:  # (the clean column's input is the target)
                degraded = PHOTO_RENDERINGS[self.rendering](degraded[None])[0]
            return Case(spec.key, name, spec.task, degraded, clean, meta)

        return Column(spec.key, spec.title, spec.task, len(crops), load, source=str(self.folder))

    def notes(self, noise_rounding: Rounding = "round") -> list[str]:
        made = "; ".join(f"{c.title}: {c.describe()}" for c in self.specs())
        inputs = (
            f"every photo whole, long side resized to {self.whole_side} px (antialiased "
            "bicubic, never up-scaled)"
            if self.whole_side
            else f"{self.crops_per_photo} seeded {self.crop}×{self.crop} crop(s) per photo (the "
            "same crops in every column; seed = seed_from_name('crop/photo/k'))"
        )
        return [
            f"photo-tasks inputs: {inputs}, "
            "one pinned degradation per column, severity uniform inside the named tier, seeded "
            f"per case; Gaussian noise {'rounded to 8 bit' if noise_rounding == 'round' else 'truncated to uint8'}, "
            "seed = seed_from_name(case name, σ)",
            f"columns: {made}",
        ] + ([f"every clean photo rendered {self.rendering!r} first (that is the target)"
              + (", and every degraded input after" if self.rendering in INPUT_RENDERINGS
                 else "")]
             if self.rendering else [])  # fmt: skip


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
    """Registered names plus the parametrised forms."""
    return [
        *BENCHMARKS,
        "paired:DIR[:TASK]",
        "synthetic:DIR[:TASKS]",
        "composite:DIR[:COMBOS]",
        "photo-tasks:DIR[:COLUMNS]",
    ]


def _check_tasks(text: str, tasks: Sequence[str]) -> None:
    """ConfigError unless every task (or composite's component) is a known task."""
    from aioir.data.synthetic import composite_parts

    for task in tasks:
        try:
            parts = composite_parts(task) or (task,)
        except ConfigError as exc:
            raise ConfigError(f"benchmark {text}: {exc}") from None
        bad = [p for p in parts if p not in TASKS]
        if bad:
            raise ConfigError(
                f"benchmark {text}: unknown task {bad[0]!r} in {task!r}; tasks: {', '.join(TASKS)}"
            )
    if len(set(tasks)) != len(tasks):
        raise ConfigError(f"benchmark {text}: a column is given twice")


def get_benchmark(
    spec: str | Benchmark,
    *,
    crop: int | None = None,
    whole_side: int | None = None,
    rendering: str | None = None,
) -> Benchmark:
    """A benchmark from its name or ``paired:DIR[:TASK]`` / ``synthetic:DIR[:TASKS]`` /
    ``composite:DIR[:COMBOS]`` / ``photo-tasks:DIR[:COLUMNS]``.

    ``crop`` applies to ``synthetic:`` and ``composite:`` (side of a seeded per-image crop;
    ``composite:`` defaults to :data:`COMPOSITE_CROP`) and ``photo-tasks:`` (side of its crops;
    default 256). ``whole_side`` applies to ``photo-tasks:`` alone: every photo whole, its long
    side resized to that many pixels, instead of crops. ``rendering`` (a key of
    :data:`PHOTO_RENDERINGS`) applies to ``photo-tasks:`` alone: every clean photo rendered so
    first (it is the target).
    """
    if isinstance(spec, Benchmark):
        return spec
    text = str(spec).strip()
    kind, sep, rest = text.partition(":")
    if whole_side is not None and kind != "photo-tasks":
        raise ConfigError(f"benchmark {text}: --whole-side applies to photo-tasks: benchmarks")
    if rendering is not None and kind != "photo-tasks":
        raise ConfigError(f"benchmark {text}: --rendering applies to photo-tasks: benchmarks")
    if text in BENCHMARKS:
        return BENCHMARKS[text]
    if sep and kind == "photo-tasks" and rest:
        folder, _, extra = rest.partition(":")
        keys = tuple(k.strip() for k in extra.split(",") if k.strip())
        return PhotoTasksBenchmark(
            Path(folder),
            keys or tuple(c.key for c in PHOTO_TASK_COLUMNS),
            crop=256 if crop is None else crop,
            whole_side=whole_side,
            rendering=rendering,
        )
    if sep and kind in ("paired", "synthetic", "composite") and rest:
        folder, _, extra = rest.partition(":")
        extra = ",".join(canonical_task(t) for t in extra.split(",")) if extra else extra
        if kind == "paired":
            if extra and extra not in TASKS:
                raise ConfigError(
                    f"benchmark {text}: unknown task {extra!r}; tasks: {', '.join(TASKS)}"
                )
            return PairedBenchmark(Path(folder), extra)
        default = CDD11_LIKE_COMBOS if kind == "composite" else DEFAULT_SYNTHETIC_TASKS
        tasks = tuple(t.strip() for t in extra.split(",") if t.strip()) or default
        _check_tasks(text, tasks)
        if crop is not None and crop < 8:
            raise ConfigError(f"--crop must be at least 8 px, not {crop}")
        if kind == "composite":
            return CompositeBenchmark(Path(folder), tasks, crop=crop or COMPOSITE_CROP)
        return SyntheticBenchmark(Path(folder), tasks, crop=crop)
    raise ConfigError(f"unknown benchmark {text!r}; expected one of {', '.join(list_benchmarks())}")
