"""``aioir serve`` in a real headless Chromium: photos chosen in the page's file input are restored
and downloaded through the page, and the downloads equal ``Restorer("default")``'s output.

Skipped, with the reason, when Chromium is not installed (``make test`` installs it). Run with
``AIOIR_SERVE_SCREENSHOT=docs/serve.png`` to write the page's screenshot shown in the docs.
"""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

from aioir.errors import ImageReadError
from aioir.io import load_image
from aioir.restore import Restorer
from serve_helpers import Chromium, Page, noisy16, sample, write_sample

FINISHED = "['done', 'failed', 'expired']"
CARD_STATES = "[...document.querySelectorAll('.card')].map(c => c.dataset.state)"


def _download(browser: Chromium, page: Page, card: int, folder: Path) -> tuple[str, Path]:
    """Click the download link of card ``card``; the suggested name and the file saved."""
    since = len(browser.events)
    page.evaluate(f"document.querySelectorAll('.card a.download')[{card}].click()")
    begun = browser.wait_event("Browser.downloadWillBegin", since=since, timeout=30)
    guid = begun["guid"]
    browser.wait_event(
        "Browser.downloadProgress",
        lambda e: e["guid"] == guid and e["state"] in ("completed", "canceled"),
        since=since,
        timeout=30,
    )
    name = begun["suggestedFilename"]
    saved = folder / guid  # "allowAndName" saves under the download's id
    assert saved.is_file(), f"download {name} was not saved"
    return name, saved.rename(folder / name)


def test_photos_restored_through_the_page(browser, served, reference, tmp_path):
    inputs = tmp_path / "in"
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    photo = write_sample(inputs / "bridge-noisy.png", noisy16((384, 216)))  # 16-bit PNG
    small = write_sample(inputs / "wine.jpg", sample("wine", (96, 64)))
    bad = inputs / "notes.png"
    bad.write_bytes(b"not a picture\n")

    page = browser.new_page()
    page.call("Network.enable")
    page.call("Page.enable")
    page.call(
        "Emulation.setDeviceMetricsOverride",
        {"width": 960, "height": 1050, "deviceScaleFactor": 1, "mobile": False},
    )
    browser.call(
        "Browser.setDownloadBehavior",
        {"behavior": "allowAndName", "downloadPath": str(downloads), "eventsEnabled": True},
    )
    page.call("Page.navigate", {"url": served.url})
    page.wait_for("document.body && document.body.dataset.ready === '1'", timeout=15)
    assert page.evaluate("document.querySelector('#model').value") == "default"

    # choose three files, as a user does in the file dialog
    page.set_files("#files", [photo, small, bad])
    states = page.wait_for(
        f"(s => s.length === 3 && s.every(x => {FINISHED}.includes(x)) && s)({CARD_STATES})",
        timeout=90,
    )
    assert states == ["done", "done", "failed"]
    statuses = page.evaluate(
        "[...document.querySelectorAll('.card .status')].map(s => s.textContent)"
    )
    with_cli_message = _cli_message(bad)
    assert (
        statuses[2] == with_cli_message == "notes.png: not an image file (cannot identify format)"
    )
    assert statuses[0].startswith("restored in ")
    meta = page.evaluate("document.querySelector('.card .meta').textContent")
    assert meta == "384×216 · PNG, 16-bit · default (shipped)"
    # the before/after previews are shown
    sizes = page.wait_for(
        "(images => images.every(i => i.complete && i.naturalWidth)"
        " && images.map(i => [i.naturalWidth, i.naturalHeight]))"
        "([...document.querySelector('.card').querySelectorAll('img')])"
    )
    assert sizes == [[384, 216], [384, 216]]

    screenshot = base64.b64decode(page.call("Page.captureScreenshot", {"format": "png"})["data"])
    assert screenshot[:8] == b"\x89PNG\r\n\x1a\n"
    target = os.environ.get("AIOIR_SERVE_SCREENSHOT")
    if target:  # 256 colours: a small PNG for the docs
        with Image.open(io.BytesIO(screenshot)) as image:
            shot = image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)
            shot.save(target, optimize=True)

    # the split slider moves the divide; the strength slider fades the after image
    page.evaluate(
        "(() => { const s = document.querySelector('.card .split'); s.value = 250;"
        " s.dispatchEvent(new Event('input')); })()"
    )
    assert page.evaluate("document.querySelector('.card img.after').style.clipPath") == (
        "inset(0px 0px 0px 25%)"
    )
    page.evaluate(
        "(() => { const s = document.querySelector('#strength'); s.value = 0.5;"
        " s.dispatchEvent(new Event('input')); })()"
    )
    assert page.evaluate("document.querySelector('.card img.after').style.opacity") == "0.5"
    assert page.evaluate("document.querySelector('#strength-value').textContent") == "50%"

    # downloads: the input's format and bit depth, equal to Restorer(strength=0.5) within a level
    name, saved = _download(browser, page, 0, downloads)
    assert name == "bridge-noisy_restored.png"
    out, data = load_image(saved), load_image(photo)
    assert out.bit_depth == 16 and out.rgb.shape == (216, 384, 3)
    expected = Restorer(reference.model, strength=0.5).restore_data(data)
    assert np.abs(out.rgb - expected).max() <= 1.01 / 65535
    assert np.abs(out.rgb - data.rgb).mean() > 0.005  # it did denoise

    name, saved = _download(browser, page, 1, downloads)
    assert name == "wine_restored.jpg" and saved.read_bytes()[:3] == b"\xff\xd8\xff"
    out = load_image(saved)
    assert out.rgb.shape == (64, 96, 3)
    expected = Restorer(reference.model, strength=0.5).restore_data(load_image(small))
    assert np.abs(out.rgb - expected).mean() < 4 / 255  # JPEG, quality 95

    # nothing was asked of any other server
    urls = [
        e["params"]["request"]["url"]
        for e in browser.events
        if e.get("method") == "Network.requestWillBeSent"
    ]
    assert urls and all(u.startswith((served.url, "data:", "blob:")) for u in urls), urls


def _cli_message(path: Path) -> str:
    try:
        load_image(path)
    except ImageReadError as exc:
        return str(exc).replace(str(path), path.name)
    raise AssertionError(f"{path} loaded")


def test_the_hints_button_restores_the_photo_again_as_the_hinted_task(browser, tmp_path):
    """A photo the model held back on gets a "Restore as haze" button; clicking it restores the
    same photo again on a new card, told haze, as ``Restorer(task="haze")`` does."""
    from aioir.apps.serve import ModelChoice, make_server
    from helpers import hinting_filter_bank

    server = make_server([ModelChoice("hinting", "hinting", hinting_filter_bank())], port=0)
    server.start()
    try:
        photo = write_sample(tmp_path / "in" / "wine.png", sample("wine", (64, 48)))
        downloads = tmp_path / "downloads"
        downloads.mkdir()
        browser.call(
            "Browser.setDownloadBehavior",
            {"behavior": "allowAndName", "downloadPath": str(downloads), "eventsEnabled": True},
        )
        page = browser.new_page()
        page.call("Page.enable")
        page.call("Page.navigate", {"url": server.url})
        page.wait_for("document.body && document.body.dataset.ready === '1'", timeout=15)
        page.set_files("#files", [photo])
        page.wait_for(f"(s => s.length === 1 && s[0] === 'done')({CARD_STATES})", timeout=60)
        button = "document.querySelector('.card button.follow')"
        assert page.evaluate(f"{button}.hidden") is False
        assert page.evaluate(f"{button}.textContent") == "Restore as haze"
        assert "restored cautiously" in page.evaluate("document.querySelector('.card .status')"
                                                      ".textContent")  # fmt: skip

        page.evaluate(f"{button}.click()")
        page.wait_for(f"(s => s.length === 2 && s[1] === 'done')({CARD_STATES})", timeout=60)
        assert page.evaluate(f"{button}.disabled") is True
        second = "document.querySelectorAll('.card')[1]"
        assert page.evaluate(f"{second}.querySelector('.name').textContent") == "wine.png as haze"
        assert page.evaluate(f"{second}.querySelector('.meta').textContent").endswith("told: haze")
        assert page.evaluate(f"{second}.querySelector('button.follow').hidden") is True
        _, saved = _download(browser, page, 1, downloads)
        told = Restorer(hinting_filter_bank(), model_options={"task": "haze"})
        expected = told.restore_data(load_image(photo))
        assert np.abs(load_image(saved).rgb - expected).max() <= 1.01 / 255
        blind = Restorer(hinting_filter_bank()).restore_data(load_image(photo))
        assert np.abs(blind - expected).mean() > 0.01  # the told restoration is another one
    finally:
        server.close()
