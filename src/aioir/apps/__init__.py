"""Applications built on the library: :mod:`aioir.apps.demo` (``aioir demo`` / ``make demo``)
and :mod:`aioir.apps.serve` (``aioir serve``, the restore page in the browser).

An application sits above :mod:`aioir.restore`, :mod:`aioir.data` and :mod:`aioir.metrics` and
below the command line; it never imports the trainer (:mod:`aioir.engine`) or the evaluation
harness (:mod:`aioir.evaluate`). Importing this package imports none of its applications.
"""
