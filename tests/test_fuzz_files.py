"""Random bytes and random contents for the files a user can edit, replace or damage: trimaps,
cached candidates (.npz) and run files (best.pt / last.pt, metrics.json). Each parser ends in
a result or one :class:`SeglibError` naming the file, never another exception.

(``labels.csv`` and ``overrides.csv`` are fuzzed with the label store's tests.)
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from seglib.core.errors import SeglibError
from seglib.masks.candidates import Candidates
from seglib.masks.trimap import load_trimap

FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
FUZZ_SLOW = settings(FUZZ, max_examples=20)  # each example loads a model


def ends_well(parse, path: Path):  # noqa: ANN001, ANN201
    """``parse(path)``: its result, or None after a SeglibError that names ``path``."""
    try:
        return parse(path)
    except SeglibError as exc:
        assert str(path) in str(exc), exc
        assert "\n" not in str(exc).strip(), exc
        return None


def write(data: bytes, name: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="fuzz-"))
    path = folder / name
    path.write_bytes(data)
    return path


# a few real files, so random edits start from something close to valid
def _png(a: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", a)
    assert ok
    return buf.tobytes()


VALID_TRIMAP = _png(np.array([[1, 2, 3], [2, 2, 3]], np.uint8))


def _npz() -> bytes:
    c = Candidates(np.zeros((2, 3, 4), bool), [0.5, 0.9], [0.8, 0.7], backend="opencv")
    return c.to_bytes()


VALID_NPZ = _npz()


def _checkpoint(payload: object) -> bytes:
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()


def damaged(valid: bytes) -> st.SearchStrategy[bytes]:
    """Random bytes, a valid file cut short, or a valid file with a few bytes changed."""
    cut = st.integers(0, len(valid)).map(lambda n: valid[:n])
    flips = st.lists(st.tuples(st.integers(0, len(valid) - 1), st.integers(0, 255)),
                     min_size=1, max_size=8)

    def flip(changes: list[tuple[int, int]]) -> bytes:
        b = bytearray(valid)
        for i, v in changes:
            b[i] = v
        return bytes(b)

    return st.one_of(st.binary(max_size=600), cut, flips.map(flip))


# -- trimaps ---------------------------------------------------------------------------------
@FUZZ
@given(damaged(VALID_TRIMAP))
def test_load_trimap_on_damaged_bytes(data: bytes) -> None:
    t = ends_well(load_trimap, write(data, "t.png"))
    if t is not None:
        assert t.ndim == 2 and set(np.unique(t)) <= {1, 2, 3}


@FUZZ
@given(arrays(st.sampled_from([np.uint8, np.uint16]),
              array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=6)
              .filter(lambda s: len(s) == 2 or s[2] in (1, 3, 4)),
              elements=st.integers(0, 5)))
def test_load_trimap_on_any_png(a: np.ndarray) -> None:
    t = ends_well(load_trimap, write(_png(a), "t.png"))
    if t is not None:
        assert t.shape == a.shape[:2] and set(np.unique(t)) <= {1, 2, 3}


# -- cached candidates -----------------------------------------------------------------------
@FUZZ
@given(damaged(VALID_NPZ))
def test_candidates_load_on_damaged_bytes(data: bytes) -> None:
    c = ends_well(Candidates.load, write(data, "c.npz"))
    if c is not None:
        assert c.masks.ndim == 3 and len(c.predicted_iou) == len(c)


def test_candidates_whose_zip_flags_say_encrypted_are_one_line() -> None:
    """A flipped bit in a member's zip flags reads as 'encrypted' (zipfile's RuntimeError)."""
    data = bytearray(VALID_NPZ)
    at = data.index(b"PK\x01\x02") + 8  # the first member's flags in the central directory
    data[at] |= 0x01
    with pytest.raises(SeglibError, match="not a seglib candidates file"):
        Candidates.load(write(bytes(data), "c.npz"))


ANY_ARRAY = st.one_of(
    arrays(st.sampled_from([np.uint8, np.int64, np.float32, np.bool_]),
           array_shapes(min_dims=0, max_dims=3, max_side=4)),
    st.lists(st.text(max_size=5), max_size=3).map(lambda x: np.array(x, dtype=str)),
)


@FUZZ
@given(st.dictionaries(st.sampled_from(["shape", "bits", "predicted_iou", "stability",
                                        "sources", "backend", "photo_hash"]), ANY_ARRAY))
def test_candidates_load_on_any_arrays(arrays_in: dict[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays_in)
    c = ends_well(Candidates.load, write(buf.getvalue(), "c.npz"))
    if c is not None:
        assert c.masks.ndim == 3 and len(c.sources) == len(c)


# -- run files -------------------------------------------------------------------------------
def _valid_run_payload() -> dict:
    from seglib.training.checkpoints import FORMAT
    from seglib.training.models import build_model

    model = build_model("unet", width=2)
    return {"format": FORMAT, "state_dict": model.state_dict(),
            "config": {"arch": "unet", "size": 16, "num_classes": 3, "width": 2},
            "epoch": 1, "metrics": {}}


VALID_RUN = _checkpoint(_valid_run_payload())

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=True)
    | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=8)


@FUZZ_SLOW
@given(damaged(VALID_RUN[:400] + VALID_RUN[-200:]) | st.binary(max_size=300))
@pytest.mark.parametrize("name", ["best.pt", "last.pt"])
def test_run_checkpoints_on_damaged_bytes(name: str, data: bytes) -> None:
    from seglib.training.checkpoints import load_checkpoint
    from seglib.training.predict import load_model

    path = write(data, name)
    ends_well(load_checkpoint, path)
    ends_well(lambda p: load_model(p, "cpu"), path)


@FUZZ_SLOW
@given(st.dictionaries(st.sampled_from(["arch", "size", "num_classes", "width", "tta"]),
                       VALUES),
       st.sampled_from(["ok", "random", "missing"]))
def test_load_model_on_any_config(config: dict, state: str) -> None:
    from seglib.training.predict import load_model

    payload = _valid_run_payload()
    payload["config"] = config
    if state == "random":
        payload["state_dict"] = {"x": torch.zeros(2)}
    elif state == "missing":
        del payload["state_dict"]
    m = ends_well(lambda p: load_model(p, "cpu"), write(_checkpoint(payload), "best.pt"))
    if m is not None:
        assert m.size >= 1


@FUZZ
@given(st.binary(max_size=200) | VALUES.map(lambda v: __import__("json").dumps(v).encode()))
def test_run_metrics_on_any_metrics_json(data: bytes) -> None:
    from seglib.course.compare import run_metrics

    path = write(data, "metrics.json")
    (path.parent / "model_10").mkdir()
    path.rename(path.parent / "model_10" / "metrics.json")
    rows = ends_well(lambda p: run_metrics(p, ["10"]), path.parent)
    if rows is not None:
        assert rows[0]["model"] == "10"
