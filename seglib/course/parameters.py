"""The course's notebook parameters (``-p NAME VALUE``), checked before notebook 01 starts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from seglib.core.errors import SeglibError
from seglib.core.settings import check

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


def check_course_parameters(params: Mapping[str, Any],
                            photo_names: Sequence[str] = ()) -> dict[str, Any]:
    """The course's notebook parameters with every known one checked (``-p NAME VALUE``);
    ``photo_names`` (file names in the photo folder) checks ``show_photos`` lists."""
    from seglib.training.data import STANDARD_SUBSETS

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
