"""Task specifications from configuration: YAML ``data.tasks`` → ``{task: TaskSpec}``.

A task spec names the degradations of one task (and optionally its severity) for
:class:`~aioir.data.synthetic.SyntheticDegradationDataset`. In YAML a degradation is a registered
name or ``{name: …, field: value | [lo, hi]}``; the latter becomes a :class:`ParamDegradation`,
which fixes some of the degradation's parameters or draws them from ranges.

A task named ``a+b[+c]`` is a **composite** of other tasks (``haze+rain: {}`` or just
``haze+rain`` in a list): each item draws one degradation of every component, from the
component's spec in the same mapping (or the registered degradations of a known task), and
applies them in physical order (haze → rain → blur → low light → noise → jpeg). It takes only a
``severity`` (for the components that have none). The name is also its multi-hot label: ABAIR's
estimator term (``mode: multi``) reads ``haze+rain`` as haze and rain.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from aioir.data.synthetic import TaskSpec, composite_parts
from aioir.degradations import degradation_class
from aioir.degradations.base import uniform
from aioir.errors import ConfigError

__all__ = ["ParamDegradation", "fixed_gaussian_noise", "parse_task_specs"]


@dataclasses.dataclass(frozen=True)
class ParamDegradation:
    """A registered degradation whose parameters are partly fixed or drawn from ranges.

    ``params``: ``{field: value}`` or ``{field: [lo, hi]}`` (uniform); other fields come from the
    degradation's own ``sample(severity)``. Picklable (DataLoader workers).
    """

    name: str
    params: tuple[tuple[str, Any], ...] = ()

    def __call__(self, severity: float, generator: torch.Generator) -> Any:
        base = degradation_class(self.name).sample(severity, generator)
        values = {}
        for key, value in self.params:
            if isinstance(value, (list, tuple)):
                lo, hi = (float(v) for v in value)
                values[key] = uniform(generator, lo, hi)
            else:
                values[key] = value
        return dataclasses.replace(base, **values)


@functools.cache
def fixed_gaussian_noise(sigma: float) -> ParamDegradation:
    """Gaussian noise at exactly ``sigma`` (on the 0–255 scale), e.g. PromptIR's σ ∈ {15, 25, 50}."""
    return ParamDegradation("gaussian_noise", (("sigma", float(sigma)),))


def parse_task_specs(tasks: Any, where: str = "data.tasks") -> dict[str, TaskSpec]:
    """YAML task spec → ``{task: TaskSpec}``.

    Accepts a list of task names, or a mapping ``task → null | {degradations: [...],
    severity: ...}``; a degradation is a registered name or ``{name: …, field: value | [lo,
    hi]}`` (e.g. ``{name: gaussian_noise, sigma: [0, 50]}``). A name ``a+b`` is a composite
    task (module docstring): severity only; its components are checked when the dataset is built.
    """
    if tasks is None:
        raise ConfigError(f"{where}: no tasks given")
    if isinstance(tasks, str) or not isinstance(tasks, (Sequence, Mapping)):
        raise ConfigError(f"{where}: expected a list of task names or a mapping")
    items = tasks.items() if isinstance(tasks, Mapping) else [(t, None) for t in tasks]
    specs: dict[str, TaskSpec] = {}
    for name, spec in items:
        spec = spec or {}
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where}.{name}: expected a mapping (degradations, severity)")
        unknown = set(spec) - {"degradations", "severity"}
        if unknown:
            raise ConfigError(f"{where}.{name}: unknown key '{sorted(unknown)[0]}'")
        try:
            composite = bool(composite_parts(str(name)))
        except ConfigError as exc:
            raise ConfigError(f"{where}.{name}: {exc}") from None
        if composite and spec.get("degradations"):
            raise ConfigError(
                f"{where}.{name}: a composite task draws its components' degradations; "
                "give only a severity"
            )
        degs: list[Any] = []
        for d in spec.get("degradations") or []:
            if isinstance(d, str):
                degs.append(d)
            elif isinstance(d, Mapping) and "name" in d:
                try:
                    fields = {f.name for f in dataclasses.fields(degradation_class(d["name"]))}
                except KeyError as exc:
                    raise ConfigError(f"{where}.{name}: {exc.args[0]}") from None
                params = {k: v for k, v in d.items() if k != "name"}
                bad = set(params) - fields
                if bad:
                    raise ConfigError(
                        f"{where}.{name}: {d['name']} has no parameter '{sorted(bad)[0]}'"
                    )
                degs.append(ParamDegradation(d["name"], tuple(sorted(params.items()))))
            else:
                raise ConfigError(f"{where}.{name}: bad degradation entry {d!r}")
        severity = spec.get("severity")
        if isinstance(severity, list):
            severity = tuple(severity)
        specs[str(name)] = TaskSpec(tuple(degs), severity)
    return specs
