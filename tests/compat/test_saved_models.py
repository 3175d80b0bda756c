"""Every saved model in the repository restores as it did before the method-packages redesign.

``saved_models_reference.npz`` holds five 72×88 sample crops (noise, veil, dark, colour cast,
clean) and what each saved model returned for them, recorded with the code of commit 6432404 on
one CPU thread (the v4 candidate's, v4's and its noise expert's, added 2026-12-02/03, and v5's,
2026-12-05, with the code of their own commits; ``v3`` and ``v4`` hold what the shipped default
returned until the next version replaced it; ``default`` is v12's, recorded 2026-12-08 with
the code of its own commit — its classifier and gates are new, up to 22 levels from v11's, which
were v10's to within one level). The 8-bit outputs may differ by at most one level (float
summation order); the tests pin one thread too, since test-time adaptation's gradient steps
amplify the difference that another thread count's summation order makes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from aioir.restore.api import Restorer

REFERENCE = Path(__file__).with_name("saved_models_reference.npz")
ROOT = Path(__file__).resolve().parents[2]
MODELS = {
    "default": "default",
    "v1": str(ROOT / "checkpoints" / "udair-small-v1"),
    "v2": str(ROOT / "checkpoints" / "udair-small-v2"),
    "v3": str(ROOT / "checkpoints" / "udair-small-v3"),
    "photos_h100": str(ROOT / "checkpoints" / "udair-small-photos-h100"),
    "v4_candidate": str(ROOT / "checkpoints" / "udair-small-v4-candidate"),
    "v4": str(ROOT / "checkpoints" / "udair-small-v4"),
    "noise_expert_v4": str(ROOT / "checkpoints" / "noise-expert-v4"),
}
CASES = [("default", False), ("default", True), ("v1", False), ("v2", False), ("v2", True),
         ("v3", False), ("v3", True), ("photos_h100", False), ("v4_candidate", False),
         ("v4_candidate", True), ("v4", False), ("v4", True), ("noise_expert_v4", False)]  # fmt: skip


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _restore(spec: str, inputs: np.ndarray, tta: bool) -> np.ndarray:
    torch.manual_seed(0)
    restorer = Restorer(spec, device="cpu", tile=0, tta=tta)
    return np.stack([restorer(image) for image in inputs])


@pytest.mark.parametrize(("key", "tta"), CASES, ids=[f"{k}{'-tta' if t else ''}" for k, t in CASES])
def test_saved_model_restores_as_recorded(reference, key, tta):
    got = _restore(MODELS[key], reference["inputs"], tta)
    want = reference[f"{key}{'_tta' if tta else ''}"]
    diff = np.abs(got.astype(np.int16) - want.astype(np.int16))
    assert diff.max() <= 1, f"{key} (tta={tta}): max 8-bit difference {diff.max()}"


def test_default_model_copied_elsewhere_restores_identically(reference, tmp_path):
    from aioir.restore.resolve import shipped_weights

    source = shipped_weights("default")
    assert source is not None
    copy = tmp_path / "my-model"
    shutil.copytree(source, copy)
    for tta in (False, True):
        got = _restore(str(copy), reference["inputs"], tta)
        want = reference["default_tta" if tta else "default"]
        assert np.abs(got.astype(np.int16) - want.astype(np.int16)).max() <= 1


def _holds_weights_of(
    module: torch.nn.Module, folder: str, storage: torch.dtype | None = None
) -> bool:
    """Whether ``module``'s state dict is, tensor for tensor, ``checkpoints/FOLDER``'s weights
    (rounded through ``storage`` first, for an expert saved in another dtype)."""
    from safetensors.torch import load_file

    weights = load_file(str(ROOT / "checkpoints" / folder / "model.safetensors"))
    if storage is not None:
        weights = {k: v.to(storage).to(v.dtype) for k, v in weights.items()}
    state = module.state_dict()
    return state.keys() == weights.keys() and all(torch.equal(state[k], weights[k]) for k in state)


def test_the_default_models_noise_expert_has_its_black_and_white_twin():
    """v6 = v5 and a twin for its noise expert: the colour branch holds v4's noise expert, the
    grey branch the grey-aware one (colour outputs are v5's: the recorded cases above)."""
    from aioir.models import load_model
    from aioir.nn.grey_twin import GreyTwin

    model = load_model("default")
    twin = model.filter_bank.experts[0]
    experts = model.candidate_names()[-model.filter_bank.num_experts :]
    assert isinstance(twin, GreyTwin) and experts[0] == "noise expert"
    for branch, folder in ((twin.colour, "noise-expert-v4"), (twin.grey, "noise-expert-grey")):
        assert _holds_weights_of(branch.module, folder)


def test_the_default_models_camera_shake_expert_is_the_wide_one_averaged_over_flips():
    """v9 = v8 with the wider camera-shake expert (nafnet-small, blur-expert-small-v3) stored in
    half precision, run over four flips; v10 and v11 keep it (v10's classifier and gate are new;
    v11 adds a fifth expert after it, the brightening gamma, and fine-tunes the gates)."""
    from safetensors.torch import load_file

    from aioir.models import load_model
    from aioir.nn.ensemble import GeometricEnsemble

    model = load_model("default")
    expert = model.filter_bank.experts[3]
    assert isinstance(expert, GeometricEnsemble) and expert.mode == "flips"
    assert model.candidate_names()[-model.filter_bank.num_experts + 3] == "camera-shake expert"
    assert _holds_weights_of(expert.module, "blur-expert-small-v3", storage=torch.float16)
    saved = load_file(str(ROOT / "src/aioir/weights/default/model.safetensors"))
    stored = {v.dtype for k, v in saved.items() if ".experts.3." in k}  # as the file holds them
    assert stored == {torch.float16}


def test_the_default_model_denoises_a_black_and_white_photo():
    """A greyscale photo with σ 25 noise (the same in every channel, as a grey file has it)
    comes back grey and ≥ 6 dB cleaner (v5, without the twin, gained about 0.5 dB)."""
    from PIL import Image

    import aioir

    photo = Image.open(ROOT / "src" / "aioir" / "assets" / "samples" / "bridge.jpg")
    clean = np.asarray(photo.convert("L").resize((128, 96)), dtype=np.float32) / 255
    noise = np.random.default_rng(0).normal(0, 25 / 255, clean.shape)
    noisy = (np.clip(np.round((clean + noise) * 255), 0, 255) / 255).astype(np.float32)
    restored = np.asarray(aioir.restore(noisy), dtype=np.float32)
    assert restored.shape == clean.shape

    def psnr(a: np.ndarray) -> float:
        return float(-10 * np.log10(np.mean((a - clean) ** 2)))

    assert psnr(restored) >= psnr(noisy) + 6.0


def test_the_default_model_has_a_told_gate_that_only_a_given_task_reads():
    """v7 = v6 and a told gate: blind, the recorded outputs above; told that the hazy crop of
    the reference set is hazy, the told gate chooses (a stronger dehazing than the blind
    head's hedge: it changes the crop more)."""
    from aioir.models import load_model
    from aioir.nn.filter_bank import ToldGate

    model = load_model("default").eval()
    head = model.filter_bank
    assert isinstance(head.told_gate, ToldGate)
    with np.load(REFERENCE) as data:
        veil = torch.from_numpy(data["inputs"][1]).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        blind = model(veil)
        model.set_inference_options(task="haze")
        told = model(veil)
        model.set_inference_options(task=None)
    assert (told - veil).abs().mean() > (blind - veil).abs().mean()


def test_the_default_models_fifth_expert_is_the_brightening_gamma():
    """v11 = v10 and an adaptive gamma that only brightens, last among the experts."""
    from aioir.models import AdaptiveGamma, load_model

    model = load_model("default")
    gamma = model.filter_bank.experts[4]
    assert isinstance(gamma, AdaptiveGamma) and gamma.brighten_only and gamma.target == 0.5
    assert model.candidate_names()[-1] == "brightening gamma"
