import torch

from aioir.models import create_model
from aioir.nn.memory_format import to_channels_last


def test_channels_last_handles_5d_prompt_banks_and_keeps_outputs():
    torch.manual_seed(0)
    model = create_model("promptir-tiny").eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)
        to_channels_last(model)
        out = model(x.contiguous(memory_format=torch.channels_last))
    conv = model.patch_embed.proj.weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
