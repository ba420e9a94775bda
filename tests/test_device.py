from __future__ import annotations

import pytest
import torch

from seglib.device import autocast, autocast_dtype, pick_device
from seglib.errors import SeglibError


def test_auto_picks_an_available_device() -> None:
    dev = pick_device("auto")
    assert dev.type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        assert dev.type != "cuda"


def test_unavailable_or_unknown_device_is_a_clear_error() -> None:
    if not torch.cuda.is_available():
        with pytest.raises(SeglibError, match="no CUDA"):
            pick_device("cuda")
    with pytest.raises(SeglibError, match="unknown device"):
        pick_device("tpu")


def test_autocast_runs_matmul_in_the_chosen_dtype() -> None:
    cpu = torch.device("cpu")
    x = torch.randn(8, 8)
    with autocast(cpu):
        y = x @ x
    expected = autocast_dtype(cpu) or torch.float32
    assert y.dtype == expected
    with autocast(cpu, enabled=False):
        assert (x @ x).dtype == torch.float32
