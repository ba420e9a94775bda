"""The confidence of the label actually written (seglib.labels.confidence), per label source."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from test_labeling import label, make_folder
from test_refine import _labeled_folder

from seglib.cli import main
from seglib.core.tables import read_csv
from seglib.labels import confidence
from seglib.labels.confidence import SURE, Evidence, evidence, of_refined, refined_confidence
from seglib.labels.labeling import repick_folder
from seglib.labels.review import review_order, review_sheet
from seglib.labels.store import LabelRecord, LabelStore, record_from_row
from seglib.masks.trimap import OBJECT, load_trimap, save_trimap
from seglib.refine.rounds import EVIDENCE_CSV, _confident, refine_labels


def _disc(h: int = 64, r: int = 14, cx: int = 32, cy: int = 36) -> np.ndarray:
    yy, xx = np.mgrid[:h, :h]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def _photo_of(*objects: np.ndarray) -> np.ndarray:
    """A grey backdrop with each object in its own strong colour."""
    photo = np.full((*objects[0].shape, 3), 128, np.uint8)
    for obj, colour in zip(objects, [(200, 40, 40), (40, 40, 200), (40, 200, 40)],
                           strict=False):
        photo[obj] = colour
    return photo


def test_evidence_of_views_that_agree_and_of_a_leg_the_pick_carries() -> None:
    shoe = _disc()
    photo = _photo_of(shoe)
    sure_net = np.where(shoe, 0.98, 0.02).astype(np.float32)
    e = evidence(photo, shoe, [shoe, sure_net, shoe, shoe, shoe], sure_net, shoe, 0.9)
    assert (e.agree, e.disagree, e.unsure, e.moved, e.top) == (1.0, 0.0, 0.0, 0.0, 0.0)
    assert e.backdrop < 0.01 and e.weak_edge == 0.0  # its colours and edges are the shoe's
    leg = shoe.copy()
    leg[:30, 28:36] = True  # the pick took a leg from the top edge down to the shoe
    e2 = evidence(photo, shoe, [leg, sure_net, shoe, shoe, leg], sure_net, leg, 0.9)
    assert 0 < e2.agree < 1 and e2.disagree == pytest.approx(
        np.count_nonzero(leg & ~shoe) / np.count_nonzero(shoe))
    assert e2.moved == pytest.approx(1 - np.count_nonzero(shoe) / np.count_nonzero(leg))
    unsure_net = np.where(shoe, 0.6, 0.4).astype(np.float32)  # sure of nothing at the outline
    assert evidence(photo, shoe, [shoe], unsure_net, shoe, 0.9).unsure == 1.0
    assert evidence(photo, leg, [leg], sure_net, leg, 0.9).top == 1.0  # the label itself enters


def test_the_photo_tells_a_label_that_swallowed_the_backdrop_between_two_shoes() -> None:
    left, right = _disc(r=10, cx=18), _disc(r=10, cx=46)
    photo = _photo_of(left, right)
    pair = left | right
    bridged = pair.copy()
    bridged[30:43, 18:47] = True  # the backdrop between the two shoes, taken with them
    assert confidence.backdrop(photo, pair) < 0.01
    assert confidence.backdrop(photo, bridged) > 0.1  # a tenth of it is backdrop-grey
    assert confidence.weak_edge(photo, pair) == 0.0  # its outline is the shoes' edge
    # the bridge's top and bottom run across the flat backdrop between the shoes: about 14
    # of its 200-odd outline pixels
    assert 0.03 < confidence.weak_edge(photo, bridged) < 0.15
    # the full frame and an empty label have nothing to say
    assert confidence.backdrop(photo, np.ones_like(pair)) == 0.0
    assert confidence.weak_edge(photo, np.zeros_like(pair)) == 0.0
    with pytest.raises(ValueError, match="RGB uint8"):  # a grey photo is not taken for one
        confidence.backdrop(photo[..., 0], pair)
    with pytest.raises(ValueError, match="differ in size"):
        confidence.weak_edge(photo, pair[:32])
    def net(m: np.ndarray) -> np.ndarray:
        return np.where(m, 0.98, 0.02).astype(np.float32)

    good = of_refined(evidence(photo, pair, [pair] * 5, net(pair), pair, 1.0))
    bad = of_refined(evidence(photo, bridged, [bridged] * 5, net(bridged), bridged, 1.0))
    # every view and the network agree with the bridge: only the photo doubts it
    assert good[0] > confidence.FLAG_BELOW and good[2] == ""
    assert bad[0] < good[0] and "background" in bad[2]


def test_a_cut_across_a_flat_backdrop_is_weak_on_a_photo_with_few_edges() -> None:
    """A small object on a plain (noisy) backdrop: its edges are under a tenth of the frame,
    so the photo's 90th gradient percentile is about zero; the floor still tells a cut across
    the flat backdrop from the object's own edge."""
    left, right = _disc(240, r=20, cx=90, cy=120), _disc(240, r=20, cx=150, cy=120)
    noise = np.random.default_rng(0).normal(0, 2, (240, 240, 3))
    photo = np.clip(_photo_of(left, right) + noise, 0, 255).astype(np.uint8)
    bridged = left | right
    bridged[105:136, 90:151] = True
    assert confidence.weak_edge(photo, left | right) < 0.02
    assert confidence.weak_edge(photo, bridged) > 0.1  # the bridge's two flat sides


def test_each_doubt_lowers_the_confidence_and_is_named() -> None:
    sure = refined_confidence(SURE)
    assert sure > confidence.FLAG_BELOW and of_refined(SURE) == (sure, False, "")
    worse = {"agree": 0.5, "disagree": 0.4, "unsure": 0.6, "pick_confidence": 0.0,
             "backdrop": 0.3, "weak_edge": 0.2}
    words = {"agree": "views agree",
             "disagree": "network and the label it was refined from disagree on 40%",
             "unsure": "unsure along 60% of the outline", "pick_confidence": "policy was unsure",
             "backdrop": "30% of the label has the colours of the background",
             "weak_edge": "20% of the outline runs where the photo shows no edge"}
    for k, v in worse.items():
        e = Evidence(**{**SURE.as_dict(), k: v})
        conf, _, doubt = of_refined(e)
        assert conf < sure, k
        assert words[k] in doubt, (k, doubt)
    bad = Evidence(agree=0.4, disagree=0.6, unsure=0.7, moved=0.5, pick_confidence=0.1, top=1,
                   backdrop=0.3, weak_edge=0.1)
    conf, flagged, doubt = of_refined(bad)
    assert conf < confidence.FLAG_BELOW and flagged and doubt


def test_pick_override_edit_and_import_each_record_their_confidence(tmp_path: Path) -> None:
    images, out = tmp_path / "img", tmp_path / "out"
    stems = make_folder(images, 4)
    label(images, out)
    recs = LabelStore(out).records()
    for r in recs.values():  # a pick: the policy's own confidence, recorded twice
        assert r.source == "pick" and r.confidence == r.pick_confidence is not None
        assert r.flagged == r.pick_flagged and bool(r.doubt) == r.flagged
    # an override: a person chose it, so it is sure
    (out / "overrides.csv").write_text(f"stem,candidate\n{stems[0]},1\n")
    repick_folder(out)
    r = LabelStore(out).get(stems[0])
    assert (r.source, r.confidence, r.flagged, r.doubt) == ("override", 1.0, False, "")
    assert r.pick_confidence is not None
    # a trimap edited by hand: sure
    tri = load_trimap(out / f"{stems[1]}.png")
    tri[:3, :3] = OBJECT
    save_trimap(out / f"{stems[1]}.png", tri)
    repick_folder(out)
    r = LabelStore(out).get(stems[1])
    assert (r.source, r.confidence, r.flagged, r.doubt) == ("edited", 1.0, False, "")
    # an imported mask: sure
    from test_import import rle_compressed, write_coco_file

    m = load_trimap(out / f"{stems[2]}.png") != OBJECT
    path = write_coco_file(tmp_path / "fixed.json", {stems[2]: m}, rle_compressed)
    assert main(["import", str(out), "--coco", str(path)]) == 0
    r = LabelStore(out).get(stems[2])
    assert (r.source, r.confidence, r.flagged, r.doubt) == ("imported", 1.0, False, "")


def test_a_labels_csv_of_schema_2_keeps_the_picks_confidence_as_the_pick_s() -> None:
    row = {"stem": "a", "file": "a.jpg", "confidence": "0.3100", "flagged": "1",
           "source": "refined", "round": "1", "status": "ok", "schema": "2"}
    rec = record_from_row(row)
    assert rec is not None and (rec.pick_confidence, rec.pick_flagged) == (0.31, True)
    assert rec.doubt == ""
    assert record_from_row(rec.row()) == rec


def test_reviewer_order_flagged_first_then_least_confident() -> None:
    recs = [LabelRecord("a", confidence=0.9), LabelRecord("b", confidence=0.2, flagged=True),
            LabelRecord("c", confidence=0.4), LabelRecord("d", confidence=0.1, flagged=True),
            LabelRecord("e", confidence=None)]
    assert review_order(recs) == ["d", "b", "e", "c", "a"]


def _perfect_network(truth: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch,
                     unsure: str = "") -> None:
    """Refine's training and model replaced by a network that predicts the true masks (sure
    of itself; hardly sure on photo ``unsure``); the views, the vote and the evidence run as
    they are."""
    import seglib.refine.rounds
    current = [""]
    real_job = seglib.refine.rounds._refine_job

    def job(model, item):
        current[0] = item[0]
        return real_job(model, item)

    def logits(model, image: np.ndarray) -> np.ndarray:
        t = cv2.resize(truth[current[0]].astype(np.uint8), image.shape[1::-1],
                       interpolation=cv2.INTER_NEAREST) > 0
        z = np.where(t, 4.0, -4.0) * (0.05 if current[0] == unsure else 1.0)
        return np.stack([z, -z, np.full_like(z, -8.0)]).astype(np.float32)

    monkeypatch.setattr("seglib.training.loop.train_run", lambda *a, **k: None)
    monkeypatch.setattr("seglib.training.data.load_dataset", lambda *a, **k: None)
    monkeypatch.setattr("seglib.training.predict.load_model", lambda *a, **k: None)
    monkeypatch.setattr("seglib.training.predict.predict_logits", logits)
    monkeypatch.setattr("seglib.refine.rounds._refine_job", job)


def test_refined_labels_carry_their_own_confidence(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """After refinement a label's confidence is the refined label's (from the views'
    evidence), not the pick's: the leg photos, where the network and the pick disagree, are
    less confident than the clean ones, and the training set stays the policy's."""
    images, out, truth = _labeled_folder(tmp_path, n=12)
    store = LabelStore(out)
    for i, stem in enumerate(sorted(truth)):  # every pick as sure as the policy can be
        store.get(stem).confidence = store.get(stem).pick_confidence = 1.0 - 0.01 * i
    store.save()
    trained_before = _confident(list(LabelStore(out).ok_records()), out)
    stems = sorted(truth)
    _perfect_network(truth, monkeypatch, unsure=stems[2])
    s = refine_labels(images, out, rounds=1, min_photos=2, progress=False, log=lambda m: None)
    assert s.refined >= 10
    recs = LabelStore(out).records()
    rows = {r["stem"]: r for r in read_csv(out / EVIDENCE_CSV)}
    legs = [st for i, st in enumerate(stems) if i % 3 == 0 and st in s.changed]
    clean = [st for i, st in enumerate(stems) if i % 3 and st in s.changed and st != stems[2]]
    assert legs and clean
    for st in s.changed:
        r = recs[st]
        e = Evidence(**{k: float(rows[st][k]) for k in Evidence.__dataclass_fields__})
        conf, flagged, doubt = of_refined(e)
        assert r.confidence == pytest.approx(conf, abs=1e-4) and r.flagged == flagged
        assert r.doubt == doubt and rows[st]["doubt"] == doubt
        assert r.pick_confidence == pytest.approx(1.0 - 0.01 * stems.index(st))
    # (a leg thin enough for the network and the pick to agree on nearly all of it is no doubt)
    doubted = [st for st in legs if float(rows[st]["disagree"]) > 0.1]
    assert doubted and max(recs[st].confidence for st in doubted) < min(
        recs[st].confidence for st in clean)
    # a flagged leg photo names the disagreement, or the cut across the leg (no edge there)
    assert all(any(w in recs[st].doubt for w in ("disagree", "views", "no edge"))
               for st in legs if recs[st].flagged)
    # the training set of a later round or run is still the policy's
    assert _confident(list(LabelStore(out).ok_records()), out) == trained_before
    # the reviewer starts with the flagged, least confident labels; the sheet says why
    order = review_order(LabelStore(out).ok_records())
    assert recs[order[0]].confidence == min(r.confidence for r in recs.values())
    pictures, captions = review_sheet(out, images, count=4)
    assert len(pictures) == 4 and captions[0].startswith(order[0])
    if recs[order[0]].flagged:
        assert recs[order[0]].doubt.split()[0] in captions[0]
    assert pictures[0].shape[:2] == load_trimap(out / f"{order[0]}.png").shape


def test_bench_label_confidence_scores_and_fits_on_truth(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    images, out, truth = _labeled_folder(tmp_path, n=12)
    _perfect_network(truth, monkeypatch)
    refine_labels(images, out, rounds=1, min_photos=2, progress=False, log=lambda m: None)
    root = Path(__file__).resolve().parents[1]
    grades = tmp_path / "grades.csv"  # a person's grades: the leg photos wrong, others good
    grades.write_text("stem,grade\n" + "".join(
        f"{st},{0 if i % 3 == 0 else 2}\n" for i, st in enumerate(sorted(truth))))
    res = subprocess.run([sys.executable, str(root / "bench" / "label_confidence.py"),
                          str(out), str(out), "--truth", str(tmp_path / "sample" / "masks"), "-",
                          "--grades", "-", str(grades), "--fit", "--cross", "-v"],
                         capture_output=True, text=True, timeout=300, cwd=root)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    scored = [ln for ln in lines if "Spearman(confidence, quality)" in ln and "fit" not in ln]
    assert len(scored) == 2 and all("12 labels" in ln for ln in scored)
    assert "4 bad" in scored[1]  # the four leg photos graded 0
    assert any(ln.startswith("fitted on") for ln in lines)
    assert sum(ln.split(":")[0] in confidence.COEFFICIENTS for ln in lines) == len(
        confidence.COEFFICIENTS)
    # each folder scored by a model fitted on the other one (never on its own rows); the
    # perfect network's labels are all good against the truth: nothing to fit on for B
    assert sum("judged by a fit on the other folders: 12 labels" in ln for ln in lines) == 1
    assert any(ln.startswith("cannot fit on 12 refined labels of which 0 are bad") for ln in lines)

    # evidence written by a seglib that did not record the photo's part: --photos computes it
    # from the photo and the written label as refinement did
    mod = _bench_module()
    recorded = {r["stem"]: r for r in read_csv(out / EVIDENCE_CSV)}
    old = [{k: v for k, v in r.items() if k not in ("backdrop", "weak_edge")}
           for r in recorded.values()]
    from seglib.core.tables import write_csv

    write_csv(out / EVIDENCE_CSV, old, [k for k in old[0]])
    without = mod.rows_of(out, None, grades)
    assert all(r.get("incomplete") for r in without if "evidence" in r)
    res = subprocess.run([sys.executable, str(root / "bench" / "label_confidence.py"), str(out),
                          "--grades", str(grades), "--rejudge"],
                         capture_output=True, text=True, timeout=300, cwd=root)
    assert res.returncode != 0 and "pass --photos" in res.stderr  # never judged as if clean
    filled = [r for r in mod.rows_of(out, None, grades, images) if "evidence" in r]
    assert filled
    for r in filled:
        assert r["evidence"].backdrop == pytest.approx(float(recorded[r["stem"]]["backdrop"]),
                                                       abs=1e-4)
        assert r["evidence"].weak_edge == pytest.approx(
            float(recorded[r["stem"]]["weak_edge"]), abs=1e-4)


def _bench_module():
    import importlib.util

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("label_confidence",
                                                  root / "bench" / "label_confidence.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_spearman_of_the_bench_ranks_ties_by_their_mean() -> None:
    mod = _bench_module()
    assert list(mod.ranks(np.array([3.0, 1.0, 3.0, 2.0]))) == [3.5, 1.0, 3.5, 2.0]
    assert mod.spearman(np.array([1, 2, 3, 4]), np.array([10, 20, 30, 40])) == pytest.approx(1)
    assert mod.spearman(np.array([1, 2, 3, 4]), np.array([4, 3, 2, 1])) == pytest.approx(-1)


def test_pick_doubt_names_what_lowered_the_policy_s_confidence() -> None:
    from seglib.labels.confidence import pick_doubt
    from seglib.masks.candidates import Candidates
    from seglib.masks.policy import Pick, pick

    frame = np.ones((64, 64), bool)  # the seed policy's background pick: flagged
    shoe = _disc()
    seed = pick(Candidates(np.stack([frame, shoe]), [0.99, 0.5], [0.99, 0.5], ["a", "b"],
                           "opencv"), "seed")
    assert seed.flagged and "background" in pick_doubt(seed)
    weak = Pick(shoe, "0", 0.12, 0.27, True, {"score": 0.12, "rival": 0.066, "from_top": 0})
    assert "weak" in pick_doubt(weak)  # the rival's factor is 1: the weak mask is the doubt
    close = Pick(shoe, "0", 0.5, 0.2, True, {"score": 0.5, "rival": 0.46, "from_top": 0})
    assert "rival mask scores almost as high (0.46 against 0.50)" in pick_doubt(close)
    top = Pick(shoe, "0", 0.5, 0.9, True, {"score": 0.5, "rival": 0.1, "from_top": 0.3})
    assert "enters from the top" in pick_doubt(top)
    assert pick_doubt(Pick(shoe, "0", 0.5, 0.9, False, {})) == ""


def test_an_override_naming_an_empty_mask_stays_flagged() -> None:
    from seglib.labels.labeling import pick_photo
    from seglib.masks.candidates import Candidates

    shoe = _disc()
    cands = Candidates(np.stack([shoe, np.zeros_like(shoe)]), [0.9, 0.5], [0.9, 0.5],
                       ["a", "b"], "opencv")
    res = pick_photo(LabelRecord("s", file="s.jpg"), cands, "foreground", "1", (64, 64))
    assert res.record.source == "override" and res.record.flagged and res.record.doubt
    ok = pick_photo(LabelRecord("s", file="s.jpg"), cands, "foreground", "0", (64, 64))
    assert (ok.record.confidence, ok.record.flagged) == (1.0, False)


def test_schema_2_labels_a_person_made_become_sure() -> None:
    row = {"stem": "a", "file": "a.jpg", "confidence": "0.3100", "flagged": "1",
           "source": "edited", "status": "ok", "schema": "2"}
    rec = record_from_row(row)
    assert (rec.confidence, rec.flagged, rec.pick_confidence) == (1.0, False, 0.31)


def test_policy_report_after_refinement_compares_the_backend_s_own_candidates(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Refinement appends its mask to the candidates with predicted IoU 1; the RQ3 report
    (notebook 04, summary.json) must not count it as the seed policy's pick."""
    from seglib.labels.review import policy_report
    from seglib.masks.candidates import Candidates

    images, out, truth = _labeled_folder(tmp_path, n=12)
    _perfect_network(truth, monkeypatch)
    s = refine_labels(images, out, rounds=1, min_photos=2, progress=False, log=lambda m: None)
    assert s.refined
    rows = {r["stem"]: r for r in policy_report(out, progress=False)}
    for stem in s.changed:
        n = len(Candidates.load(out / "candidates" / f"{stem}.npz"))
        assert rows[stem]["candidates"] == n - 1  # the refined mask left out
        assert int(rows[stem]["seed"].lstrip("~").split("+")[0]) < n - 1
        assert rows[stem]["source"] == "refined"


def test_refine_writes_the_evidence_whenever_it_saves_labels_csv(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run killed mid-round keeps the evidence of every label labels.csv already records
    (it was written only at the round's end: a rerun skips those labels and never wrote it)."""
    images, out, truth = _labeled_folder(tmp_path, n=12)
    _perfect_network(truth, monkeypatch)
    monkeypatch.setattr("seglib.labels.store.SAVE_EVERY", 0.0)  # every label saved as it is made
    saved: list[tuple[int, int]] = []  # (evidence rows, refined records) at each save
    real_save = LabelStore.save

    def watch(self: LabelStore, *, throttle: bool = False) -> None:
        real_save(self, throttle=throttle)
        rows = read_csv(out / EVIDENCE_CSV) if (out / EVIDENCE_CSV).is_file() else []
        saved.append((len(rows), sum(r.source == "refined" for r in self.records().values())))

    monkeypatch.setattr(LabelStore, "save", watch)
    s = refine_labels(images, out, rounds=1, min_photos=2, progress=False, log=lambda m: None)
    assert s.refined >= 5 and len(saved) >= s.refined
    assert all(rows >= refined for rows, refined in saved)  # never a label without its row


def test_a_refine_stopped_by_ctrl_c_keeps_the_evidence_of_what_it_recorded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C mid-round: the lock saves labels.csv on the way out, and the evidence of every
    label it records is written with it (a rerun skips those labels and would never)."""
    import seglib.refine.rounds as refine_mod

    images, out, truth = _labeled_folder(tmp_path, n=12)
    _perfect_network(truth, monkeypatch)
    calls = {"n": 0}
    real = refine_mod.of_refined

    def judge_then_stop(e: Evidence) -> tuple[float, bool, str]:
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(e)

    monkeypatch.setattr(refine_mod, "of_refined", judge_then_stop)
    with pytest.raises(KeyboardInterrupt):
        refine_labels(images, out, rounds=1, min_photos=2, progress=False, log=lambda m: None)
    rows = {r["stem"]: r for r in read_csv(out / EVIDENCE_CSV)}
    refined = [r for r in LabelStore(out).records().values() if r.source == "refined"]
    assert len(refined) == 4 and all(r.stem in rows for r in refined)
    assert all(rows[r.stem]["trimap_hash"] == r.trimap_hash for r in refined)


def test_review_advice_puts_labels_of_unknown_confidence_first_and_says_so() -> None:
    from seglib.labels.review import confidence_text, review_advice

    report = [{"stem": f"p{i}", "confidence": c, "flagged": c < 0.5, "source": "refined"}
              for i, c in enumerate([0.9, 0.95, 0.3, 0.99, 0.97, 0.9, 0.92, 0.96, 0.98, 0.94])]
    report.append({"stem": "lost", "confidence": None, "flagged": True, "source": "refined"})
    advice = review_advice(report)
    assert advice["review"] == 2  # 20 % of the 11
    assert "1 flagged labels have no confidence" in advice["text"]
    assert advice["estimated_bad_there"] == pytest.approx(0.7)  # the lost one, then p2 (0.3)
    assert confidence_text(None) == "unknown" and confidence_text(0.456) == "0.46"
