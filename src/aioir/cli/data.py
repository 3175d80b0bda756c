"""``aioir data …``: check dataset layouts, list them, build the offline photo corpus."""

from __future__ import annotations

import argparse
from pathlib import Path

from aioir.cli import _options as options


def _check(args: argparse.Namespace) -> int:
    from aioir.data.layouts import get_layout, main_check
    from aioir.errors import ConfigError

    try:
        layout = get_layout(args.layout)
    except ConfigError as exc:  # an unknown --layout is a usage error, as argparse's are
        return options.fail("data check", str(exc), 2)
    return main_check(args.root, layout, strict=not args.no_strict_counts)


def _layouts(args: argparse.Namespace) -> int:
    from aioir.data.layouts import LAYOUTS

    for name, layout in LAYOUTS.items():
        print(f"{name:16s} {layout.description}")
    return 0


def _photos(args: argparse.Namespace) -> int:
    from aioir.data.photos import main_photos

    return main_photos(
        args.dest,
        list_file=args.list,
        max_side=args.max_side,
        cache_dir=args.cache_dir,
        progress=not args.no_progress,
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``data`` command group."""
    data_sub = options.add_command_group(
        sub,
        "data",
        "datasets: check layouts, build the offline photo corpus",
        dest="data_command",
        metavar="DATA_COMMAND",
    )

    check = options.add_command(
        data_sub,
        "check",
        _check,
        "validate a dataset folder against a standard layout",
        "Validate ROOT against a named layout and say exactly what is missing.",
    )
    check.add_argument("root", type=Path, help="dataset root folder")
    check.add_argument("--layout", required=True, help="layout name (see `aioir data layouts`)")
    check.add_argument(
        "--no-strict-counts",
        action="store_true",
        help="report file-count mismatches as notes instead of problems",
    )

    options.add_command(data_sub, "layouts", _layouts, "list the known dataset layouts")

    photos = options.add_command(
        data_sub,
        "photos",
        _photos,
        "build the offline photo corpus from Debian packages",
        "Download the Debian packages that ship the photos in the list, extract them, "
        "normalise names, write SOURCES.tsv with licences and a fixed train/val/test split.",
    )
    photos.add_argument("dest", type=Path, help="destination folder")
    photos.add_argument(
        "--list",
        type=Path,
        default=None,
        help="TSV of package/path/licence[/split], or a shipped list: photos (default), photos-v4, "
        "photos-v4-val2",
    )
    photos.add_argument(
        "--max-side", type=int, default=2048, help="down-scale larger photos (default 2048)"
    )
    photos.add_argument(
        "--cache-dir", type=Path, default=None, help="where downloaded .deb files are kept"
    )
    options.add_no_progress_argument(photos)
