"""``aioir serve``: a restore page in the browser, served from this computer only.

Drop one or more photos on the page, pick the model (the shipped default, saved-model folders
found beside it or given with ``--model``, or a saved-model folder typed in), set the strength,
and compare before and after with a split slider; each result downloads in its photo's format
and bit depth (16-bit PNG and TIFF stay 16-bit). Bad files get the one-line messages of
``aioir restore``. Nothing leaves the machine: the page is one file with its style and script
inline, it loads nothing from elsewhere (its Content-Security-Policy forbids it), and the server
binds to 127.0.0.1 unless ``--host`` says otherwise.

The server is the standard library's :mod:`http.server` (no extra packages: see
``docs/serve.md`` for why not Gradio). One worker thread restores the photos one at a time with
a cached :class:`~aioir.restore.Restorer`; large photos go through its tiling, and the page
shows each photo's progress tile by tile.

>>> from aioir.apps.serve import serve
>>> serve(port=8765)                     # until Ctrl-C; open http://127.0.0.1:8765/

Modules: :mod:`~aioir.apps.serve.jobs` (the models offered, the jobs, the worker),
:mod:`~aioir.apps.serve.server` (HTTP routes, host and origin checks), ``page.html`` (the page).
"""

from __future__ import annotations

import sys
import webbrowser
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aioir.apps.serve.jobs import (
    DEFAULT_MODEL_KEY,
    PREVIEW_SIDE,
    Job,
    ModelChoice,
    RestoreService,
    model_choices,
)
from aioir.apps.serve.server import DEFAULT_HOST, DEFAULT_MAX_UPLOAD, RestoreServer, page_html

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_MAX_UPLOAD",
    "DEFAULT_MODEL_KEY",
    "DEFAULT_PORT",
    "PREVIEW_SIDE",
    "Job",
    "ModelChoice",
    "RestoreServer",
    "RestoreService",
    "make_server",
    "model_choices",
    "page_html",
    "serve",
]

DEFAULT_PORT = 8765
"""The port ``aioir serve`` listens on unless ``--port`` says otherwise."""


def make_server(
    choices: Sequence[ModelChoice] | None = None,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    restorer_options: Mapping[str, Any] | None = None,
    allow_model_paths: bool = True,
    max_upload: int = DEFAULT_MAX_UPLOAD,
    memory_budget: int = 2 << 30,
    log: Callable[[str], None] | None = None,
    log_requests: bool = False,
) -> RestoreServer:
    """A bound, not yet started server (``start()`` serves in a thread, ``serve_forever()`` in
    this one; ``close()`` ends both). ``choices`` default to :func:`model_choices` (the shipped
    default model); ``port=0`` picks a free port."""
    service = RestoreService(
        model_choices() if choices is None else choices,
        restorer_options=restorer_options,
        allow_model_paths=allow_model_paths,
        memory_budget=memory_budget,
        log=log,
    )
    try:
        return RestoreServer(service, host, port, max_upload=max_upload, log_requests=log_requests)
    except BaseException:
        service.close()
        raise


def serve(
    choices: Sequence[ModelChoice] | None = None,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    restorer_options: Mapping[str, Any] | None = None,
    open_browser: bool = False,
    quiet: bool = False,
    preload: bool = True,
    **options: Any,
) -> None:
    """Serve the restore page until interrupted (Ctrl-C), then delete the uploads.

    ``preload`` loads the first model before serving (its errors are raised here, not shown
    on the page); ``open_browser`` opens the page in this computer's browser; ``options`` go
    to :func:`make_server`.
    """

    def say(message: str) -> None:
        if not quiet:
            print(f"aioir serve: {message}", file=sys.stderr, flush=True)

    server = make_server(
        choices, host=host, port=port, restorer_options=restorer_options, log=say, **options
    )
    try:
        if preload:
            server.service.preload()
        server.service.start()
        if not server.loopback:
            say(f"listening on {host}: anyone who can reach this computer can use the page")
        say(f"serving {server.url} (Ctrl-C stops it)")
        if open_browser:
            webbrowser.open(server.url)
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        server.service.close()
