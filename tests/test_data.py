"""Pairing, checking, the fixed validation split, subsets and batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from toys import toy_pairs

from seglib.core.errors import SeglibError
from seglib.core.files import write_jpeg_atomic, write_png_atomic
from seglib.training.data import (
    batches,
    find_pairs,
    jitter_batch,
    label_confidence,
    load_dataset,
    n_val_for,
    preload,
    split_pairs,
    subset_sizes,
    take_subset,
)


def test_labels_become_classes_and_resize_keeps_them(tmp_path):
    images, trimaps = toy_pairs(tmp_path, 3)
    t, skipped = preload(find_pairs(images, trimaps).pairs, size=17)
    assert not skipped
    assert t.images.shape == (3, 3, 17, 17) and t.images.dtype == torch.uint8
    assert t.targets.shape == (3, 17, 17)
    assert set(torch.unique(t.targets).tolist()) == {0, 1, 2}  # nearest: no blended labels


def test_pairing_reports_unpaired_and_skips_bad_pairs(tmp_path, capsys):
    images, trimaps = toy_pairs(tmp_path, 12)
    (images / "lonely.png").write_bytes((images / "p000.png").read_bytes())
    (images / "p001.png").write_bytes(b"")  # zero-byte photo
    (images / "p002.png").unlink()
    (images / "p002.jpg").write_text("not a photo")  # text file named .jpg
    write_png_atomic(trimaps / "p003.png", np.full((30, 40), 7, np.uint8))  # bad labels
    write_png_atomic(trimaps / "p004.png", np.full((10, 10), 2, np.uint8))  # wrong size
    write_jpeg_atomic(images / "ünï cøde.JPG", np.zeros((30, 40, 3), np.uint8))
    write_png_atomic(trimaps / "ünï cøde.png", np.full((30, 40), 2, np.uint8))
    (images / ".DS_Store").write_bytes(b"\0")
    ds = load_dataset(images, trimaps, size=16)
    err = capsys.readouterr().err
    assert "photos without trimap: lonely.png" in err
    reasons = {s.path.stem: s.reason for s in ds.skipped}
    assert set(reasons) == {"p001", "p002", "p003", "p004"}
    assert "empty file" in reasons["p001"]
    assert "not a readable" in reasons["p002"]
    assert "labels must be 1" in reasons["p003"]
    assert "10×10" in reasons["p004"]
    assert len(ds.train) + len(ds.val) == 12 - 4 + 1


def test_no_pairs_is_one_clear_error(tmp_path):
    images, _ = toy_pairs(tmp_path / "a", 2)
    _, trimaps = toy_pairs(tmp_path / "b", 2)
    for p in trimaps.iterdir():
        p.rename(p.with_name("x" + p.name))
    with pytest.raises(SeglibError, match="no photo has a trimap"):
        find_pairs(images, trimaps)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SeglibError, match="no .jpg"):
        find_pairs(tmp_path / "empty", trimaps)


def test_split_is_fixed_and_subsets_share_validation(tmp_path):
    images, trimaps = toy_pairs(tmp_path, 30)
    pairs = find_pairs(images, trimaps).pairs
    train, val = split_pairs(pairs)
    train2, val2 = split_pairs(list(reversed(pairs)))  # input order does not matter
    assert [p.stem for p in val] == [p.stem for p in val2]
    assert [p.stem for p in train] == [p.stem for p in train2]
    assert len(val) == n_val_for(30) == 6
    assert not {p.stem for p in train} & {p.stem for p in val}
    assert [p.stem for p in train] != sorted(p.stem for p in train)  # shuffled
    assert take_subset(train, 5) == train[:5]
    _, val3 = split_pairs(pairs, seed=7)
    assert [p.stem for p in val3] != [p.stem for p in val]


def test_validation_size():
    assert n_val_for(825) == 100
    assert n_val_for(48) == 9
    assert n_val_for(2) == 1
    with pytest.raises(SeglibError):
        n_val_for(1)


def test_subset_sizes_standard_and_small_folders():
    assert subset_sizes(825) == {"10": 10, "161": 161, "207": 207, "711": 711, "711B": 711}
    assert subset_sizes(400)["711"] == 320 and subset_sizes(400)["207"] == 207
    small = subset_sizes(48)  # 39 training photos
    sizes = [small[k] for k in ("10", "161", "207", "711")]
    assert sizes == sorted(set(sizes)) and sizes[-1] == 39 and sizes[0] >= 2
    assert small["711B"] == small["711"]
    with pytest.raises(SeglibError, match="unknown subset"):
        subset_sizes(100, ["12"])


def test_asking_for_more_than_exist_says_so():
    msgs: list[str] = []
    assert take_subset(list(range(40)), 711, log=msgs.append) == list(range(40))
    assert len(msgs) == 1 and "711" in msgs[0] and "40" in msgs[0]


def test_batches_fixed_order_and_consistent_flips(tmp_path):
    images, trimaps = toy_pairs(tmp_path, 10)
    t, _ = preload(find_pairs(images, trimaps).pairs, size=16)
    g = torch.Generator().manual_seed(0)

    def order(shuffle: bool) -> list[int]:
        xs = [x for x, _ in batches(t, 3, shuffle, False, g)]
        flat = torch.cat(xs)
        return [int(next(i for i in range(len(t)) if torch.equal(flat[k], t.images[i].float())))
                for k in range(len(flat))]

    assert order(False) == order(False) == list(range(10))
    assert sorted(order(True)) == list(range(10))
    flipped = 0
    for x, y in batches(t, 10, False, True, g):
        for k in range(10):
            same = torch.equal(x[k], t.images[k].float())
            mirrored = torch.equal(x[k], t.images[k].flip(-1).float())
            assert same or mirrored
            assert torch.equal(y[k], t.targets[k].long() if same else t.targets[k].flip(-1).long())
            flipped += mirrored and not same
    assert flipped > 0


def test_jitter_moves_photo_and_trimap_together(tmp_path):
    images, trimaps = toy_pairs(tmp_path, 8, h=32, w=32)
    t, _ = preload(find_pairs(images, trimaps).pairs, size=32)
    x0, y0 = t.images.float(), t.targets.long()
    g = torch.Generator().manual_seed(0)
    x, y = jitter_batch(x0, y0, 0.2, g)
    assert x.shape == x0.shape and y.shape == y0.shape and y.dtype == torch.long
    assert 0 <= x.min() and x.max() <= 255 and set(y.unique().tolist()) <= {0, 1, 2}
    assert not torch.equal(y, y0) and not torch.allclose(x, x0)  # something moved
    dark = x.mean(1) < 128  # the toy object is dark on a light background
    assert (dark == (y == 0))[y != 2].float().mean() > 0.95
    same_x, same_y = jitter_batch(x0, y0, 0.0, g)
    assert torch.equal(same_y, y0) and torch.allclose(same_x, x0, atol=1e-3)
    a = list(batches(t, 4, True, True, torch.Generator().manual_seed(3), jitter=0.1))
    b = list(batches(t, 4, True, True, torch.Generator().manual_seed(3), jitter=0.1))
    assert all(torch.equal(p[0], q[0]) and torch.equal(p[1], q[1])
               for p, q in zip(a, b, strict=True))


def test_label_confidence_from_labels_csv_and_overrides(tmp_path):
    images, trimaps = toy_pairs(tmp_path, 6)
    assert label_confidence(trimaps) == {}
    (trimaps / "labels.csv").write_text(
        "stem,confidence,status\np000,0.25,ok\np001,0.9,ok\np002,,ok\np003,0.1,error\n"
        "p004,0.2,ok\n")
    (trimaps / "overrides.csv").write_text("stem,candidate\np004,3\n")
    assert label_confidence(trimaps) == {"p000": 0.25, "p001": 0.9, "p004": 1.0}
    ds = load_dataset(images, trimaps, 16, n_val=2, log=lambda m: None)
    conf = dict(zip(ds.train.stems + ds.val.stems,
                    torch.cat([ds.train.confidence, ds.val.confidence]).tolist(), strict=True))
    assert conf == pytest.approx({"p000": 0.25, "p001": 0.9, "p002": 1.0, "p003": 1.0,
                                  "p004": 1.0, "p005": 1.0})
    x, y, c = next(batches(ds.train, 4, False, False, torch.Generator(), confidence=True))
    assert c.tolist() == pytest.approx([conf[s] for s in ds.train.stems[:4]])
