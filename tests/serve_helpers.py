"""Helpers of the ``aioir serve`` tests (importable: ``pythonpath = ["tests"]``): sample inputs
and a headless Chromium driven over the DevTools protocol.

The browser is the ``chromium`` of the Debian package (``make test`` installs it when missing;
``AIOIR_CHROMIUM`` names another executable). It is started with ``--remote-debugging-pipe``:
DevTools messages are NUL-terminated JSON on the child's file descriptors 3 (commands) and 4
(answers and events), so no debugging port is opened and no websocket client is needed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from aioir.data.samples import sample_images
from aioir.io import write_image

# the child maps our pipe ends onto its fds 3 and 4, then becomes the browser
_LAUNCHER = (
    "import os, sys; r, w = int(sys.argv[1]), int(sys.argv[2]); os.dup2(r, 3); os.dup2(w, 4); "
    "os.close(r); os.close(w); os.execvp(sys.argv[3], sys.argv[3:])"
)
# a headless browser that talks to nobody: no updates, sync, metrics, prefetch or field trials
_FLAGS = (
    "--headless",
    "--no-sandbox",  # tests run as root in CI
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-breakpad",
    "--metrics-recording-only",
    "--no-pings",
    "--hide-scrollbars",
    "--mute-audio",
)


def find_chromium() -> str | None:
    """The Chromium executable: ``AIOIR_CHROMIUM`` or ``chromium`` / ``chromium-browser``."""
    named = os.environ.get("AIOIR_CHROMIUM")
    if named:
        return shutil.which(named) or (named if os.access(named, os.X_OK) else None)
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _high_fd(fd: int) -> int:
    """``fd`` moved to a number ≥ 10 (so the launcher's dup2 onto 3 and 4 cannot clobber it)."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class DevToolsError(RuntimeError):
    """A DevTools command failed, or an answer did not come in time."""


class Chromium:
    """A headless Chromium and its DevTools pipe: :meth:`call` sends a command and waits for
    its answer, :meth:`wait_event` waits for an event. Every wait has a deadline."""

    def __init__(self, executable: str, profile: Path, timeout: float = 20.0) -> None:
        self.timeout = timeout
        cmd_read, cmd_write = map(_high_fd, os.pipe())
        out_read, out_write = map(_high_fd, os.pipe())
        self._log = open(profile.parent / "chromium.log", "wb")  # noqa: SIM115 - closed in close()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _LAUNCHER,
                str(cmd_read),
                str(out_write),
                executable,
                *_FLAGS,
                "--remote-debugging-pipe",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            pass_fds=(cmd_read, out_write),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )
        os.close(cmd_read)
        os.close(out_write)
        self._write, self._read = cmd_write, out_read
        self._next_id = 0
        self._answers: dict[int, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self._closed = False
        self._reader = threading.Thread(target=self._read_messages, daemon=True)
        self._reader.start()

    def _read_messages(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(self._read, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self._changed:
                    self._closed = True
                    self._changed.notify_all()
                return
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                with self._changed:
                    if "id" in message:
                        self._answers[message["id"]] = message
                    else:
                        self.events.append(message)
                    self._changed.notify_all()

    def call(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> dict[str, Any]:
        """Send a command (to ``session``, a page, or the browser) and return its result."""
        with self._changed:
            self._next_id += 1
            ident = self._next_id
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        with self._changed:
            while ident not in self._answers:
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise DevToolsError(f"{method}: no answer from Chromium")
                self._changed.wait(left)
            answer = self._answers.pop(ident)
        if "error" in answer:
            raise DevToolsError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def wait_event(
        self,
        method: str,
        match: Callable[[dict[str, Any]], bool] = lambda params: True,
        *,
        since: int = 0,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """The params of the first event ``method`` from ``events[since]`` on (received so far
        or later) that ``match``es."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        seen = since
        with self._changed:
            while True:
                for event in self.events[seen:]:
                    if event.get("method") == method and match(event.get("params", {})):
                        return event["params"]
                seen = max(seen, len(self.events))
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise DevToolsError(f"no {method} event in time")
                self._changed.wait(left)

    def new_page(self) -> Page:
        """A new tab, attached (flat session)."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})
        return Page(self, session["sessionId"])

    def close(self) -> None:
        """Close the browser (killed if it does not exit within 10 s)."""
        with contextlib.suppress(DevToolsError, OSError):
            self.call("Browser.close")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        os.close(self._write)
        self._reader.join(timeout=5)
        os.close(self._read)
        self._log.close()


class Page:
    """One tab of :class:`Chromium`."""

    def __init__(self, browser: Chromium, session: str) -> None:
        self.browser = browser
        self.session = session

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.browser.call(method, params, self.session)

    def evaluate(self, expression: str, await_promise: bool = False) -> Any:
        """The value of a JavaScript expression in the page (JSON-able)."""
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": await_promise},
        )
        if "exceptionDetails" in result:
            raise DevToolsError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0, poll: float = 0.1) -> Any:
        """Poll ``expression`` until it is truthy (at most ``timeout`` seconds); its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise DevToolsError(f"{expression}: still {value!r} after {timeout:.0f} s")
            time.sleep(poll)

    def set_files(self, selector: str, paths: list[Path]) -> None:
        """Choose ``paths`` in the file input ``selector``, as a user picking files does."""
        root = self.call("DOM.getDocument")["root"]["nodeId"]
        node = self.call("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        self.call("DOM.setFileInputFiles", {"nodeId": node, "files": [str(p) for p in paths]})


def sample(name: str, size: tuple[int, int]) -> np.ndarray:
    """A shipped sample photo resized to ``size`` (width, height): uint8 H×W×3."""
    path = next(p for p in sample_images() if p.stem == name)
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB").resize(size, Image.Resampling.LANCZOS))


def noisy16(size: tuple[int, int], sigma: float = 0.05, seed: int = 0) -> np.ndarray:
    """The ``bridge`` sample with seeded Gaussian noise, as uint16 H×W×3 (a 16-bit photo)."""
    clean = sample("bridge", size).astype(np.float64) / 255.0
    rng = np.random.default_rng(seed)
    noisy = np.clip(clean + rng.normal(0.0, sigma, clean.shape), 0.0, 1.0)
    return np.rint(noisy * 65535).astype(np.uint16)


def write_sample(path: Path, pixels: np.ndarray, **options: Any) -> Path:
    """Write ``pixels`` (uint8 or uint16) with :func:`aioir.io.write_image`."""
    bit_depth = 16 if pixels.dtype == np.uint16 else 8
    return write_image(path, pixels, bit_depth=bit_depth, **options)
