from __future__ import annotations

import pytest
import torch

from seglib.core.device import autocast, autocast_dtype, cpu_supports_bf16, pick_device, precision
from seglib.core.errors import SeglibError


def test_auto_picks_an_available_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEGLIB_DEVICE", raising=False)
    dev = pick_device("auto")
    assert dev.type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        assert dev.type != "cuda"


def test_seglib_device_pins_what_auto_picks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGLIB_DEVICE", "cpu")
    assert pick_device("auto") == torch.device("cpu")  # also where a GPU is visible
    monkeypatch.setenv("SEGLIB_DEVICE", "tpu")
    with pytest.raises(SeglibError, match="unknown device 'tpu'.*SEGLIB_DEVICE"):
        pick_device("auto")
    assert pick_device("cpu") == torch.device("cpu")  # an explicit device wins


def test_unavailable_or_unknown_device_is_a_clear_error() -> None:
    if not torch.cuda.is_available():
        with pytest.raises(SeglibError, match="no CUDA"):
            pick_device("cuda")
    with pytest.raises(SeglibError, match="unknown device"):
        pick_device("tpu")


@pytest.mark.parametrize("choice", ["auto", "fp32", "bf16"])
def test_autocast_runs_matmul_in_the_chosen_dtype(monkeypatch: pytest.MonkeyPatch,
                                                  choice: str) -> None:
    monkeypatch.setenv("SEGLIB_PRECISION", choice)
    cpu = torch.device("cpu")
    expected = {"fp32": torch.float32, "bf16": torch.bfloat16,
                "auto": torch.bfloat16 if cpu_supports_bf16() else torch.float32}[choice]
    assert precision() == choice and (autocast_dtype(cpu) or torch.float32) == expected
    x = torch.randn(8, 8)
    with autocast(cpu):
        y = x @ x
    assert y.dtype == expected  # bf16 runs (emulated) on a CPU without native bf16 too
    with autocast(cpu, enabled=False):
        assert (x @ x).dtype == torch.float32


def test_unknown_precision_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGLIB_PRECISION", "fp8")
    with pytest.raises(SeglibError, match="SEGLIB_PRECISION='fp8' is not a precision; set it"):
        autocast_dtype(torch.device("cpu"))
    monkeypatch.setenv("SEGLIB_PRECISION", " BF16 ")
    assert precision() == "bf16"
    monkeypatch.delenv("SEGLIB_PRECISION")
    assert precision() == "auto"
