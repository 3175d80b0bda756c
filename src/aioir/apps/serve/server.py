"""The HTTP side of ``aioir serve``: the page and a small JSON API on the standard library.

Routes (every answer comes from this process; the page loads nothing from anywhere else)::

    GET    /                          the page (HTML, CSS and script inline)
    GET    /api/models                the models offered, the upload limit, the file types
    GET    /api/jobs[?ids=a,b]        the status of the jobs (state, progress, one-line message)
    POST   /api/jobs?name=N[&model=K|&path=P][&task=T]   body: the file's bytes → 202 +
                                      status, or 400 {"error": "N: <one-line problem>"};
                                      T: what is wrong with it (aioir restore --task)
    GET    /api/jobs/ID               one job's status
    GET    /api/jobs/ID/before.png    8-bit previews for the before/after comparison
    GET    /api/jobs/ID/after.png
    GET    /api/jobs/ID/result?strength=S   the restored file (the input's format and bit depth)
    DELETE /api/jobs/ID               forget a job (cancels it at its next tile)

Safety for a page on the loopback interface: the server binds to 127.0.0.1 unless told
otherwise; requests whose ``Host`` is not this server's loopback address are refused (DNS
rebinding), as are state-changing requests from another origin (``Origin`` header); every page
answer carries a Content-Security-Policy that lets it reach only this server.
"""

from __future__ import annotations

import ipaddress
import json
import math
import socket
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from aioir.apps.serve.jobs import RestoreService, ServiceBusy
from aioir.errors import AioirError, ImageReadError
from aioir.io import SUPPORTED_SUFFIXES

__all__ = ["DEFAULT_HOST", "DEFAULT_MAX_UPLOAD", "RestoreServer", "page_html"]

DEFAULT_HOST = "127.0.0.1"
"""Where ``aioir serve`` listens unless ``--host`` says otherwise: this machine only."""

DEFAULT_MAX_UPLOAD = 256 << 20
"""Largest upload accepted, in bytes (``--max-upload-mb``)."""

_CHUNK = 1 << 20
_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src 'self' blob: data:; connect-src 'self'; form-action 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


def page_html() -> str:
    """The page, as shipped beside this module (``page.html``)."""
    return resources.files("aioir.apps.serve").joinpath("page.html").read_text(encoding="utf-8")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class RestoreServer(ThreadingHTTPServer):
    """A threading HTTP server for the page and its API, around a :class:`RestoreService`.

    Requests are answered in threads; restoring happens in the service's one worker.
    ``port=0`` picks a free port (:attr:`url` says which).
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        service: RestoreService,
        host: str = DEFAULT_HOST,
        port: int = 0,
        *,
        max_upload: int = DEFAULT_MAX_UPLOAD,
        log_requests: bool = False,
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host.strip("[]"), port), _Handler)
        self.service = service
        self.max_upload = max_upload
        self.log_requests = log_requests
        self.host = host.strip("[]")
        self.port = int(self.server_address[1])
        self.loopback = _is_loopback(self.host)
        self._page = page_html().encode("utf-8")
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://HOST:PORT/`` (a wildcard host is shown as 127.0.0.1)."""
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}/"

    def allowed_host(self, header: str | None) -> bool:
        """Whether a request's ``Host`` header names this server (any host when it listens on
        a non-loopback address)."""
        if not self.loopback:
            return True
        if not header:
            return False
        name, _, port = header.rpartition(":") if not header.endswith("]") else (header, "", "")
        return port == str(self.port) and _is_loopback(name.strip("[]"))

    def start(self) -> None:
        """Start the service's worker and serve in a background thread (tests, embedding)."""
        self.service.start()
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop serving, stop the worker, delete the uploads."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=10)
        self.server_close()
        self.service.close()


class _Handler(BaseHTTPRequestHandler):
    server: RestoreServer
    server_version = "aioir-serve"
    sys_version = ""

    # ---------------------------------------------------------------- plumbing
    def log_message(self, format: str, *args: Any) -> None:
        if self.server.log_requests:
            sys.stderr.write(f"aioir serve: {self.address_string()} {format % args}\n")

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Security-Policy", _CSP)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self._send(status, body, "application/json; charset=utf-8")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def _guard(self, changes_state: bool) -> bool:
        """Refuse requests for another host name and, when they change state, from another
        origin; True when the request may go on."""
        if not self.server.allowed_host(self.headers.get("Host")):
            self._error(HTTPStatus.FORBIDDEN, "this server answers only to its loopback address")
            return False
        origin = self.headers.get("Origin")
        if changes_state and origin is not None and origin != f"http://{self.headers['Host']}":
            self._error(HTTPStatus.FORBIDDEN, f"requests from {origin} are not accepted")
            return False
        return True

    def _route(self) -> tuple[list[str], dict[str, str]]:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        return [p for p in parts.path.split("/") if p], query

    # ---------------------------------------------------------------- methods
    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        if not self._guard(changes_state=False):
            return
        segments, query = self._route()
        service = self.server.service
        if not segments:
            self._send(HTTPStatus.OK, self.server._page, "text/html; charset=utf-8")
        elif segments == ["api", "models"]:
            self._json(
                HTTPStatus.OK,
                {
                    "models": service.model_list(),
                    "default": service.default_key,
                    "paths": service.allow_model_paths,
                    "max_upload": self.server.max_upload,
                    "suffixes": sorted(SUPPORTED_SUFFIXES),
                },
            )
        elif segments == ["api", "jobs"]:
            ids = [i for i in query.get("ids", "").split(",") if i] if "ids" in query else None
            self._json(HTTPStatus.OK, {"jobs": service.statuses(ids)})
        elif len(segments) == 3 and segments[:2] == ["api", "jobs"]:
            job = service.get(segments[2])
            if job is None:
                self._error(HTTPStatus.NOT_FOUND, "no such job (it may have expired)")
            else:
                self._json(HTTPStatus.OK, service.statuses([job.id])[0])
        elif len(segments) == 4 and segments[:2] == ["api", "jobs"]:
            self._job_file(segments[2], segments[3], query)
        else:
            self._error(HTTPStatus.NOT_FOUND, f"{self.path}: not found")

    def _job_file(self, job_id: str, what: str, query: dict[str, str]) -> None:
        service = self.server.service
        if what in ("before.png", "after.png"):
            data = service.preview(job_id, what.removesuffix(".png"))
            if data is None:
                self._error(HTTPStatus.NOT_FOUND, "no preview (not restored, or expired)")
            else:
                self._send(HTTPStatus.OK, data, "image/png")
            return
        if what != "result":
            self._error(HTTPStatus.NOT_FOUND, f"{self.path}: not found")
            return
        try:
            strength = float(query.get("strength", "1"))
        except ValueError:
            strength = math.nan
        try:
            name, content_type, data = service.result(job_id, strength)
        except KeyError:
            self._error(HTTPStatus.NOT_FOUND, "no such job (it may have expired)")
            return
        except AioirError as exc:
            self._error(HTTPStatus.BAD_REQUEST, str(exc))
            return
        ascii_name = name.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
        disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
        self._send(HTTPStatus.OK, data, content_type, {"Content-Disposition": disposition})

    def do_POST(self) -> None:
        if not self._guard(changes_state=True):
            return
        segments, query = self._route()
        if segments != ["api", "jobs"]:
            self._error(HTTPStatus.NOT_FOUND, f"{self.path}: not found")
            return
        name = query.get("name", "").strip() or "upload"
        length_header = self.headers.get("Content-Length")
        if length_header is None or not length_header.isdigit():
            self._error(HTTPStatus.LENGTH_REQUIRED, f"{name}: the upload has no length")
            return
        length = int(length_header)
        limit = self.server.max_upload
        if length > limit:
            self.close_connection = True
            self._error(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"{name}: file too large ({length / 2**20:.0f} MB; this server takes up to "
                f"{limit / 2**20:.0f} MB, --max-upload-mb)",
            )
            return
        service = self.server.service
        upload = service.new_upload(name)
        try:
            self._receive(upload, length)
        except OSError as exc:
            service.discard_upload(upload)
            self.close_connection = True
            self._error(HTTPStatus.BAD_REQUEST, f"{name}: upload failed ({exc})")
            return
        try:
            job = service.submit(
                upload, model=query.get("model"), path=query.get("path"), task=query.get("task")
            )
        except ServiceBusy as exc:
            self._error(HTTPStatus.SERVICE_UNAVAILABLE, str(exc))
            return
        except ImageReadError as exc:
            self._error(HTTPStatus.BAD_REQUEST, " ".join(str(exc).split()))
            return
        except AioirError as exc:
            self._error(HTTPStatus.BAD_REQUEST, f"{upload.name}: {' '.join(str(exc).split())}")
            return
        self._json(HTTPStatus.ACCEPTED, service.statuses([job.id])[0])

    def _receive(self, target: Any, length: int) -> None:
        """Copy ``length`` bytes of the request body into the file ``target``."""
        left = length
        with open(target, "wb") as handle:
            while left > 0:
                chunk = self.rfile.read(min(_CHUNK, left))
                if not chunk:
                    raise OSError(f"connection closed with {left} bytes still to come")
                handle.write(chunk)
                left -= len(chunk)

    def do_DELETE(self) -> None:
        if not self._guard(changes_state=True):
            return
        segments, _ = self._route()
        if len(segments) == 3 and segments[:2] == ["api", "jobs"]:
            if self.server.service.remove(segments[2]):
                self._send(HTTPStatus.NO_CONTENT, b"", "text/plain")
            else:
                self._error(HTTPStatus.NOT_FOUND, "no such job")
        else:
            self._error(HTTPStatus.NOT_FOUND, f"{self.path}: not found")
