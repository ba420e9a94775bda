"""Pick the compute device and the autocast dtype that is fast on it.

Two environment variables pin what ``auto`` means, for every command, notebook and test:

- ``SEGLIB_DEVICE`` (``cpu``, ``cuda`` or ``mps``): the device ``pick_device("auto")`` picks
  (unset or ``auto``: cuda, then mps, then cpu).
- ``SEGLIB_PRECISION`` (``auto``, ``fp32`` or ``bf16``): what :func:`autocast` runs in.
  ``auto`` (the default) is bf16 on CPUs with native bf16 (AVX512-BF16 or AMX), fp16/bf16 on
  CUDA and fp32 elsewhere; ``fp32`` turns autocast off everywhere; ``bf16`` forces bf16 on
  CPU and CUDA, also on a CPU without native bf16 (emulated there: slower, but the same
  rounding). A long training run ends on other numbers in bf16 than in fp32, so the tests
  pin ``fp32`` and the CPU (tests/conftest.py); docs/benchmarks.md has the spread.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

from seglib.core.errors import SeglibError

DEVICE_ENV = "SEGLIB_DEVICE"
PRECISION_ENV = "SEGLIB_PRECISION"
PRECISIONS = ("auto", "fp32", "bf16")


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` picks ``$SEGLIB_DEVICE`` when it is set, else cuda, then mps, then cpu; an
    explicit name is checked to exist."""
    if name == "auto":
        name = os.environ.get(DEVICE_ENV, "").strip().lower() or "auto"
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SeglibError("--device cuda asked for, but no CUDA GPU is visible; use --device auto")
    if name == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise SeglibError("--device mps asked for, but MPS is not available; use --device auto")
    if name not in ("cpu", "cuda", "mps"):
        raise SeglibError(f"unknown device {name!r}; choose auto, cpu, cuda or mps "
                          f"(also in ${DEVICE_ENV})")
    return torch.device(name)


def cpu_supports_bf16() -> bool:
    """True when this CPU has native bf16 matrix instructions (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def precision() -> str:
    """``$SEGLIB_PRECISION``: ``auto`` (unset), ``fp32`` or ``bf16``."""
    value = os.environ.get(PRECISION_ENV, "").strip().lower() or "auto"
    if value not in PRECISIONS:
        raise SeglibError(f"{PRECISION_ENV}={value!r} is not a precision; set it to auto, "
                          "fp32 or bf16 (or unset it)")
    return value


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The reduced-precision dtype :func:`autocast` uses on ``device``, or None for plain
    fp32 (see ``SEGLIB_PRECISION`` in the module doc)."""
    choice = precision()
    if choice == "fp32" or device.type not in ("cpu", "cuda"):
        return None
    if choice == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_supports_bf16() else None


def precision_name(device: torch.device, enabled: bool = True) -> str:
    """``bf16``, ``fp16`` or ``fp32``: what a model under :func:`autocast` runs in."""
    dtype = autocast_dtype(device) if enabled else None
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "fp32")


@contextlib.contextmanager
def autocast(device: torch.device, enabled: bool = True) -> Iterator[None]:
    """Autocast to :func:`autocast_dtype` on ``device`` (a no-op where it would not help)."""
    dtype = autocast_dtype(device) if enabled else None
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


@contextlib.contextmanager
def at_most_threads(n: int) -> Iterator[None]:
    """Run torch on at most ``n`` CPU threads inside the block (the count is given back)."""
    old = torch.get_num_threads()
    if old <= n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
