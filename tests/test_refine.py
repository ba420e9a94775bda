"""The folder-level refinement pass (seglib.refine) and the ``refine`` command."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from seglib.cli import main
from seglib.core.files import file_sha256
from seglib.course.sample import write_sample
from seglib.labels.labeling import repick_folder
from seglib.labels.store import LabelRecord, LabelStore
from seglib.masks.candidates import Candidates
from seglib.masks.trimap import load_trimap, mask_to_trimap, save_trimap
from seglib.refine.rounds import (
    EVIDENCE_COLUMNS,
    EVIDENCE_CSV,
    LOST_EVIDENCE,
    MODEL_DIR,
    SIZE,
    TRAIN_THREADS,
    RefineSummary,
    refine_labels,
)
from seglib.refine.views import (
    KEPT_DONE,
    KEPT_OVERRIDE,
    KEPT_UNSURE,
    SOURCE,
    RefinedPhoto,
    _with_refined,
    grabcut_agree,
    object_probability,
    refine_views,
    vote,
    voting_candidates,
)
from seglib.training.presets import get_preset


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def _leg(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The mask plus a strip from the top edge down to it (a trouser leg in the pick)."""
    ys, xs = np.nonzero(mask)
    out = mask.copy()
    x = int(rng.integers(xs.min(), xs.max() + 1))
    half = max(2, mask.shape[1] // 12)
    out[: ys.min() + 3, max(0, x - half): x + half] = True
    return out


def _labeled_folder(root: Path, n: int, size: int = 64) -> tuple[Path, Path, dict]:
    """A sample folder labeled as the labeler would: a leg in every third pick (flagged)."""
    write_sample(root / "sample", n=n, size=size)
    images, out = root / "sample" / "images", root / "labels"
    rng = np.random.default_rng(0)
    store, rows, truth = LabelStore(out), [], {}
    for path in sorted(images.glob("*.jpg")):
        stem = path.stem
        mask = cv2.imread(str(root / "sample" / "masks" / f"{stem}.png"), 0) > 0
        truth[stem] = mask
        pick = _leg(mask, rng) if len(rows) % 3 == 0 else mask
        cands = Candidates(np.stack([pick, ~pick]), [0.9, 0.5], [0.9, 0.5],
                           ["grabcut:refine", "colour"], "opencv")
        cands.save(out / "candidates" / f"{stem}.npz")
        save_trimap(out / f"{stem}.png", mask_to_trimap(pick))
        rows.append(stem)
        store.put(LabelRecord(stem=stem, file=path.name, backend="opencv", mode="classical",
                              policy="foreground", chosen="0", flagged=len(rows) % 3 == 1,
                              pick_flagged=len(rows) % 3 == 1))
    store.save()
    return images, out, truth


def test_grabcut_agree_removes_a_leg_the_network_does_not_see() -> None:
    h, w = 80, 80
    img = np.full((h, w, 3), 210, np.uint8)
    obj = np.zeros((h, w), bool)
    obj[40:65, 15:65] = True
    img[obj] = (30, 60, 160)
    img[:40, 35:45] = (90, 90, 90)  # a grey leg from the top edge
    pick = obj.copy()
    pick[:40, 35:45] = True
    prob = np.where(obj, 0.97, 0.03).astype(np.float32)
    out = grabcut_agree(img, prob, pick)
    assert out is not None
    assert _iou(out, obj) > 0.95 > _iou(pick, obj)
    assert grabcut_agree(img, np.full((h, w), 0.5, np.float32), pick) is None  # unsure CNN


def test_the_vote_outvotes_a_wrong_pick_when_the_network_and_a_candidate_agree() -> None:
    h, w = 96, 96
    img = np.full((h, w, 3), 200, np.uint8)
    shoe = np.zeros((h, w), bool)
    shoe[60:85, 20:75] = True
    box = np.zeros((h, w), bool)
    box[15:45, 30:80] = True
    img[box] = (150, 110, 60)
    img[shoe] = (30, 40, 170)
    prob = np.where(shoe, 0.95, 0.04).astype(np.float32)
    cands = np.stack([box, shoe, ~shoe])
    leggy = shoe.copy()
    leggy[:60, 40:50] = True
    for pick in (box, leggy):  # the labeler picked the box, or the shoe with a leg
        views = refine_views(img, prob, pick, cands)
        assert views is not None and _iou(vote(img, views), shoe) > 0.95
    unsure = np.full((h, w), 0.5, np.float32)  # a network that knows nothing keeps the pick
    assert refine_views(img, unsure, shoe, cands) is None


def test_the_closest_candidate_is_never_one_cut_by_a_rectangle() -> None:
    """A GrabCut drawn inside a rectangle ends in a straight line where the rectangle cuts the
    object; as the closest candidate it would carry that notch into the vote."""
    h = w = 48
    obj = np.zeros((h, w), bool)
    obj[10:40, 6:42] = True
    cut = obj.copy()
    cut[:, 30:] = False  # the object cut by its rectangle's right side
    loose = obj.copy()
    loose[6:10, 6:42] = True  # a looser mask with no straight cut
    masks = np.stack([cut, loose, cut, obj, ~obj])
    cands = Candidates(masks, [0.9] * 5, [0.9] * 5,
                       ["grabcut:bbox", "colour:low", "grabcut:rect90", SOURCE,
                        "region:background"], "opencv")
    kept = voting_candidates(cands)  # nor a background region
    assert len(kept) == 1 and np.array_equal(kept[0], loose)


def test_object_probability_counts_half_the_border() -> None:
    logits = np.zeros((3, 2, 2), np.float32)
    logits[0, 0, 0] = 50  # sure object
    logits[2, 1, 1] = 50  # sure border
    p = object_probability(logits)
    assert p[0, 0] == pytest.approx(1.0) and p[1, 1] == pytest.approx(0.5)
    assert p[0, 1] == pytest.approx(1 / 3 + 1 / 6)


def _leg_removed(masks: dict, before: dict, truth: dict, stems: list[str]) -> float:
    """The share of the leg pixels (pick minus truth) of ``stems`` that ``masks`` no longer
    cover, pooled over the photos."""
    leg = {st: before[st] & ~truth[st] for st in stems}
    kept = sum(int((masks[st] & leg[st]).sum()) for st in stems)
    return 1 - kept / max(1, sum(int(leg[st].sum()) for st in stems))


def test_refine_small_sample_end_to_end(tmp_path: Path, train_seed: int, bounds) -> None:
    images, out, truth = _labeled_folder(tmp_path, n=30)
    before = {s: load_trimap(out / f"{s}.png") == 1 for s in truth}
    old = {s: Candidates.load(out / "candidates" / f"{s}.npz") for s in truth}
    # 64 px toy photos, the network at 32 px: a plain recipe (no zoom/shift jitter, no Dice);
    # at the quick preset's lr 3e-3 a seed (1338) can stall at training loss 0.23, where the
    # network is sure of nothing and refines no photo; at 1e-2 it reaches 0.04
    toy = get_preset("quick").with_overrides(jitter=0.0, dice=0.0, lr=1e-2)
    kw = dict(size=32, epochs=250, preset=toy, device="cpu", seed=train_seed, min_photos=10,
              progress=False, log=lambda m: None)
    s = refine_labels(images, out, rounds=1, **kw)
    assert not s.skipped and s.trained_on == 20 and s.total == 30
    assert s.refined + s.kept == 30
    bounds.above("round 1: photos refined", s.refined, 0)
    assert sum(s.kept_why.values()) == s.kept and s.kept_why[KEPT_DONE] == 0
    assert (out / MODEL_DIR / "best.pt").is_file()
    rows = LabelStore(out).records()
    for stem in s.changed:
        c = Candidates.load(out / "candidates" / f"{stem}.npz")
        k = len(old[stem])
        assert np.array_equal(c.masks[:k], old[stem].masks)  # originals kept
        assert c.sources[k:] == [SOURCE]
        assert rows[stem].chosen == str(k) and rows[stem].source == "refined"
        assert rows[stem].round == 1 and rows[stem].reason.startswith("refined in round 1")
        tri = load_trimap(out / f"{stem}.png")
        assert set(np.unique(tri)) <= {1, 2, 3}
        assert np.array_equal(tri == 1, c.masks[k] & (tri != 3))
    after = {st: load_trimap(out / f"{st}.png") == 1 for st in truth}
    stems = sorted(truth)
    legs, clean = stems[::3], [st for i, st in enumerate(stems) if i % 3]
    # Bounds set from bench/seed_sweep.py: 5 seeds (1337-1341) in fp32 and 5 in bf16 autocast
    # (docs/benchmarks.md). Round 1 cuts off 0.76-1.00 of the legs' pixels (fp32 seeds 1340
    # and 1341: 0.78 and 0.76); round 2 0.86-0.99 (below). The leg photos' mean IoU moves by
    # -0.06 to +0.085 in round 1, not the +0.1-0.2 of a photo whose leg goes alone: the 32 px
    # network also loses parts of hard shoes (a white shoe on a white floor falls from 0.89 to
    # 0.32), so the test asks only that round 1 does not wreck them (one shoe lost of the ten
    # leg photos would cost about 0.09).
    bounds.above("round 1: leg pixels removed", _leg_removed(after, before, truth, legs), 0.7)
    bounds.above("round 1: mean leg IoU gain",
                 np.mean([_iou(after[st], truth[st]) - _iou(before[st], truth[st])
                          for st in legs]), -0.1)
    # the other photos keep their object: 0.86-0.91 measured
    bounds.above("round 1: clean IoU", np.mean([_iou(after[st], truth[st]) for st in clean]),
                 0.8)
    # a second run reuses the model and leaves refined photos alone
    again = refine_labels(images, out, rounds=1, **kw)
    assert again.refined == 0 and again.kept == 30
    assert again.kept_why[KEPT_DONE] == s.refined  # the rest: still nothing sure, or unreadable
    assert f"30 kept: {s.refined} redrawn by an earlier run" in again.describe()
    assert all(np.array_equal(load_trimap(out / f"{st}.png") == 1, after[st]) for st in truth)
    # a second round trains a new network on the refined labels and redraws them again
    two = refine_labels(images, out, rounds=2, **kw)
    assert (out / f"{MODEL_DIR}_2" / "best.pt").is_file()
    bounds.above("round 2: photos refined", two.refined, 0)
    rows = LabelStore(out).records()
    for stem in two.changed:
        assert rows[stem].source == "refined" and rows[stem].round == 2
        c = Candidates.load(out / "candidates" / f"{stem}.npz")
        assert c.sources.count(SOURCE) == 1 and rows[stem].chosen == str(len(c) - 1)
    final = {st: load_trimap(out / f"{st}.png") == 1 for st in truth}
    # a plain re-pick (the `pick` command, the reviewer's button) keeps every refined label
    repicked = repick_folder(out)
    refined = [st for st, r in LabelStore(out).records().items() if r.source == "refined"]
    assert refined and repicked.kept["refined"] == len(refined)
    assert all(np.array_equal(load_trimap(out / f"{st}.png") == 1, final[st]) for st in truth)
    # after round 2 the legs stay cut off (0.86-0.99 of their pixels gone) and the other
    # photos keep their object (0.83-0.90). Not asserted: the leg photos' IoU after round 2;
    # on these toy photos it can lose more shoe than round 1 (fp32, seed 1338: +0.085 after
    # round 1, -0.050 after round 2; seed 1339: +0.006, -0.121; docs/benchmarks.md)
    bounds.above("round 2: leg pixels removed", _leg_removed(final, before, truth, legs), 0.8)
    bounds.above("round 2: clean IoU", np.mean([_iou(final[st], truth[st]) for st in clean]),
                 0.8)


def test_summary_says_why_labels_were_kept() -> None:
    s = RefineSummary(Path("labels"), total=3, kept=3, kept_why={KEPT_UNSURE: 3, KEPT_DONE: 0})
    text = s.describe()
    assert "(3 kept: 3 where the CNN was sure of nothing)" in text
    assert text.endswith("train it longer (--epochs)")  # nothing refined: the CNN is the cause
    s = RefineSummary(Path("labels"), total=3, refined=2, kept=1, kept_why={KEPT_UNSURE: 1})
    assert "(1 kept: 1 where" in s.describe() and "--epochs" not in s.describe()


def test_refine_skips_a_tiny_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    images, out, truth = _labeled_folder(tmp_path, n=4)
    code = main(["refine", str(images), "--out", str(out), "--device", "cpu"])
    assert code == 0
    assert "refinement skipped (only 2 confident labels" in capsys.readouterr().out
    assert not (out / MODEL_DIR).exists()
    assert all(r.chosen == "0" for r in LabelStore(out).records().values())


def test_refine_without_labels_is_a_one_line_error(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    write_sample(tmp_path / "s", n=2, size=32)
    code = main(["refine", str(tmp_path / "s" / "images"), "--out", str(tmp_path / "none")])
    err = capsys.readouterr().err
    assert code == 2 and "no labels.csv" in err and "seglib label" in err


def test_a_refine_killed_before_labels_csv_finishes_on_the_next_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """refine killed after it redrew a trimap (candidates and trimap written) but before
    labels.csv: the next run records that label as refined; it is not taken for a hand edit
    and left a pick in labels.csv, which `pick` would then draw over."""
    images, out, truth = _labeled_folder(tmp_path, n=12)
    store = LabelStore(out)
    for stem in truth:  # records with their trimaps' hashes, as label writes them
        store.get(stem).trimap_hash = file_sha256(out / f"{stem}.png")
    store.save()
    stem = sorted(truth)[1]
    cands = Candidates.load(out / "candidates" / f"{stem}.npz")  # what the killed run wrote
    mask = cv2.erode(cands.masks[0].astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    new, idx = _with_refined(cands, mask)
    new.save(out / "candidates" / f"{stem}.npz")
    save_trimap(out / f"{stem}.png", mask_to_trimap(mask))
    drawn = load_trimap(out / f"{stem}.png")
    # the next run; its training and votes are not what this test is about
    monkeypatch.setattr("seglib.training.loop.train_run", lambda *a, **k: None)
    monkeypatch.setattr("seglib.training.data.load_dataset", lambda *a, **k: None)
    monkeypatch.setattr("seglib.training.predict.load_model", lambda *a, **k: None)
    voted: list[str] = []
    monkeypatch.setattr("seglib.refine.rounds._refine_job", lambda model, job: voted.append(
        job[0]) or RefinedPhoto(job[0], kept=KEPT_UNSURE))
    s = refine_labels(images, out, rounds=1, min_photos=2, progress=False, log=lambda m: None)
    rec = LabelStore(out).get(stem)
    assert (rec.source, rec.round, rec.chosen) == ("refined", 1, str(idx))
    assert stem not in voted and s.kept_why[KEPT_OVERRIDE] == 0 and s.refined == 1
    # its evidence died with the run: not the pick's confidence, but flagged, unknown, and why
    assert rec.confidence is None and rec.flagged and rec.doubt == LOST_EVIDENCE
    repick_folder(out)
    assert np.array_equal(load_trimap(out / f"{stem}.png"), drawn)


def test_a_label_redrawn_by_a_killed_refine_is_judged_from_the_evidence_it_wrote(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """refine writes a round's evidence before labels.csv: a label a killed run redrew and
    whose evidence it wrote is judged from that evidence by the next run, as if not killed."""
    from seglib.core.tables import write_csv
    from seglib.labels.confidence import Evidence, of_refined

    images, out, truth = _labeled_folder(tmp_path, n=12)
    store = LabelStore(out)
    for st in truth:
        store.get(st).trimap_hash = file_sha256(out / f"{st}.png")
    store.save()
    stem = sorted(truth)[2]
    cands = Candidates.load(out / "candidates" / f"{stem}.npz")
    mask = cv2.erode(cands.masks[0].astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    new, idx = _with_refined(cands, mask)
    new.save(out / "candidates" / f"{stem}.npz")
    save_trimap(out / f"{stem}.png", mask_to_trimap(mask))
    e = Evidence(agree=0.9, disagree=0.3, unsure=0.5, moved=0.1, pick_confidence=0.8, top=0,
                 backdrop=0.3, weak_edge=0.05)
    drawn = file_sha256(out / f"{stem}.png")
    others = [s for s in sorted(truth) if s != stem][:4]
    for st in others:  # redrawn too, but their rows do not vouch for these very labels
        c = Candidates.load(out / "candidates" / f"{st}.npz")
        m = cv2.erode(c.masks[0].astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        _with_refined(c, m)[0].save(out / "candidates" / f"{st}.npz")
        save_trimap(out / f"{st}.png", mask_to_trimap(m))
    row = {"stem": stem, "round": "1", "trimap_hash": drawn, **e.as_dict()}
    stale = [dict(row, stem=others[0], trimap_hash="0" * 64),  # another label's evidence
             dict(row, stem=others[1], round="2"),  # another round's
             dict(row, stem=others[2], trimap_hash=file_sha256(out / f"{others[2]}.png"),
                  backdrop="nan"),  # unreadable
             {k: v for k, v in dict(row, stem=others[3], trimap_hash=file_sha256(
                 out / f"{others[3]}.png")).items() if k != "weak_edge"}]  # an older seglib's
    write_csv(out / EVIDENCE_CSV, [row, *stale], EVIDENCE_COLUMNS)
    monkeypatch.setattr("seglib.training.loop.train_run", lambda *a, **k: None)
    monkeypatch.setattr("seglib.training.data.load_dataset", lambda *a, **k: None)
    monkeypatch.setattr("seglib.training.predict.load_model", lambda *a, **k: None)
    monkeypatch.setattr("seglib.refine.rounds._refine_job", lambda model, job: RefinedPhoto(
        job[0], kept=KEPT_UNSURE))
    refine_labels(images, out, rounds=1, min_photos=2, progress=False, log=lambda m: None)
    recs = LabelStore(out).records()
    rec = recs[stem]
    assert (rec.source, rec.chosen) == ("refined", str(idx))
    conf, flagged, doubt = of_refined(e)
    assert rec.confidence == pytest.approx(conf, abs=1e-4) and rec.flagged == flagged
    assert rec.doubt == doubt and "background" in doubt
    for st in others:
        assert recs[st].source == "refined" and recs[st].confidence is None, st
        assert recs[st].flagged and recs[st].doubt == LOST_EVIDENCE


def test_the_grabcut_views_on_a_downscaled_photo_vote_as_at_full_size() -> None:
    """Issue 24: the two GrabCut views run on the photo shrunk to GRABCUT_SIDE (the default)
    and the vote is polished at full size: on the sample photos (240 px) the refined mask is
    the full-size views' (mean IoU >= 0.99)."""
    import cv2

    from seglib.course.sample import sample_photo

    ious = []
    for i in range(14):  # every kind of the sample twice
        p = sample_photo(i)
        # a network's probability: soft around the true outline, a blob of doubt inside
        prob = cv2.GaussianBlur(p.mask.astype(np.float32), (0, 0), 3)
        pick = p.mask | (p.distractor if p.kind == "leg" else False)
        votes = []
        for side in (160, None):
            views = refine_views(p.image, prob, pick, p.mask[None], grabcut_side=side)
            assert views is not None
            votes.append(vote(p.image, views, polish_crop=side is not None))
        ious.append(_iou(*votes))
    assert np.mean(ious) >= 0.99 and min(ious) >= 0.95


@pytest.mark.parametrize("fine_tune", [0.5, None])
def test_round_2_fine_tunes_round_1s_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              fine_tune: float | None) -> None:
    """With ``fine_tune`` (the default) round 2's network starts from round 1's ``best.pt``
    and trains that fraction of its epochs (its config holds the weights' hash); without,
    each round trains from scratch; both at the default size (SIZE, 96 px), with one torch
    thread (TRAIN_THREADS), then as many as before."""
    import seglib.training.loop as loop

    images, out, _ = _labeled_folder(tmp_path, n=12, size=48)
    calls: list[dict] = []
    real = loop.train_run

    def recording(*args, **kw):
        calls.append(dict(kw, threads=torch.get_num_threads()))
        return real(*args, **kw)

    monkeypatch.setattr(loop, "train_run", recording)
    was = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        refine_labels(images, out, rounds=2, epochs=3, fine_tune=fine_tune, device="cpu",
                      min_photos=2, progress=False, log=lambda m: None)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(was)
    assert [c["size"] for c in calls] == [SIZE, SIZE] and SIZE == 96
    assert [c["threads"] for c in calls] == [TRAIN_THREADS, TRAIN_THREADS] == [1, 1]
    assert calls[0]["init"] is None and calls[0]["epochs"] == 3
    cfg = torch.load(out / f"{MODEL_DIR}_2" / "best.pt", weights_only=True)["config"]
    if fine_tune is None:
        assert calls[1]["init"] is None and calls[1]["epochs"] == 3 and cfg["init"] is None
    else:
        assert calls[1]["init"] == out / MODEL_DIR / "best.pt" and calls[1]["epochs"] == 2
        assert cfg["init"] == file_sha256(out / MODEL_DIR / "best.pt")
