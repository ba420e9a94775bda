"""SamProposer on a tiny random SAM: candidate sets at the photo's size, both modes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from toys import tiny_sam

from seglib.backends.sam import SamProposer, prompt_layout, stability_score
from seglib.masks.candidates import Candidates

# Random weights give near-identical, low-scoring masks: switch the generator's filters and
# duplicate removal off so everything mode hands back every mask it decoded.
NO_FILTERS = {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.0, "box_nms_thresh": 1.0}


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return tiny_sam(seed=0)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A non-square photo: a bright blob on a colour gradient."""
    yy, xx = np.mgrid[:90, :130]
    img = np.stack([xx * 1.5, yy * 2.0, np.full(xx.shape, 90.0)], axis=-1).astype(np.uint8)
    img[((yy - 45) / 25) ** 2 + ((xx - 65) / 40) ** 2 < 1] = (230, 200, 40)
    return img


def check_candidates(c: Candidates, shape: tuple[int, int]) -> None:
    assert isinstance(c, Candidates)
    assert c.backend == "sam"
    assert c.masks.dtype == bool and c.masks.shape[1:] == shape
    assert np.isfinite(c.predicted_iou).all() and np.isfinite(c.stability).all()
    assert ((c.predicted_iou >= 0) & (c.predicted_iou <= 1)).all()
    assert ((c.stability >= 0) & (c.stability <= 1)).all()
    assert len(c.sources) == len(c)


def test_prompt_mode_gives_candidates_at_photo_size(model, photo) -> None:
    p = SamProposer(model, mode="prompt", autocast=False, device="cpu")
    c = p(photo)
    check_candidates(c, (90, 130))
    assert len(c) == 4 * len(prompt_layout(90, 130)) == p.decoded_masks
    assert c.sources[0] == "point:centre/m0" and c.sources[-1].startswith("box:")
    assert p.encode_seconds > 0 and p.decode_seconds > 0


def test_prompt_mode_matches_the_official_predictor(model, photo) -> None:
    """The batched decode + direct upsampling gives SamPredictor.predict's masks and scores."""
    p = SamProposer(model, mode="prompt", autocast=False, device="cpu")
    c = p(photo)
    layout = prompt_layout(*photo.shape[:2])
    for i, prompt in enumerate(layout):
        if prompt.point is not None:
            kw = {"point_coords": np.array([prompt.point]), "point_labels": np.array([1])}
        else:
            kw = {"box": np.array(prompt.box)}
        masks, iou, _ = p.predictor.predict(multimask_output=True, **kw)
        ours = slice(4 * i + 1, 4 * i + 4)  # m1..m3 are the multimask outputs
        np.testing.assert_allclose(c.predicted_iou[ours], np.clip(iou, 0, 1), atol=1e-4)
        for mine, official in zip(c.masks[ours], masks, strict=True):
            # One-step resampling differs from SAM's two-step chain only at a few edge pixels.
            assert (mine != official).mean() < 0.02, prompt.source
            if official.sum() > 1000:
                assert (mine & official).sum() / (mine | official).sum() > 0.95, prompt.source


def test_everything_mode_gives_candidates_at_photo_size(model, photo) -> None:
    p = SamProposer(model, mode="everything", points_per_side=4, autocast=False,
                    device="cpu", everything_kwargs=NO_FILTERS)
    c = p(photo)
    check_candidates(c, (90, 130))
    assert len(c) == 3 * 4 * 4 == p.decoded_masks
    assert set(c.sources) == {"everything"}
    assert (np.diff(c.predicted_iou) <= 0).all()  # best first: seed's argmax is the original's
    # With SAM's own filters on, random masks are dropped: still a valid (maybe empty) set.
    strict = SamProposer(model, mode="everything", points_per_side=4, device="cpu")(photo)
    check_candidates(strict, (90, 130))


def test_prompt_mode_decodes_far_fewer_masks(model, photo) -> None:
    """Everything mode decodes and upsamples 3 masks per grid point; prompt mode 28 in all."""
    prompt = SamProposer(model, mode="prompt", autocast=False, device="cpu")
    every = SamProposer(model, mode="everything", points_per_side=16, autocast=False,
                        device="cpu")
    n_prompt = len(prompt(photo))
    every(photo)
    assert every.decoded_masks == 3 * 16 * 16
    assert prompt.decoded_masks == n_prompt == 28
    assert every.decoded_masks >= 20 * prompt.decoded_masks


def test_bf16_autocast_is_sane(photo, monkeypatch, train_seed, bounds) -> None:
    """bf16 as on a CPU with AMX or AVX512-BF16 (emulated on one without)."""
    monkeypatch.setenv("SEGLIB_PRECISION", "bf16")
    model = tiny_sam(seed=train_seed)
    full = SamProposer(model, autocast=False, device="cpu")
    half = SamProposer(model, autocast=True, device="cpu")
    assert (full.precision, half.precision) == ("fp32", "bf16")
    a, b = full(photo), half(photo)
    check_candidates(b, a.shape)
    assert len(a) == len(b)
    bounds.below("bf16 minus fp32 predicted IoU",
                 np.abs(a.predicted_iou - b.predicted_iou).max(), 0.05)
    bounds.above("mask pixels bf16 and fp32 agree on", (a.masks == b.masks).mean(), 0.9)
    every = SamProposer(model, mode="everything", points_per_side=4, autocast=True,
                        device="cpu", everything_kwargs=NO_FILTERS)
    check_candidates(every(photo), a.shape)


def test_stability_score_like_sam() -> None:
    # Logits rising left to right: 4 of 10 columns > +1, 7 columns > -1 -> 4/7.
    logits = torch.tensor([-3.0, -2.5, -1.5, -0.5, 0.5, 0.9, 1.5, 2.0, 3.0, 4.0]).repeat(5, 1)
    s = stability_score(torch.stack([logits, torch.full((5, 10), -9.0)]))
    assert s.shape == (2,)
    assert s[0].item() == pytest.approx(4 / 7)
    assert s[1].item() == 0.0  # an empty mask is not stable


def test_prompt_layout_stays_inside_the_photo() -> None:
    layout = prompt_layout(240, 320)
    points = [p.point for p in layout if p.point]
    boxes = [p.box for p in layout if p.box]
    assert points[0] == (160.0, 120.0) and len(points) == 5 and len(boxes) == 2
    assert all(0 <= x < 320 and 0 <= y < 240 for x, y in points)
    assert all(0 < x0 < x1 < 320 and 0 < y0 < y1 < 240 for x0, y0, x1, y1 in boxes)
    assert [p.point is not None for p in layout] == [True] * 5 + [False] * 2


def test_rejects_non_rgb_input(model) -> None:
    p = SamProposer(model, device="cpu")
    with pytest.raises(ValueError, match="RGB uint8"):
        p(np.zeros((20, 20), dtype=np.uint8))
    with pytest.raises(ValueError, match="unknown mode"):
        SamProposer(model, mode="fast")


@pytest.mark.parametrize(("size", "inner"), [((240, 320), (768, 1024)), ((333, 250), (1024, 769)),
                                             ((240, 320), (1024, 1024))])
def test_one_step_resampling_matches_sams_two_step_chain(size, inner) -> None:
    """logits_to_photo samples the low-res logits once at the photo's pixels; SAM upsamples
    to the 1024 input, crops the padding, then resizes. On object-shaped logits they agree."""
    import torch.nn.functional as F

    from seglib.backends.sam import logits_to_photo

    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(256.0), torch.arange(256.0), indexing="ij")
    logits = []
    for _ in range(8):  # ellipses, SAM-like logit scale
        cy, cx = (torch.rand(2, generator=g) * 160 + 48).tolist()
        ry, rx = (torch.rand(2, generator=g) * 70 + 8).tolist()
        logits.append(20 * (1 - ((yy - cy) / ry) ** 2 - ((xx - cx) / rx) ** 2).clamp(-1, 1))
    low = torch.stack(logits)
    up = F.interpolate(low[:, None], size=(1024, 1024), mode="bilinear", align_corners=False)
    chain = F.interpolate(up[..., : inner[0], : inner[1]], size=size, mode="bilinear",
                          align_corners=False)[:, 0] > 0
    mine = logits_to_photo(low, size, inner, 1024)
    chain = chain.numpy()
    assert mine.shape == chain.shape == (8, *size)
    for a, b in zip(mine, chain, strict=True):
        if b.any():
            assert (a & b).sum() / (a | b).sum() >= 0.99
