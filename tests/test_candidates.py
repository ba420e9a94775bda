from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seglib.core.errors import SeglibError
from seglib.masks.candidates import Candidates


def test_save_load_roundtrip(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    masks = rng.random((4, 13, 7)) > 0.5  # odd sizes exercise the bit packing
    c = Candidates(masks, [0.9, 0.8, 0.7, 0.1], [0.95, 0.9, 0.5, 0.2],
                   ["point:centre", "box", "everything", "grabcut:rect90"], backend="sam")
    back = Candidates.load(c.save(tmp_path / "x.npz"))
    assert np.array_equal(back.masks, masks)
    assert back.predicted_iou.tolist() == pytest.approx([0.9, 0.8, 0.7, 0.1])
    assert back.sources == c.sources and back.backend == "sam" and back.shape == (13, 7)
    assert len(back) == 4


def test_object_score_roundtrips_and_older_files_have_none(tmp_path: Path) -> None:
    masks = np.zeros((2, 4, 4), bool)
    c = Candidates(masks, [0.9, 0.5], [0.9, 0.5], ["a", "b"], "opencv", object_score=[0.1, 0.8])
    back = Candidates.load(c.save(tmp_path / "o.npz"))
    assert back.object_score is not None
    assert back.object_score.tolist() == pytest.approx([0.1, 0.8])
    older = Candidates(masks, [0.9, 0.5], [0.9, 0.5], ["a", "b"], "opencv")
    assert Candidates.load(older.save(tmp_path / "n.npz")).object_score is None


def test_zero_candidates_roundtrip(tmp_path: Path) -> None:
    c = Candidates(np.zeros((0, 5, 6), bool), [], [], backend="opencv")
    back = Candidates.load(c.save(tmp_path / "e.npz"))
    assert len(back) == 0 and back.shape == (5, 6)


def test_shape_checks() -> None:
    with pytest.raises(ValueError, match="K, H, W"):
        Candidates(np.zeros((5, 6), bool), [1.0], [1.0])
    with pytest.raises(ValueError, match="sources"):
        Candidates(np.zeros((2, 5, 6), bool), [1, 1], [1, 1], ["a"])


def test_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"\x00" * 10)
    with pytest.raises(SeglibError, match="bad.npz"):
        Candidates.load(bad)
