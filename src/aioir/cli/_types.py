"""Argument types shared by the command modules: one-line usage errors for bad numbers."""

from __future__ import annotations

import argparse

__all__ = ["non_negative_int", "positive_float", "positive_int", "unit_float"]


def _number(value: str, kind: type[int] | type[float]) -> int | float:
    try:
        return kind(value)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"not {what}: {value!r}") from None


def non_negative_int(value: str) -> int:
    """An integer ≥ 0 (e.g. ``--tile``, where 0 means "never tile")."""
    n = int(_number(value, int))
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {n}")
    return n


def positive_int(value: str) -> int:
    """An integer ≥ 1."""
    n = int(_number(value, int))
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, not {n}")
    return n


def positive_float(value: str) -> float:
    """A number > 0."""
    x = float(_number(value, float))
    if not x > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {x}")
    return x


def unit_float(value: str) -> float:
    """A number in [0, 1] (e.g. ``--strength``)."""
    x = float(_number(value, float))
    if not 0.0 <= x <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {x}")
    return x
