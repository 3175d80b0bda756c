"""Graph capture: eager passes may skip work by the data, traced ones may not."""

from __future__ import annotations

import torch

from aioir.nn.graph_capture import capturing_graph


def test_false_in_eager_mode_true_while_tracing():
    seen: list[bool] = []

    def record(x: torch.Tensor) -> torch.Tensor:
        seen.append(capturing_graph())
        return x * 2

    record(torch.ones(1))
    torch.jit.trace(record, torch.ones(1), check_trace=False)
    assert seen == [False, True]
