"""Every setting a user can type, checked in one place before anything runs.

The CLI checks each command option named like a setting here
(:func:`seglib.cli.options.check_args`, for every command), the course runner checks the
``-p NAME VALUE`` notebook parameters (:mod:`seglib.course.parameters`) before the first
notebook starts, and the training presets check their overrides with :func:`check`. A bad
value is one line:
``--size must be a whole number from 16 to 1024 (pixels ...), got 100000``.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import Any

from seglib.core.errors import SeglibError

DEVICES = ("auto", "cpu", "cuda", "mps")

MAX_SIZE = 1024  # training side in pixels: the photos are held in memory at this size


@dataclass(frozen=True)
class Setting:
    """What one setting accepts: ``kind`` int, float, bool or choice; a closed range
    ``low``..``high`` (``low_open``: strictly above ``low``); ``optional``: None allowed."""

    kind: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    optional: bool = False
    unit: str = ""
    low_open: bool = False
    owner: str = ""  # "module:NAME" of the choices when a higher layer owns them

    def rule(self) -> str:
        """The accepted values, in words."""
        if self.kind == "choice":
            return f"one of {', '.join(self.choices)}"
        if self.kind == "bool":
            return "true or false"
        what = "a whole number" if self.kind == "int" else "a finite number"
        unit = f" ({self.unit})" if self.unit else ""
        if self.low is not None and self.high is not None:
            return f"{what} from {_num(self.low)} to {_num(self.high)}{unit}"
        if self.low_open:
            return f"a positive finite number{unit}"
        if self.low is not None:
            return f"{what} of at least {_num(self.low)}{unit}"
        return what + unit


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


def _owned_choices(owner: str) -> tuple[str, ...]:
    """The choices named by ``owner`` (``"package.module:NAME"``). Choices that a higher layer
    owns (the policies, the presets, the backends ...) are named here, not imported, so this
    module stays at the bottom of the package; they are looked up when a value is checked."""
    module, _, name = owner.partition(":")
    return tuple(getattr(importlib.import_module(module), name))


SETTINGS: dict[str, Setting] = {
    "size": Setting("int", 16, MAX_SIZE, unit="pixels; the photos are held in memory at "
                                               "this size"),
    "epochs": Setting("int", 1, 100_000),
    "batch": Setting("int", 2, 4096, unit="photos per step; batch norm needs two or more"),
    "lr": Setting("float", 0, low_open=True, unit="learning rate, e.g. 0.003"),
    "n": Setting("int", 1, unit="photos"),
    "seed": Setting("int", 0),
    "limit": Setting("int", 1, unit="photos"),
    "rounds": Setting("int", 1, 20),
    "refine": Setting("int", 0, 20, unit="rounds"),
    "repeats": Setting("int", 1, 100, unit="runs per model"),
    "width": Setting("int", 1, 255, unit="border pixels"),
    "points_per_side": Setting("int", 1, 256),
    "device": Setting("choice", choices=DEVICES),
    "backend": Setting("choice", owner="seglib.backends:CHOICES"),
    "mode": Setting("choice", owner="seglib.backends:MODES"),
    "policy": Setting("choice", owner="seglib.masks.policy:POLICIES"),
    "preset": Setting("choice", owner="seglib.training.presets:PRESETS"),
    "arch": Setting("choice", owner="seglib.training.models:ARCHS"),
    "engine": Setting("choice", owner="seglib.core.parallel:ENGINES"),
    "workers": Setting("int", 1, 4096, unit="worker processes"),
    "count": Setting("int", 1, unit="photos"),
    "side": Setting("int", 16, 8192, unit="pixels"),
    "switch": Setting("bool"),
    "val": Setting("float", 0, 0.9, unit="the fraction of photos in the val split"),
}


def setting(name: str) -> Setting:
    """The setting ``name`` with its choices filled in."""
    s = SETTINGS[name]
    if s.kind == "choice" and s.owner:
        return Setting("choice", choices=_owned_choices(s.owner))
    return s


def check(name: str, value: Any, label: str | None = None, optional: bool = False) -> Any:
    """``value`` checked against setting ``name`` (ints given as 5.0 become 5); a bad one
    raises a one-line :class:`SeglibError` that says what ``label`` accepts."""
    s = setting(name)
    label = label or name
    if value is None and (optional or s.optional):
        return None
    bad = SeglibError(f"{label} must be {s.rule()}, got {value!r}")
    if s.kind == "choice":
        if not isinstance(value, str) or value not in s.choices:
            raise bad
        return value
    if s.kind == "bool":
        if not isinstance(value, bool):
            raise bad
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad
    if not math.isfinite(value):
        raise bad
    if s.kind == "int":
        if value != int(value):
            raise bad
        value = int(value)
    if s.low is not None and (value <= s.low if s.low_open else value < s.low):
        raise bad
    if s.high is not None and value > s.high:
        raise bad
    return value


