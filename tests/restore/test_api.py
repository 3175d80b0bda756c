"""The Python API: same kind out as in, Restorer options, TTA routing, restore_file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import aioir.restore
from aioir.errors import ConfigError, ImageWriteError
from aioir.io import load_image, write_image
from aioir.restore import adaptation, api, tiling
from aioir.restore.api import Restorer, compare_image, resolve_device, restore


class Identity(nn.Module):
    size_multiple = 8

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[-2] % 8 == 0 and x.shape[-1] % 8 == 0
        return x.clone()


class Darken(nn.Module):
    """Halves the image: a model whose effect is visible."""

    size_multiple = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 0.5


@pytest.fixture
def ident() -> Restorer:
    return Restorer(Identity(), device="cpu", tile=0)


# ------------------------------------------------------------------ numpy
@pytest.mark.parametrize(
    ("dtype", "top"), [(np.uint8, 255), (np.uint16, 65535), (np.float32, 1.0), (np.float64, 1.0)]
)
@pytest.mark.parametrize("shape", [(13, 9, 3), (13, 9), (13, 9, 1), (13, 9, 2), (13, 9, 4)])
def test_numpy_same_dtype_and_shape_out(ident, dtype, top, shape):
    rng = np.random.default_rng(0)
    if np.issubdtype(dtype, np.integer):
        image = rng.integers(0, top + 1, size=shape).astype(dtype)
    else:
        image = rng.random(shape).astype(dtype)
    out = ident(image)
    assert out.dtype == image.dtype and out.shape == image.shape
    if np.issubdtype(dtype, np.integer):
        np.testing.assert_array_equal(out, image)
    else:
        np.testing.assert_allclose(out, image, atol=1e-6)


def test_numpy_model_is_applied_and_alpha_is_carried():
    image = np.full((5, 6, 4), 200, dtype=np.uint8)
    image[:, :, 3] = 77
    out = Restorer(Darken(), device="cpu")(image)
    np.testing.assert_array_equal(out[:, :, :3], 100)
    np.testing.assert_array_equal(out[:, :, 3], 77)


def test_numpy_bad_inputs():
    r = Restorer(Darken(), device="cpu")
    with pytest.raises(ValueError, match="shape"):
        r(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(TypeError, match="dtype"):
        r(np.zeros((4, 4, 3), np.int32))
    with pytest.raises(TypeError, match="numpy array"):
        r([[0, 1]])


# ------------------------------------------------------------------ PIL
@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "LA", "I;16"])
def test_pil_same_mode_out_and_identity_exact(ident, mode):
    rng = np.random.default_rng(1)
    if mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65536, (11, 7)).astype(np.uint16))
    else:
        channels = {"RGB": 3, "L": 1, "RGBA": 4, "LA": 2}[mode]
        array = rng.integers(0, 256, (11, 7, channels)).astype(np.uint8)
        image = Image.fromarray(array[:, :, 0] if channels == 1 else array, mode=None)
    assert image.mode == mode
    out = ident(image)
    assert isinstance(out, Image.Image) and out.mode == mode and out.size == image.size
    np.testing.assert_array_equal(np.asarray(out), np.asarray(image))


@pytest.mark.parametrize("mode", ["P", "CMYK"])
def test_pil_other_modes_come_back_in_their_mode(mode):
    image = Image.new("RGB", (6, 4), (200, 100, 50)).convert(mode)
    out = Restorer(Darken(), device="cpu")(image)
    assert out.mode == mode and out.size == (6, 4)
    r, g, b = out.convert("RGB").getpixel((0, 0))
    assert abs(r - 100) <= 3 and abs(g - 50) <= 3 and abs(b - 25) <= 3


# ------------------------------------------------------------------ torch
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
@pytest.mark.parametrize("shape", [(3, 10, 12), (2, 3, 10, 12)])
def test_torch_same_shape_and_dtype_out(dtype, shape):
    x = torch.rand(*shape).to(dtype)
    out = Restorer(Darken(), device="cpu")(x)
    assert out.shape == x.shape and out.dtype == dtype and out.device == x.device
    torch.testing.assert_close(out.float(), x.float() * 0.5, atol=1e-3, rtol=0)


def test_torch_uint8_and_bad_shapes(ident):
    x = torch.randint(0, 256, (3, 9, 9), dtype=torch.uint8)
    assert torch.equal(ident(x), x)
    with pytest.raises(ValueError, match="3×H×W"):
        ident(torch.rand(1, 9, 9))


def test_requires_grad_input_is_fine(ident):
    x = torch.rand(3, 8, 8, requires_grad=True)
    out = ident(x)
    assert not out.requires_grad
    torch.testing.assert_close(out, x.detach())


# ------------------------------------------------------------------ restore() and the package
def test_restore_function_and_callable_package():
    image = np.full((9, 9, 3), 0.8, np.float32)
    model = Darken()
    np.testing.assert_allclose(restore(image, model=model, device="cpu"), 0.4, atol=1e-6)
    np.testing.assert_allclose(aioir.restore(image, model=model, device="cpu"), 0.4, atol=1e-6)
    np.testing.assert_allclose(
        aioir.restore(image, model=model, tile=4, tile_overlap=2, device="cpu"), 0.4, atol=1e-6
    )


def test_restore_default_model_is_a_clear_error(monkeypatch):
    monkeypatch.setattr("aioir.restore.resolve.shipped_weights", lambda name: None)
    with pytest.raises(ConfigError, match="no default model is shipped yet"):
        restore(np.zeros((4, 4, 3), np.uint8))


def test_output_is_clamped_to_unit_range():
    class Bright(nn.Module):
        def forward(self, x):
            return x + 2.0

    out = Restorer(Bright(), device="cpu")(np.zeros((4, 4, 3), np.float32))
    assert out.max() == 1.0


# ------------------------------------------------------------------ options
def test_option_validation():
    with pytest.raises(ConfigError, match="tile"):
        Restorer(Darken(), tile=-1)
    with pytest.raises(ConfigError, match="overlap"):
        Restorer(Darken(), tile_overlap=-3)
    with pytest.raises(ConfigError, match="precision"):
        Restorer(Darken(), precision="fp8")
    with pytest.raises(ConfigError, match="device"):
        Restorer(Darken(), device="banana")


def test_tiles_below_twice_the_overlap_are_refused():
    """Issue 22, bug 2: tile 8 clamped the overlap and ran 47,124 forwards on a small photo."""
    with pytest.raises(ConfigError, match="smallest tile is 64"):
        Restorer(Darken(), tile=8)
    with pytest.raises(ConfigError, match="smallest tile is 16"):
        Restorer(Darken(), tile=15, tile_overlap=8)
    assert Restorer(Darken(), tile=64).tile == 64
    assert Restorer(Darken(), tile=8, tile_overlap=4).tile == 8


@pytest.mark.parametrize("strength", [0.0, 0.25, 1.0])
def test_strength_blends_the_restoration_into_the_input(strength):
    image = np.random.default_rng(0).random((6, 7, 3)).astype(np.float32)
    out = Restorer(Darken(), device="cpu", strength=strength)(image)
    # Darken halves the image: input + s·(0.5·input − input) = (1 − s/2)·input
    np.testing.assert_allclose(out, (1.0 - strength / 2) * image, atol=1e-6)
    if strength == 0.0:
        assert np.array_equal(out, image)  # exactly the input, not a rounding of it


def test_strength_applies_after_test_time_adaptation():
    class Adapter:
        def __call__(self, model, image, run):
            return image * 0 + 0.125

    out = Restorer(Darken(), tta=Adapter(), strength=0.5, device="cpu")(
        np.ones((4, 4, 3), np.float32)
    )
    np.testing.assert_allclose(out, 0.5 * 1.0 + 0.5 * 0.125)


@pytest.mark.parametrize("strength", [-0.1, 1.5, float("nan")])
def test_strength_outside_zero_one_is_refused(strength):
    with pytest.raises(ConfigError, match="strength"):
        Restorer(Darken(), strength=strength)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_cuda_without_cuda_is_a_clear_error():
    with pytest.raises(ConfigError, match="CUDA is not available"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


def test_bf16_on_cpu_runs_close_to_fp32():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1)).eval()
    x = torch.rand(1, 3, 16, 16)
    r16 = Restorer(net, device="cpu", precision="bf16")
    assert r16.dtype == torch.bfloat16
    assert Restorer(net, device="cpu").dtype == torch.float32  # auto on CPU is fp32
    ref = net(x).clamp(0, 1).detach()
    torch.testing.assert_close(r16(x), ref, atol=0.05, rtol=0)


def test_auto_tiling_follows_the_memory_heuristic(monkeypatch):
    calls: list[tuple[int, ...]] = []

    class Recorder(nn.Module):
        size_multiple = 8
        inference_bytes_per_pixel = 1000

        def forward(self, x):
            calls.append(tuple(x.shape))
            return x

    monkeypatch.setattr(api, "available_memory", lambda device: 2 * 1000 * 24 * 24)
    monkeypatch.setattr(tiling, "MIN_AUTO_TILE", 8)
    r = Restorer(Recorder(), device="cpu", tile_batch_size=1, tile_overlap=8)
    assert r.tile_for(16, 16) is None  # 256 px × 1000 B fits half of the budget
    x = torch.rand(1, 3, 100, 60)
    assert torch.equal(r.restore_tensor(x), x)
    assert len(calls) > 1 and all(s[-1] <= 24 and s[-2] <= 24 for s in calls)
    calls.clear()
    r0 = Restorer(Recorder(), device="cpu", tile=0)  # 0: never tile
    r0.restore_tensor(x)
    assert calls == [(1, 3, 104, 64)]


def test_default_model_restores_a_phone_photo_in_one_pass_with_free_memory(monkeypatch):
    """Issue 22, bug 1: 360-px tiles for every size from 512² to 4000×3000, 21 GiB free."""
    monkeypatch.setattr(api, "available_memory", lambda device: 21 << 30)
    r = Restorer("default", device="cpu")
    assert r.tile_for(480, 640) is None and r.tile_for(512, 512) is None
    # within the CPU cap (3 GiB less the image's buffers, the 24-MP target): ~0.8 MP per pass,
    # large tiles beyond, which share the decisions
    assert r.tile_for(800, 1000) is None
    assert r.tile_for(960, 1280) >= 600 and r.tile_for(3000, 4000) >= 700
    assert Restorer("default", device="cpu", tile=512).tile_for(960, 1280) == 512  # forced


def test_on_tile_reports_each_pass():
    seen: list[tuple[int, int]] = []
    r = Restorer(Darken(), device="cpu", tile=16, tile_overlap=4, self_ensemble="flips")
    r.on_tile = lambda done, total: seen.append((done, total))
    r.restore_tensor(torch.rand(1, 3, 30, 20))
    assert seen == [(k, 6) for k in range(1, 7)] * 4  # 3×2 tiles, 4 flips
    seen.clear()
    r.restore_tensor(torch.rand(1, 3, 16, 16))  # one tile
    assert seen == [(1, 1)] * 4


# ------------------------------------------------------------------ test-time adaptation
def test_tta_on_a_model_without_adapter_is_refused():
    with pytest.raises(ConfigError, match="test-time adaptation is not available for model"):
        Restorer(Darken(), tta=True)


def test_tta_routes_to_the_registered_adapter():
    seen = {}

    class Adapter:
        def __call__(self, model, image, run):
            seen["grad_mode"] = torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
            seen["shape"] = tuple(image.shape)
            return run(image) + 0.25  # e.g. restored by the adapted model

    model = Darken()
    model.aioir_config = {"architecture": "tta-test-arch", "preset": "tiny", "overrides": {}}
    adaptation.register_test_time_adapter("tta-test-arch")(lambda m: Adapter())
    try:
        out = Restorer(model, tta=True, device="cpu")(np.full((6, 6, 3), 0.5, np.float32))
    finally:
        adaptation.ADAPTERS.unregister("tta-test-arch")
    np.testing.assert_allclose(out, 0.5, atol=1e-6)
    assert seen == {"grad_mode": True, "shape": (1, 3, 6, 6)}


def test_tta_accepts_an_adapter_object():
    class Adapter:
        def __call__(self, model, image, run):
            return image * 0 + 0.125

    assert isinstance(Adapter(), adaptation.TestTimeAdapter)
    out = Restorer(Darken(), tta=Adapter(), device="cpu")(np.ones((4, 4, 3), np.float32))
    np.testing.assert_allclose(out, 0.125)


# ------------------------------------------------------------------ files
def test_restore_file_keeps_16_bit_gray_and_alpha(tmp_path):
    rng = np.random.default_rng(2)
    rgb = rng.random((9, 7, 3)).astype(np.float32)
    alpha = rng.random((9, 7)).astype(np.float32)
    src = write_image(tmp_path / "in.png", rgb, alpha=alpha, bit_depth=16)
    r = Restorer(Identity(), device="cpu")
    out = r.restore_file(src, tmp_path / "out" / "in.png")
    a, b = load_image(src), load_image(out)
    assert b.bit_depth == 16 and not b.grayscale and b.alpha is not None
    np.testing.assert_array_equal(a.rgb, b.rgb)
    np.testing.assert_array_equal(a.alpha, b.alpha)
    gray = write_image(tmp_path / "g.png", rgb[:, :, 0], grayscale=True)
    assert load_image(r.restore_file(gray, tmp_path / "out" / "g.png")).grayscale


def test_restore_file_refuses_existing_output_and_the_input_itself(tmp_path):
    src = write_image(tmp_path / "a.png", np.zeros((4, 4, 3), np.float32))
    out = tmp_path / "o.png"
    out.write_bytes(b"keep me")
    r = Restorer(Darken(), device="cpu")
    with pytest.raises(ImageWriteError, match="exists"):
        r.restore_file(src, out)
    assert out.read_bytes() == b"keep me"
    with pytest.raises(ImageWriteError, match="is the input file"):
        r.restore_file(src, src, overwrite=True)
    r.restore_file(src, out, overwrite=True)
    assert load_image(out).rgb.shape == (4, 4, 3)


def test_compare_image_layout():
    before = np.zeros((5, 4, 3), np.float32)
    after = np.ones((5, 4, 3), np.float32)
    side = compare_image(before, after, separator=2)
    assert side.shape == (5, 10, 3) and side.dtype == np.uint8
    assert side[:, :4].max() == 0 and side[:, 6:].min() == 255 and side[:, 4:6].min() == 255


# ------------------------------------------------------------------ float range (issue 22, 3)
def test_float_image_in_0_255_is_refused_not_clipped_to_white():
    """A float64 photo in 0–255 used to be clipped to [0, 1] and come back near-white."""
    rng = np.random.default_rng(5)
    photo = rng.integers(0, 256, size=(12, 10, 3)).astype(np.float64)
    with pytest.raises(ConfigError, match=r"0–255; divide by 255"):
        aioir.restore(photo, model=Darken(), device="cpu")
    with pytest.raises(ConfigError, match="must be in \\[0, 1\\]"):
        restore(Image.fromarray(photo[:, :, 0].astype(np.float32), mode="F"), model=Darken())
    with pytest.raises(ConfigError, match="0–255"):
        restore(torch.from_numpy(photo).permute(2, 0, 1), model=Darken(), device="cpu")
    with pytest.raises(ConfigError, match="0–65535"):
        restore(photo * 257.0, model=Darken(), device="cpu")
    # the same photo scaled to [0, 1] restores; a slight overshoot passes, as documented
    np.testing.assert_allclose(restore(photo / 255.0, model=Darken()), photo / 510.0, atol=1e-6)
    out = restore(np.full((4, 4, 3), 1.02), model=Darken(), device="cpu")
    np.testing.assert_allclose(out, 0.51, atol=1e-6)


# ------------------------------------------------------------------ random weights (issue 22, 7)
def test_restore_refuses_a_named_model_with_random_weights():
    """``aioir.load_model("restormer-tiny")`` has random weights: restore() refuses it, as
    ``aioir restore --model restormer-tiny`` does, unless allow_untrained=True."""
    model = aioir.load_model("restormer-tiny")
    image = np.full((8, 8, 3), 0.5, np.float32)
    with pytest.raises(ConfigError, match=r"random weights.*allow_untrained=True"):
        aioir.restore(image, model=model, device="cpu")
    with pytest.raises(ConfigError, match="random weights"):
        Restorer(model, device="cpu")
    assert restore(image, model=model, device="cpu", allow_untrained=True).shape == image.shape


def test_loaded_or_trained_weights_lift_the_refusal():
    loaded = aioir.load_model("restormer-tiny")
    loaded.load_state_dict(aioir.load_model("restormer-tiny").state_dict())
    Restorer(loaded, device="cpu")  # weights were loaded into it: the user's call
    trained = aioir.load_model("restormer-tiny").train()
    optimizer = torch.optim.SGD(trained.parameters(), lr=0.01)
    trained(torch.rand(1, 3, 8, 8)).mean().backward()
    optimizer.step()
    Restorer(trained, device="cpu")
    Restorer(nn.Conv2d(3, 3, 1), device="cpu")  # any other module is the user's own


# ------------------------------------------------------------------ help (issue 22, 8)
def test_help_of_the_callable_package_shows_the_restore_function_first():
    import pydoc

    doc = aioir.restore.__doc__
    assert doc.startswith("aioir.restore(image, model='default', tta=False, tile=None")
    assert "Restore one image (numpy, PIL or torch)" in doc
    assert "The package aioir.restore:" in doc  # the package page follows
    page = pydoc.render_doc(aioir.restore, renderer=pydoc.plaintext)
    description = page.split("DESCRIPTION", 1)[1]
    assert description.index("Restore one image") < description.index("The package")


def test_the_hint_is_the_models_for_the_image_as_it_is():
    """:meth:`Restorer.suggested_task`: the model's hint after its first pass over the image —
    the image as it is, not a flipped copy of a self-ensemble's later passes — kept until the
    next restoration; ``None`` for a model that gives none."""
    from aioir.models.protocols import TaskSuggestion
    from helpers import hinting_filter_bank

    model = hinting_filter_bank()
    hints = iter([TaskSuggestion("haze", 0.9, 1.0), TaskSuggestion("rain", 0.6, 0.8)])
    calls = []

    def suggested_task() -> TaskSuggestion | None:
        calls.append(1)
        return next(hints)

    model.suggested_task = suggested_task  # the first call's hint, then another
    r = Restorer(model, device="cpu", self_ensemble="flips")
    assert r.suggested_task() is None  # nothing restored yet
    r.restore_tensor(torch.rand(1, 3, 16, 16))
    assert r.suggested_task() == TaskSuggestion("haze", 0.9, 1.0) and len(calls) == 1
    r.restore_tensor(torch.rand(1, 3, 16, 16))
    assert r.suggested_task() == TaskSuggestion("rain", 0.6, 0.8) and len(calls) == 2
    plain = Restorer(hinting_filter_bank(), device="cpu")
    plain.restore_tensor(torch.rand(1, 3, 16, 16))
    assert plain.suggested_task() is not None and plain.suggested_task().task == "haze"
    assert Restorer(Darken(), device="cpu").suggested_task() is None


def test_follow_hint_restores_a_hinted_image_again_as_told():
    """``follow_hint``: an image the model hinted on comes back as the model told the hinted
    task restores it (:meth:`Restorer.followed_hint` names it; the hint stays readable); an
    image without a hint comes back blind; a batch is followed image by image; the model is
    blind again afterwards."""
    from helpers import hinting_filter_bank

    x = torch.rand(2, 3, 16, 16)
    blind = Restorer(hinting_filter_bank(), device="cpu").restore_tensor(x)
    told = Restorer(
        hinting_filter_bank(), device="cpu", model_options={"task": "haze"}
    ).restore_tensor(x)
    assert not torch.allclose(blind, told)  # the told gate picks another candidate
    r = Restorer(hinting_filter_bank(), device="cpu", follow_hint=True)
    assert "follow_hint=True" in repr(r) and r.followed_hint() is None
    out = r.restore_tensor(x)
    torch.testing.assert_close(out, told)
    assert r.followed_hint() is not None and r.followed_hint().task == "haze"
    assert r.followed_hint().sure
    assert r.suggested_task() == r.followed_hint()
    assert r.model.filter_bank.given_classes == []  # blind again

    unsure = Restorer(hinting_filter_bank(haze=0.45), device="cpu", follow_hint=True)
    torch.testing.assert_close(unsure.restore_tensor(x), blind)  # no hint, nothing followed
    assert unsure.followed_hint() is None and unsure.suggested_task() is None
    # a hint the model is not sure of is given, not followed
    from aioir.models.filter_bank import FOLLOW_MIN_PROBABILITY

    shy = Restorer(
        hinting_filter_bank(haze=FOLLOW_MIN_PROBABILITY - 0.05), device="cpu", follow_hint=True
    )
    torch.testing.assert_close(shy.restore_tensor(x), blind)
    assert shy.suggested_task() is not None and not shy.suggested_task().sure
    assert shy.followed_hint() is None


def test_follow_hint_is_refused_where_there_is_no_hint_to_follow():
    """A model that gives no hints, or one told its task, refuses ``follow_hint``."""
    from helpers import hinting_filter_bank

    with pytest.raises(ConfigError, match="gives no hints"):
        Restorer(Darken(), device="cpu", follow_hint=True)
    with pytest.raises(ConfigError, match="task is given"):
        Restorer(
            hinting_filter_bank(), device="cpu", follow_hint=True, model_options={"task": "haze"}
        )
