"""``aioir.apps.serve.jobs``: the models offered, tile progress, one restore at a time, removal,
cancelling, memory budget, one-line errors (small stand-in models, no HTTP)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from aioir.apps.serve import ModelChoice, RestoreService, model_choices
from aioir.apps.serve.jobs import ServiceBusy
from aioir.errors import ConfigError, ImageReadError
from aioir.io import load_image
from aioir.restore import Restorer
from aioir.restore.tiling import tile_starts
from helpers import hinting_filter_bank
from serve_helpers import sample, write_sample


class Blur(nn.Module):
    """A fixed 3×3 convolution; ``delay`` seconds per call, and it records every call."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 3, 3, padding=1, padding_mode="replicate")
        self.delay = delay
        self.calls = 0
        self.running = threading.Event()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.running.set()
        if self.delay:
            time.sleep(self.delay)
        return self.conv(x)


def service(model: nn.Module, **options) -> RestoreService:
    choice = ModelChoice("blur", "blur", model)
    restorer_options = options.pop("restorer_options", {"device": "cpu"})
    return RestoreService([choice], restorer_options=restorer_options, **options)


def upload(svc: RestoreService, tmp_path: Path, name: str, size=(300, 200)) -> Path:
    target = svc.new_upload(name)
    write_sample(target, sample("greentock", size))
    return target


def wait(svc: RestoreService, job_id: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = svc.get(job_id)
        if job is None or job.state in ("done", "failed", "expired"):
            return "gone" if job is None else job.state
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} not finished after {timeout} s")


# ------------------------------------------------------------------ choices
def test_model_choices_default_first_then_models_then_folders(tmp_path):
    for name in ("v2", "v1", ".hidden", "not-a-model"):
        (tmp_path / name).mkdir()
    for name in ("v2", "v1", ".hidden"):
        (tmp_path / name / "model.safetensors").write_bytes(b"")
    (tmp_path / "single.safetensors").write_bytes(b"")
    choices = model_choices(["default", "udair", str(tmp_path / "v1")], [tmp_path, "missing"])
    assert [c.key for c in choices] == [
        "default",
        "udair",
        str(tmp_path / "v1"),
        str(tmp_path / "single.safetensors"),
        str(tmp_path / "v2"),
    ]
    assert choices[0].label == "default (shipped)"
    assert choices[-1].label == f"v2 ({tmp_path})"


def test_a_service_needs_a_model_and_no_strength():
    with pytest.raises(ConfigError):
        RestoreService([])
    with pytest.raises(ConfigError, match="strength"):
        service(Blur(), restorer_options={"strength": 0.5})


# ------------------------------------------------------------------ restoring
def test_tiles_are_counted_and_the_result_is_the_restorers(tmp_path):
    model = Blur()
    options = {"device": "cpu", "tile": 128, "tile_overlap": 32}
    svc = service(model, restorer_options=options)
    svc.start()
    try:
        job = svc.submit(upload(svc, tmp_path, "photo.png"))
        assert wait(svc, job.id) == "done"
        tiles = len(tile_starts(200, 128, 32)) * len(tile_starts(300, 128, 32))
        assert tiles > 1 and job.steps_total == tiles == job.steps_done == model.calls
        status = svc.statuses([job.id])[0]
        assert status["tiles"] == [tiles, tiles] and status["progress"] == 1.0
        data = load_image(job.source)
        expected = Restorer(model, **options).restore_data(data)
        np.testing.assert_array_equal(job.restored, expected)
        name, kind, payload = svc.result(job.id, 0.25)
        assert (name, kind) == ("photo_restored.png", "image/png") and payload[:4] == b"\x89PNG"
        with pytest.raises(ConfigError, match="between 0 and 1"):
            svc.result(job.id, float("nan"))
        assert set(job.previews) == {"before", "after"}
    finally:
        svc.close()


def test_bad_files_and_models_fail_in_one_line(tmp_path):
    svc = service(Blur())
    try:
        bad = svc.new_upload("holiday.jpg")
        bad.write_bytes(b"\x00" * 10)
        with pytest.raises(ImageReadError) as exc:
            svc.submit(bad)
        assert str(exc.value) == "holiday.jpg: not an image file (cannot identify format)"
        assert not bad.parent.exists()  # the upload is deleted
        with pytest.raises(ConfigError, match="unknown model 'x'"):
            svc.submit(upload(svc, tmp_path, "a.png"), model="x")
    finally:
        svc.close()
    # a model that cannot be used fails the job, with its one-line message
    untrained = RestoreService([ModelChoice("u", "u", "udair-tiny")])
    untrained.start()
    try:
        job = untrained.submit(upload(untrained, tmp_path, "b.png"))
        assert wait(untrained, job.id) == "failed"
        assert job.message.startswith("b.png: model 'udair-tiny' has no trained weights")
        assert "\n" not in job.message
    finally:
        untrained.close()


def test_one_at_a_time_queue_and_removal(tmp_path):
    model = Blur()
    svc = service(model, max_waiting=2)
    first = svc.submit(upload(svc, tmp_path, "1.png"))
    second = svc.submit(upload(svc, tmp_path, "2.png"))
    with pytest.raises(ServiceBusy, match="waiting"):
        svc.submit(upload(svc, tmp_path, "3.png"))
    assert [s["position"] for s in svc.statuses()] == [1, 2]
    assert svc.remove(first.id) and not first.source.exists()
    assert not svc.remove(first.id)
    svc.start()
    try:
        assert wait(svc, second.id) == "done"
        assert model.calls == 1  # the removed job never ran
    finally:
        svc.close()
    assert not second.source.parent.exists()  # close() deletes the uploads


def test_removing_the_running_job_cancels_it_at_the_next_tile(tmp_path):
    model = Blur(delay=0.05)
    svc = service(model, restorer_options={"device": "cpu", "tile": 128, "tile_overlap": 32})
    svc.start()
    try:
        slow = svc.submit(upload(svc, tmp_path, "slow.png", size=(640, 480)))
        after = svc.submit(upload(svc, tmp_path, "next.png", size=(24, 16)))
        assert model.running.wait(30)
        assert svc.remove(slow.id)
        assert wait(svc, after.id) == "done"
        assert slow.steps_total > 20 and model.calls < slow.steps_total
        assert not slow.source.parent.exists()
    finally:
        svc.close()


def test_oldest_results_expire_beyond_the_memory_budget(tmp_path):
    svc = service(Blur(), memory_budget=300 * 200 * 3 * 4)  # one restored photo
    svc.start()
    try:
        first = svc.submit(upload(svc, tmp_path, "first.png"))
        assert wait(svc, first.id) == "done"
        second = svc.submit(upload(svc, tmp_path, "second.png"))
        assert wait(svc, second.id) == "done"
        assert first.state == "expired" and first.restored is None
        assert first.message == "first.png: expired to free memory; drop the photo again"
        with pytest.raises(ConfigError, match="not restored"):
            svc.result(first.id)
        assert svc.result(second.id)[0] == "second_restored.png"
    finally:
        svc.close()


def test_importing_the_app_imports_no_torch():
    code = (
        "import sys, aioir.apps.serve, aioir.cli.serve; "
        "print(' '.join(m for m in ('torch', 'lightning', 'aioir.engine', 'aioir.evaluate') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_a_photo_can_be_told_its_task(tmp_path):
    """The page's "Problem" choice: the job carries the task, the model is told it (the
    default model's head routes its gate to that class), an unknown task is refused at once
    and a model that cannot be told fails the job in one line."""
    svc = RestoreService([ModelChoice("default", "default", "default")])
    svc.start()
    try:
        blind = svc.submit(upload(svc, tmp_path, "a.png", size=(48, 40)))
        told = svc.submit(upload(svc, tmp_path, "b.png", size=(48, 40)), task="low-light")
        assert (blind.task, told.task) == (None, "lowlight")
        assert wait(svc, blind.id) == wait(svc, told.id) == "done"
        assert svc.statuses([told.id])[0]["task"] == "lowlight"
        data = load_image(told.source)
        expected = Restorer("default", model_options={"task": "lowlight"}).restore_data(data)
        np.testing.assert_array_equal(told.restored, expected)
        assert not np.array_equal(told.restored, blind.restored)
        with pytest.raises(ConfigError, match="unknown task 'snow'"):
            svc.submit(upload(svc, tmp_path, "c.png"), task="snow")
    finally:
        svc.close()
    plain = service(Blur())
    plain.start()
    try:
        job = plain.submit(upload(plain, tmp_path, "d.png"), task="haze")
        assert wait(plain, job.id) == "failed"
        assert job.message == "d.png: model Blur takes no inference options (task)"
    finally:
        plain.close()
    with pytest.raises(ConfigError, match="per photo"):
        RestoreService([ModelChoice("b", "b", Blur())], restorer_options={"model_options": {}})


def test_a_photo_the_model_held_back_on_carries_its_hint(tmp_path):
    """A photo the model read as hazy but returned as it came (told haze it would not): its
    status names the task to choose as "Problem"; told that task, none."""
    svc = RestoreService([ModelChoice("hinting", "hinting", hinting_filter_bank())])
    svc.start()
    try:
        blind = svc.submit(upload(svc, tmp_path, "a.png", size=(48, 40)))
        told = svc.submit(upload(svc, tmp_path, "b.png", size=(48, 40)), task="haze")
        assert wait(svc, blind.id) == wait(svc, told.id) == "done"
        statuses = svc.statuses([blind.id, told.id])
        assert statuses[0]["hint"] == {"task": "haze", "probability": 0.95}
        assert statuses[1]["hint"] is None
    finally:
        svc.close()
