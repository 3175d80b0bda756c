"""The demo behind ``make demo`` / ``aioir demo``: the shipped sample photos, degraded and restored.

:func:`run_demo` takes the bundled sample photos (:mod:`aioir.data.samples`), down-sizes each
(Lanczos, antialiased) so its long side is ``size`` pixels, degrades it with every task's
degradations (:class:`~aioir.data.synthetic.SyntheticDegradationDataset`, deterministic: seeded
per task and photo name), restores every degraded image with the model and — when ``tta`` is on
and the model supports it — once more with its test-time adaptation (UDAIR's blind default mode,
as ``aioir restore --tta`` runs it). It scores everything against the clean photo under the
``clean`` metric protocol and writes, under ``output/``::

    clean/<photo>.png  degraded/<task>/<photo>.png  restored/<task>/<photo>.png
    restored_tta/<task>/<photo>.png  grid.png  index.html  metrics.json  metrics.csv

Every image is 8-bit; the metrics are computed on exactly the 8-bit images written, and the
model restores exactly the degraded PNG written, so ``aioir restore degraded/<task>/<photo>.png``
reproduces a ``restored`` file. Everything is first written (atomically, file by file) into a
hidden staging folder beside ``output`` and moved into place at the end, so an interrupted or
failed run leaves ``output`` as it was.

Modules: :mod:`~aioir.apps.demo.pipeline` (:func:`run_demo`: check, degrade, restore, score,
stage and publish the files), :mod:`~aioir.apps.demo.results` (the scores, the table and
metrics.json), :mod:`~aioir.apps.demo.page` (grid.png, index.html, metrics.csv).
"""

from __future__ import annotations

from aioir.apps.demo.pipeline import (
    DEFAULT_OUTPUT,
    DEFAULT_SIZE,
    DEFAULT_TASKS,
    OUTPUT_ENTRIES,
    run_demo,
)
from aioir.apps.demo.results import COLUMNS, PROTOCOL, DemoImage, DemoResult, Score

__all__ = [
    "COLUMNS",
    "DEFAULT_OUTPUT",
    "DEFAULT_SIZE",
    "DEFAULT_TASKS",
    "OUTPUT_ENTRIES",
    "PROTOCOL",
    "DemoImage",
    "DemoResult",
    "Score",
    "run_demo",
]
