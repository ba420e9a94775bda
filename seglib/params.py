"""Every setting a user can type, checked in one place before anything runs.

The CLI checks each command option named like a setting here (:func:`check_args`, called by
``seglib.cli`` for every command), the course runner checks the ``-p NAME VALUE`` notebook
parameters (:func:`check_course_parameters`) before the first notebook starts, and the
training presets check their overrides with :func:`check`. A bad value is one line:
``--size must be a whole number from 16 to 1024 (pixels ...), got 100000``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from seglib.errors import SeglibError

DEVICES = ("auto", "cpu", "cuda", "mps")
BACKENDS = ("auto", "sam", "opencv")
SAM_MODES = ("prompt", "everything")
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


def _lazy_choices(name: str) -> tuple[str, ...]:
    """Choices owned by other modules, imported only when a value is checked."""
    if name == "policy":
        from seglib.policy import POLICIES

        return tuple(POLICIES)
    if name == "preset":
        from seglib.presets import PRESETS

        return tuple(PRESETS)
    if name == "engine":
        from seglib.parallel import ENGINES

        return ENGINES
    from seglib.models import ARCHS

    return tuple(ARCHS)


SETTINGS: dict[str, Setting] = {
    "size": Setting("int", 16, MAX_SIZE, unit="pixels; the photos are held in memory at "
                                               "this size"),
    "epochs": Setting("int", 1, 100_000),
    "batch": Setting("int", 1, 4096, unit="photos per step"),
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
    "backend": Setting("choice", choices=BACKENDS),
    "mode": Setting("choice", choices=SAM_MODES),
    "policy": Setting("choice"),  # choices from seglib.policy.POLICIES
    "preset": Setting("choice"),  # choices from seglib.presets.PRESETS
    "arch": Setting("choice"),  # choices from seglib.models.ARCHS
    "engine": Setting("choice"),  # choices from seglib.parallel.ENGINES
    "workers": Setting("int", 1, 4096, unit="worker processes"),
    "count": Setting("int", 1, unit="photos"),
    "side": Setting("int", 16, 8192, unit="pixels"),
    "switch": Setting("bool"),
    "val": Setting("float", 0, 0.9, unit="the fraction of photos in the val split"),
}

# course notebook parameter -> setting (parameters not listed are paths or free text)
COURSE_PARAMETERS: dict[str, tuple[str, bool]] = {  # name -> (setting, None allowed)
    "image_size": ("size", True),
    "epochs": ("epochs", True),
    "repeats": ("repeats", True),
    "arch": ("arch", True),
    "device": ("device", False),
    "backend": ("backend", False),
    "sam_mode": ("mode", False),
    "policy": ("policy", False),
    "preset": ("preset", False),
    "engine": ("engine", False),
    "label_limit": ("limit", True),
    "timing_photos": ("count", False),
    "review_photos": ("count", False),
    "timing_masks": ("count", False),
    "timing_side": ("side", False),
    "refine": ("switch", False),
    "interactive": ("switch", False),
}
PHOTO_CHOICES = ("show_photos",)  # a count, or a list of file names / stems in the folder
SUBSET_LISTS = ("subsets", "models")


def setting(name: str) -> Setting:
    """The setting ``name`` with its choices filled in."""
    s = SETTINGS[name]
    if s.kind == "choice" and not s.choices:
        return Setting("choice", choices=_lazy_choices(name))
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


def check_args(args: argparse.Namespace) -> argparse.Namespace:
    """Every option of a command named like a setting (``--size``, ``--lr``, ``--limit``,
    ``--device`` ...), checked in place; options left at None are not checked."""
    for name, value in vars(args).items():
        if name in SETTINGS and value is not None:
            setattr(args, name, check(name, value, f"--{name.replace('_', '-')}"))
    return args


def check_course_parameters(params: Mapping[str, Any],
                            photo_names: Sequence[str] = ()) -> dict[str, Any]:
    """The course's notebook parameters with every known one checked (``-p NAME VALUE``);
    ``photo_names`` (file names in the photo folder) checks ``show_photos`` lists."""
    from seglib.data import STANDARD_SUBSETS

    out = dict(params)
    for name, value in params.items():
        label = f"-p {name}"
        if name in COURSE_PARAMETERS:
            key, optional = COURSE_PARAMETERS[name]
            out[name] = check(key, value, label, optional=optional)
        elif name == "workers":  # a number, or "auto" (the machine's cores)
            auto = isinstance(value, str) and value.strip().lower() == "auto"
            out[name] = "auto" if auto else check("workers", value, label + (
                " (a number or 'auto')"))
        elif name in PHOTO_CHOICES:
            out[name] = _check_photo_choice(value, label, photo_names)
        elif name in SUBSET_LISTS:
            items = value if isinstance(value, list) else None
            if not items or any(str(v) not in STANDARD_SUBSETS for v in items):
                raise SeglibError(f"{label} must be a list of {', '.join(STANDARD_SUBSETS)} "
                                  f"(e.g. '[\"10\", \"711\"]'), got {value!r}")
            out[name] = [str(v) for v in items]
    return out


def _check_photo_choice(value: Any, label: str, photo_names: Sequence[str]) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return check("count", value, label)
    names = ([s.strip() for s in value.split(",") if s.strip()] if isinstance(value, str)
             else value if isinstance(value, list) else None)
    if not names:
        raise SeglibError(f"{label} must be a number of photos or a list of file names, "
                          f"got {value!r}")
    if photo_names:
        known = set(photo_names) | {n.rsplit(".", 1)[0] for n in photo_names}
        missing = [str(n) for n in names if str(n) not in known]
        if missing:
            raise SeglibError(f"{label}: {', '.join(missing[:3])} not in the photo folder; "
                              f"known names start: {', '.join(sorted(photo_names)[:5])}")
    return value
