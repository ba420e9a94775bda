"""Issue 26: a wrong label fixed with prompts (a box, clicks). The prompters (GrabCut offline,
SAM and the transformers SAMs with random weights: code paths and caching, never quality),
``fix_label`` through the label store (source ``prompted``, ``prompts.csv``), the CLI, and a
prompted label kept by re-pick, refinement and import, and carried by every export."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from test_confidence import _perfect_network
from test_refine import _labeled_folder

from seglib.backends import open_prompter
from seglib.backends.prompts import OpencvPrompter, Prompter, Prompts
from seglib.cli import main
from seglib.core.errors import SeglibError
from seglib.core.images import read_image
from seglib.core.tables import read_csv
from seglib.labels.fixing import PROMPTS_CSV, fix_label, preview_fix, redraw_prompted
from seglib.labels.labeling import repick_folder
from seglib.labels.store import LabelStore
from seglib.masks.trimap import load_trimap

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def _truth(stem: str) -> np.ndarray:
    return cv2.imread(str(SAMPLE / "masks" / f"{stem}.png"), 0) > 0


def _box(mask: np.ndarray, pad: int = 2) -> tuple[float, float, float, float]:
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    return (max(xs.min() - pad, 0), max(ys.min() - pad, 0), min(xs.max() + 1 + pad, w),
            min(ys.max() + 1 + pad, h))


@pytest.fixture
def labeled(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    """Six sample photos labeled with the opencv backend: (images, labels, stems)."""
    if not (SAMPLE / "images").is_dir():
        pytest.skip("data/sample is missing")
    images, out = tmp_path / "img", tmp_path / "labels"
    images.mkdir()
    stems = [f"sample_{i:03d}" for i in range(6)]
    for s in stems:
        shutil.copyfile(SAMPLE / "images" / f"{s}.jpg", images / f"{s}.jpg")
    assert main(["label", str(images), "--out", str(out), "--backend", "opencv"]) == 0
    return images, out, stems


# -- prompts --------------------------------------------------------------------------------
def test_prompts_round_trip_and_say_what_is_wrong_in_one_line() -> None:
    p = Prompts(positive=[(3, 4)], negative=[(1, 2)], box=(0, 0, 10, 8))
    assert p.positive == ((3.0, 4.0),) and p.box == (0.0, 0.0, 10.0, 8.0)
    assert Prompts.from_json(p.to_json()) == p and " " not in p.to_json()
    assert Prompts().is_empty() and not p.is_empty()
    assert p.checked((8, 10)) == p
    assert Prompts(box=(-5, -5, 4, 4)).checked((8, 10)).box == (0.0, 0.0, 4.0, 4.0)
    for bad, words in [(Prompts(), "no prompt"), (Prompts(negative=[(1, 1)]), "only negative"),
                       (Prompts(box=(20, 20, 30, 30)), "does not overlap"),
                       (Prompts(positive=[(10, 1)]), "outside")]:
        with pytest.raises(SeglibError, match=words) as e:
            bad.checked((8, 10))
        assert "\n" not in str(e.value)
    with pytest.raises(SeglibError, match="not prompts"):
        Prompts.from_json("{oops")


def test_a_box_on_sample_photos_finds_the_shoe_at_least_as_well_as_plain_grabcut() -> None:
    from seglib.masks.shapes import grabcut

    prompter = open_prompter("opencv")
    assert isinstance(prompter, Prompter) and prompter.description == "opencv grabcut"
    ours, plain = [], []
    for i in range(0, 48, 6):
        stem = f"sample_{i:03d}"
        photo, truth = read_image(SAMPLE / "images" / f"{stem}.jpg"), _truth(stem)
        box = _box(truth)
        prompter.set_photo(photo)
        ours.append(_iou(prompter.mask(Prompts(box=box)), truth))
        x0, y0, x1, y1 = (int(v) for v in box)
        bgr = cv2.cvtColor(photo, cv2.COLOR_RGB2BGR)
        plain.append(_iou(grabcut(bgr, rect=(x0, y0, x1 - x0, y1 - y0), iters=5), truth))
    assert np.mean(ours) >= 0.9, ours
    assert np.mean(ours) >= np.mean(plain) - 0.01, (ours, plain)


def test_opencv_prompter_caches_the_photo_and_answers_every_prompt_kind() -> None:
    photo = read_image(SAMPLE / "images" / "sample_001.jpg")
    truth = _truth("sample_001")
    p = OpencvPrompter()
    p.set_photo(photo)
    p.set_photo(photo.copy())  # the same pixels: nothing done again
    assert p.cache.photos_set == 1
    ys, xs = np.nonzero(cv2.erode(truth.astype(np.uint8), np.ones((9, 9))))
    inside = (float(xs[len(xs) // 2]), float(ys[len(ys) // 2]))
    for prompts in (Prompts(positive=[inside]), Prompts(box=_box(truth)),
                    Prompts(positive=[inside], negative=[(2, 2)], box=_box(truth))):
        m = p.mask(prompts)
        assert m.dtype == bool and m.shape == truth.shape and m[int(inside[1]), int(inside[0])]
    with pytest.raises(SeglibError, match="set_photo"):
        OpencvPrompter().mask(Prompts(box=(0, 0, 5, 5)))


# -- SAM prompters with random weights: code paths and the embedding once per photo -----------
def _check_prompter(prompter: Prompter, count: callable) -> None:
    img = np.full((48, 64, 3), 200, np.uint8)
    img[10:30, 20:40] = (30, 60, 90)
    prompter.set_photo(img)
    prompter.set_photo(img.copy())
    for prompts in (Prompts(positive=[(30, 20)]), Prompts(box=(10, 5, 50, 40)),
                    Prompts(positive=[(30, 20)], negative=[(2, 2)]),
                    Prompts(positive=[(30, 20)], negative=[(2, 2)], box=(10, 5, 50, 40))):
        m = prompter.mask(prompts)
        assert m.shape == (48, 64) and m.dtype == bool
    assert count() == 1
    other = img.copy()
    other[0, 0] = 0
    prompter.set_photo(other)
    assert count() == 2


def test_sam_prompter_encodes_each_photo_once() -> None:
    pytest.importorskip("segment_anything")
    from toys import tiny_sam

    from seglib.backends.sam import SamProposer
    from seglib.backends.sam_prompter import SamPrompter

    prompter = SamPrompter(SamProposer(tiny_sam(), device="cpu"))
    calls = []
    real = prompter.proposer.predictor.set_image
    prompter.proposer.predictor.set_image = lambda *a, **k: (calls.append(1), real(*a, **k))
    _check_prompter(prompter, lambda: len(calls))
    assert prompter.description.startswith("sam ")


@pytest.mark.parametrize("backend,family", [("sam2", "sam2"), ("edgetam", "edgetam"),
                                            ("slimsam", "sam")])
def test_transformers_prompters_encode_each_photo_once(backend: str, family: str,
                                                       tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    if backend == "edgetam":
        pytest.importorskip("timm")
    from toys import tiny_hf_sam

    prompter = open_prompter(backend, tiny_hf_sam(tmp_path / backend, family), device="cpu")
    model = prompter.proposer.model
    calls = []
    real = model.get_image_embeddings
    model.get_image_embeddings = lambda *a, **k: (calls.append(1), real(*a, **k))[1]
    _check_prompter(prompter, lambda: len(calls))
    assert prompter.backend == backend


def _check_a_later_click(prompter: Prompter, encoder: torch.nn.Module,
                          decoder: torch.nn.Module, monkeypatch) -> None:
    """A later click on the photo: no image encoder, the decoder on one torch thread (small
    matrices: a second thread only waits on a busy CPU), and only the chosen one of the
    decoder's masks grown to the photo's size, straight from the low-res logits."""
    from seglib.backends import hf_sam, sam_prompter

    img = np.full((48, 64, 3), 200, np.uint8)
    img[10:30, 20:40] = (30, 60, 90)
    prompter.set_photo(img)
    encoded, threads, grown = [], [], []
    encoder.register_forward_hook(lambda *a: encoded.append(1))
    decoder.register_forward_pre_hook(lambda *a: threads.append(torch.get_num_threads()))
    real = sam_prompter.logits_to_photo
    for module in (sam_prompter, hf_sam):
        monkeypatch.setattr(module, "logits_to_photo",
                            lambda logits, *a, **k: (grown.append(len(logits)),
                                                     real(logits, *a, **k))[1])
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for prompts in (Prompts(positive=[(30, 20)]),  # multimask: three masks, one kept
                        Prompts(positive=[(30, 20)], negative=[(2, 2)], box=(10, 5, 50, 40))):
            prompter.set_photo(img.copy())
            assert prompter.mask(prompts).shape == (48, 64)
        assert torch.get_num_threads() == 2  # given back after the click
    finally:
        torch.set_num_threads(old)
    assert encoded == [] and threads == [1, 1] and grown == [1, 1]


def test_a_later_sam_click_runs_only_the_decoder_and_grows_one_mask(monkeypatch) -> None:
    pytest.importorskip("segment_anything")
    from toys import tiny_sam

    from seglib.backends.sam import SamProposer
    from seglib.backends.sam_prompter import SamPrompter

    prompter = SamPrompter(SamProposer(tiny_sam(), device="cpu"))
    model = prompter.proposer.model
    _check_a_later_click(prompter, model.image_encoder, model.mask_decoder, monkeypatch)


@pytest.mark.parametrize("backend,family", [("sam2", "sam2"), ("slimsam", "sam")])
def test_a_later_transformers_click_runs_only_the_decoder(backend: str, family: str,
                                                          tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("transformers")
    from toys import tiny_hf_sam

    prompter = open_prompter(backend, tiny_hf_sam(tmp_path / backend, family), device="cpu")
    model = prompter.proposer.model
    _check_a_later_click(prompter, model.vision_encoder, model.mask_decoder, monkeypatch)


def test_a_sam_backend_without_checkpoint_says_how_to_get_one(tmp_path: Path,
                                                              monkeypatch) -> None:
    monkeypatch.delenv("SEGLIB_CHECKPOINT", raising=False)
    monkeypatch.setattr("seglib.backends.sam_weights.default_dirs", lambda: [tmp_path / "no"])
    monkeypatch.setattr("seglib.backends.hf_weights.find_checkpoint", lambda *a, **k: None)
    with pytest.raises(SeglibError, match="seglib weights sam2.1_tiny"):
        open_prompter("sam2")


# -- fix_label through the store --------------------------------------------------------------
def test_fix_label_writes_a_prompted_label_and_its_prompts(labeled, capsys) -> None:
    images, out, stems = labeled
    stem = stems[1]
    truth = _truth(stem)
    before = (out / f"{stem}.png").read_bytes()
    preview = preview_fix(out, stem, box=_box(truth))
    assert preview.record is None and (out / f"{stem}.png").read_bytes() == before
    assert not (out / PROMPTS_CSV).exists()
    r = fix_label(out, stem, box=_box(truth))
    assert _iou(r.mask, truth) >= 0.9 and np.array_equal(r.mask, preview.mask)
    rec = LabelStore(out).get(stem)
    assert (rec.source, rec.confidence, rec.flagged, rec.backend) == ("prompted", 1.0, False,
                                                                      "opencv")
    assert np.array_equal(load_trimap(out / f"{stem}.png") == 1, r.mask)
    rows = read_csv(out / PROMPTS_CSV)
    assert [(x["stem"], x["backend"], x["model"]) for x in rows] == [(stem, "opencv",
                                                                     "opencv grabcut")]
    assert Prompts.from_json(rows[0]["prompts"]) == r.prompts
    assert rows[0]["pixels_hash"] == rec.pixels_hash
    x0, y0, x1, y1 = (str(int(v)) for v in _box(truth))
    assert main(["fix", str(out), stem, "--box", x0, y0, x1, y1, "--point",
                 str(int(np.nonzero(truth)[1].mean())), str(int(np.nonzero(truth)[0].mean()))]
                ) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{stem}: source prompted, object ") and line.endswith(" s")
    assert len(read_csv(out / PROMPTS_CSV)) == 1  # one row per stem, the latest
    assert "positive" in read_csv(out / PROMPTS_CSV)[0]["prompts"]
    redrawn = redraw_prompted(out, OpencvPrompter(iters=2))
    assert [x.stem for x in redrawn] == [stem]


def test_fix_help_says_how_to_get_each_checkpoint(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["fix", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "python -m seglib weights NAME" in out
    for name in ("vit_b (sam)", "sam2.1_tiny (sam2)", "edgetam (edgetam)", "slimsam_77 (slimsam)"):
        assert name in out


def test_wrong_prompts_stems_and_folders_are_one_line(labeled, tmp_path: Path,
                                                      capsys) -> None:
    images, out, stems = labeled
    cases = [([str(out), stems[0]], "no prompt"),
             ([str(out), "nope", "--box", "1", "1", "9", "9"], "no label for 'nope'"),
             ([str(out), stems[0], "--box", "300", "300", "400", "400"], "does not overlap"),
             ([str(images), stems[0], "--box", "1", "1", "9", "9"], "not a labeled folder"),
             ([str(out), stems[0], "--box", "1", "1", "9", "9", "--images", str(tmp_path)],
              "is not there")]
    for args, words in cases:
        assert main(["fix", *args]) != 0
        err = capsys.readouterr().err.strip()
        assert words in err and "\n" not in err, err


# -- a prompted label is a person's: kept and carried --------------------------------------------
def test_repick_and_import_keep_a_prompted_label_unless_replace_kept(labeled,
                                                                     tmp_path: Path) -> None:
    from test_import import rle_compressed, write_coco_file

    images, out, stems = labeled
    stem = stems[2]
    fixed = fix_label(out, stem, box=_box(_truth(stem))).mask
    repick_folder(out, "seed")
    assert LabelStore(out).get(stem).source == "prompted"
    assert np.array_equal(load_trimap(out / f"{stem}.png") == 1, fixed)
    other = np.zeros_like(fixed)
    other[10:50, 10:50] = True
    coco = write_coco_file(tmp_path / "c.json", {stem: other}, rle_compressed)
    assert main(["import", str(out), "--coco", str(coco)]) == 0
    assert LabelStore(out).get(stem).source == "prompted"
    assert main(["import", str(out), "--coco", str(coco), "--replace-kept"]) == 0
    assert LabelStore(out).get(stem).source == "imported"
    fix_label(out, stem, box=_box(_truth(stem)))
    repick_folder(out, "seed", replace_kept=True)
    assert LabelStore(out).get(stem).source == "pick"


def test_refinement_keeps_a_prompted_label(tmp_path: Path, monkeypatch) -> None:
    from seglib.refine.rounds import refine_labels
    from seglib.refine.views import KEPT_OVERRIDE

    images, out, truth = _labeled_folder(tmp_path, n=12)
    stem = sorted(truth)[0]  # a pick with a leg
    fixed = fix_label(out, stem, box=_box(truth[stem]), images_dir=images).mask
    _perfect_network(truth, monkeypatch)
    s = refine_labels(images, out, rounds=1, min_photos=2, progress=False, log=lambda m: None)
    assert stem not in s.changed and s.kept_why[KEPT_OVERRIDE] >= 1
    assert LabelStore(out).get(stem).source == "prompted"
    assert np.array_equal(load_trimap(out / f"{stem}.png") == 1, fixed)


@pytest.mark.parametrize("fmt", ["coco", "yolo", "oxford-pet", "voc"])
def test_every_export_carries_a_prompted_label(labeled, tmp_path: Path, fmt: str) -> None:
    from seglib.formats.export import export_labels

    images, out, stems = labeled
    store = LabelStore(out)
    for s in stems:  # every pick flagged: only the prompted label is confident
        store.get(s).flagged = True
    store.save()
    stem = stems[3]
    fix_label(out, stem, box=_box(_truth(stem)))
    dest = tmp_path / fmt
    export_labels(out, dest, fmt, photos=images, only_confident=True)
    named = sorted({p.stem for p in dest.rglob("*") if p.is_file()} & set(stems))
    if fmt == "coco":
        text = "".join(p.read_text() for p in dest.rglob("*.json"))
        named = [s for s in stems if f"{s}.jpg" in text]
    assert named == [stem]
    if fmt == "oxford-pet":
        (tri,) = [p for p in dest.rglob(f"{stem}.png") if "trimaps" in p.parts]
        assert np.array_equal(load_trimap(tri), load_trimap(out / f"{stem}.png"))
