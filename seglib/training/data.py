"""Photo + trimap pairs for training: pairing, checking, the fixed validation split, subsets.

Trimap labels 1/2/3 (object, background, border) become classes 0/1/2. Photos are resized
bilinear and trimaps nearest to ``size``×``size`` and kept in memory as uint8 tensors (the
datasets are small), so an epoch is just slicing and optional flips.

The split follows the original protocol: the pairs (sorted by stem) are shuffled with seed
1337 and the last ``n_val`` are validation. Training subsets take the *first* N training pairs
after that fixed split, so every model is scored on the same validation photos.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from seglib.core.errors import SeglibError
from seglib.core.images import list_images, pair_by_stem, read_image, scan_images
from seglib.labels.store import LabelStore
from seglib.masks.trimap import load_trimap

SPLIT_SEED = 1337
STANDARD_SUBSETS = ("10", "161", "207", "711", "711B")
_STANDARD_SIZES = {"10": 10, "161": 161, "207": 207, "711": 711}


@dataclass
class Pair:
    """One photo and its trimap, matched by file stem."""

    stem: str
    image: Path
    trimap: Path


@dataclass
class Skipped:
    """A file left out, with the reason (shown to the user, the run goes on)."""

    path: Path
    reason: str


@dataclass
class PairScan:
    """The pairs found in an images folder and a trimaps folder, and what did not pair."""

    pairs: list[Pair]
    unpaired: str  # one-line description from seglib.core.images.Pairing.describe
    images_without_trimap: list[Path] = field(default_factory=list)
    trimaps_without_image: list[Path] = field(default_factory=list)
    same_stem: list[Path] = field(default_factory=list)  # photos left out: stem already used
    not_files: list[tuple[Path, str]] = field(default_factory=list)  # io.ImageScan.skipped


def find_pairs(images: str | Path, trimaps: str | Path) -> PairScan:
    """Match photos and trimaps by stem. Raises a one-line error if nothing pairs."""
    photo_scan = scan_images(images)
    imgs = photo_scan.photos
    tris = list_images(trimaps)
    if not imgs:
        raise SeglibError(f"{images}: no .jpg/.jpeg/.png photos found; check the folder")
    if not tris:
        raise SeglibError(f"{trimaps}: no trimap .png files found; run 'python -m seglib label' "
                          "or 'python -m seglib trimap' first")
    p = pair_by_stem(imgs, tris)
    if not p.pairs:
        raise SeglibError(
            f"{images} and {trimaps}: no photo has a trimap with the same file name stem "
            f"({p.describe()}); point both arguments at matching folders"
        )
    used = {i for i, _ in p.pairs} | set(p.images_without_label)
    return PairScan([Pair(i.stem, i, t) for i, t in p.pairs], p.describe(),
                    p.images_without_label, p.labels_without_image,
                    [i for i in imgs if i not in used], photo_scan.skipped)


def n_val_for(n_pairs: int) -> int:
    """Validation size: 100 photos, or 20% of a smaller folder (at least 1)."""
    if n_pairs < 2:
        raise SeglibError(f"need at least 2 photo/trimap pairs to train and validate, found "
                          f"{n_pairs}; add photos with trimaps")
    return min(100, max(1, int(n_pairs * 0.2)))


def split_pairs(pairs: Sequence[Pair], seed: int = SPLIT_SEED,
                n_val: int | None = None) -> tuple[list[Pair], list[Pair]]:
    """The fixed split: sort by stem, shuffle with ``seed``, the last ``n_val`` validate."""
    order = sorted(pairs, key=lambda p: p.stem)
    random.Random(seed).shuffle(order)
    n_val = n_val_for(len(order)) if n_val is None else n_val
    if not 0 < n_val < len(order):
        raise SeglibError(f"validation size {n_val} must be between 1 and {len(order) - 1}")
    return order[:-n_val], order[-n_val:]


def subset_sizes(n_pairs: int, names: Sequence[str] = STANDARD_SUBSETS) -> dict[str, int]:
    """Training-set size for each standard subset name, for a folder of ``n_pairs`` pairs.

    With enough photos the sizes are the standard 10/161/207/711 ("711B" = same photos as
    711). A smaller folder keeps the same proportions to its training part (the largest
    subset uses all of it), at least 2 photos and strictly growing where there is room.
    """
    n_train = n_pairs - n_val_for(n_pairs)
    out: dict[str, int] = {}
    if n_train >= _STANDARD_SIZES["711"]:
        base = dict(_STANDARD_SIZES)
    elif n_train >= _STANDARD_SIZES["207"]:
        base = dict(_STANDARD_SIZES, **{"711": n_train})
    else:
        base, prev = {}, 0
        for name, std in _STANDARD_SIZES.items():
            s = max(2, round(std * n_train / 711), prev + 1)
            base[name] = prev = min(s, n_train)
    for name in names:
        key = name.rstrip("B")
        if key not in base:
            raise SeglibError(f"unknown subset {name!r}; choose from {', '.join(STANDARD_SUBSETS)}")
        out[name] = base[key]
    return out


def take_subset(train: Sequence[Pair], n: int | None, log=None) -> list[Pair]:
    """The first ``n`` training pairs; asking for more than exist uses all and says so."""
    if n is None or n >= len(train):
        if n is not None and n > len(train):
            msg = (f"asked for {n} training photos but only {len(train)} remain after the "
                   f"validation split; training on {len(train)}")
            (log or (lambda m: print(m, file=sys.stderr)))(msg)
        return list(train)
    if n < 1:
        raise SeglibError(f"--n must be at least 1, got {n}")
    return list(train[:n])


def network_photo(image: np.ndarray, size: int) -> np.ndarray:
    """The photo as the network sees it, in training and in prediction: bilinear to
    size×size."""
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)


def resize_pair(image: np.ndarray, trimap: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Photo bilinear (:func:`network_photo`), trimap nearest, both to size×size."""
    tri = cv2.resize(trimap, (size, size), interpolation=cv2.INTER_NEAREST)
    return network_photo(image, size), tri


def load_pair(pair: Pair, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Read, check and resize one pair. Raises SeglibError naming the file if it is bad."""
    image = read_image(pair.image)
    trimap = load_trimap(pair.trimap)
    if image.shape[:2] != trimap.shape[:2]:
        raise SeglibError(
            f"{pair.trimap}: trimap is {trimap.shape[1]}×{trimap.shape[0]} but its photo is "
            f"{image.shape[1]}×{image.shape[0]}; relabel the photo"
        )
    return resize_pair(image, trimap, size)


@dataclass
class Tensors:
    """Preloaded pairs: images uint8 N×3×S×S (RGB 0..255), targets uint8 N×S×S (classes),
    and each label's confidence (float N, 1.0 where the labeler gave none)."""

    images: torch.Tensor
    targets: torch.Tensor
    stems: list[str]
    confidence: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.confidence is None:
            self.confidence = torch.ones(len(self.stems))

    def __len__(self) -> int:
        return len(self.stems)

    def select(self, idx: Sequence[int]) -> Tensors:
        i = torch.as_tensor(list(idx), dtype=torch.long)
        assert self.confidence is not None
        return Tensors(self.images[i], self.targets[i], [self.stems[k] for k in i.tolist()],
                       self.confidence[i])


def label_confidence(trimaps: str | Path) -> dict[str, float]:
    """Each trimap's confidence (0..1) from ``labels.csv`` next to the trimaps, if there is one.

    Labels a person chose or drew (source override, imported, edited,
    prompted) count as sure: 1.
    Trimaps made any other way have no entry (the training treats them as confidence 1).
    """
    out = {}
    for r in LabelStore(trimaps).ok_records():
        if r.sure:
            out[r.stem] = 1.0
        elif r.confidence is not None:
            out[r.stem] = min(1.0, max(0.0, float(r.confidence)))
    return out


def drop_replaced_photos(scan: PairScan, trimaps: str | Path, say) -> list[Skipped]:
    """Take out of ``scan`` the pairs whose photo is not the one their label was made from
    (:meth:`~seglib.labels.store.LabelRecord.made_from`: neither its bytes nor its decoded
    pixels are those ``labels.csv`` next to the trimaps records): the label was drawn on
    another photo. Says one line for each."""
    records = LabelStore(trimaps).records()
    keep, dropped = [], []
    for p in scan.pairs:
        rec = records.get(p.stem)
        try:
            replaced = rec is not None and not rec.made_from(p.image)
        except SeglibError:  # unreadable: preload names it
            replaced = False
        if not replaced:
            keep.append(p)
            continue
        why = ("the photo changed since it was labeled (labels.csv), so its trimap is of "
               f"another photo; label it again (python -m seglib label PHOTOS --out "
               f"{Path(trimaps)})")
        say(f"skipped {p.image.name}: {why}")
        dropped.append(Skipped(p.image, why))
    scan.pairs = keep
    return dropped


def preload(pairs: Sequence[Pair], size: int, desc: str = "loading",
            log=None) -> tuple[Tensors, list[Skipped]]:
    """Load every pair at ``size``; bad pairs are skipped with their reason, not raised."""
    imgs, tris, stems, skipped = [], [], [], []
    for p in tqdm(pairs, desc=desc, unit="photo", leave=False, disable=len(pairs) < 50):
        try:
            img, tri = load_pair(p, size)
        except SeglibError as exc:
            skipped.append(Skipped(p.image, str(exc)))
            (log or (lambda m: tqdm.write(m, file=sys.stderr)))(f"skipped: {exc}")
            continue
        imgs.append(img)
        tris.append(tri)
        stems.append(p.stem)
    if not stems:
        return Tensors(torch.zeros(0, 3, size, size, dtype=torch.uint8),
                       torch.zeros(0, size, size, dtype=torch.uint8), []), skipped
    images = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous()
    targets = torch.from_numpy(np.stack(tris)) - 1
    return Tensors(images, targets, stems), skipped


@dataclass
class Dataset:
    """A folder pair loaded once: the good pairs split into train and validation tensors."""

    train: Tensors
    val: Tensors
    skipped: list[Skipped]
    scan: PairScan
    size: int


def load_dataset(images: str | Path, trimaps: str | Path, size: int, seed: int = SPLIT_SEED,
                 n_val: int | None = None, log=None,
                 stems: Collection[str] | None = None) -> Dataset:
    """Pair, check and preload a folder pair, then split it the fixed way.

    Bad pairs (unreadable, size mismatch, labels outside 1..3) are skipped with a reason;
    the split is made over the good pairs. ``stems`` keeps only those photos (e.g. the
    confident labels of a label folder).
    """
    scan = find_pairs(images, trimaps)
    say = log or (lambda m: print(m, file=sys.stderr))
    if stems is not None:
        keep = set(stems)
        scan.pairs = [p for p in scan.pairs if p.stem in keep]
    elif scan.images_without_trimap or scan.trimaps_without_image:
        say(f"pairing: {scan.unpaired}")
    for path in scan.same_stem:
        say(f"skipped {path.name}: another photo is also named {path.stem!r}; rename one of them")
    for path, why in scan.not_files:
        say(f"skipped {path.name}: {why}")
    replaced = drop_replaced_photos(scan, trimaps, say)
    tensors, skipped = preload(scan.pairs, size, log=log)
    skipped = [Skipped(path, why) for path, why in scan.not_files] + replaced + skipped
    if len(tensors) < 2:
        raise SeglibError(f"{trimaps}: fewer than 2 usable photo/trimap pairs "
                          f"({len(skipped)} skipped); fix the files listed above")
    conf = label_confidence(trimaps)
    tensors.confidence = torch.tensor([conf.get(s, 1.0) for s in tensors.stems])
    by_stem = {s: i for i, s in enumerate(tensors.stems)}
    good = [p for p in scan.pairs if p.stem in by_stem]
    train, val = split_pairs(good, seed, n_val)
    return Dataset(tensors.select([by_stem[p.stem] for p in train]),
                   tensors.select([by_stem[p.stem] for p in val]), skipped, scan, size)


def batches(data: Tensors, batch: int, shuffle: bool, flips: bool,
            generator: torch.Generator, jitter: float = 0.0,
            confidence: bool = False) -> Iterator[tuple[torch.Tensor, ...]]:
    """One epoch of (images float N×3×S×S in 0..255, targets long N×S×S) batches, with the
    labels' confidence (float N) as a third item when ``confidence`` is true.

    Without ``shuffle`` the order is the same every epoch. Flips are random horizontal
    mirror images (same flip for the photo and its trimap). ``jitter`` > 0 adds
    :func:`jitter_batch` (random zoom, shift and colour) of that strength.
    """
    n = len(data)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    starts = list(range(0, n, batch))
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()  # a last batch of one photo joins the one before (batch norm needs two)
    for k, start in enumerate(starts):
        idx = order[start:starts[k + 1]] if k + 1 < len(starts) else order[start:]
        x, y = data.images[idx], data.targets[idx]
        if flips:
            flip = torch.rand(len(idx), generator=generator) < 0.5
            if flip.any():
                x, y = x.clone(), y.clone()
                x[flip] = x[flip].flip(-1)
                y[flip] = y[flip].flip(-1)
        xf, yl = x.float(), y.long()
        if jitter > 0:
            xf, yl = jitter_batch(xf, yl, jitter, generator)
        if confidence:
            assert data.confidence is not None
            yield xf, yl, data.confidence[idx]
        else:
            yield xf, yl


def jitter_batch(x: torch.Tensor, y: torch.Tensor, strength: float,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random zoom (±``strength``), shift (±``strength`` of the side) and colour per photo.

    Photos are resampled bilinear and trimaps nearest with the same transform (edges
    repeated); brightness and contrast change by up to ±``strength``, each channel's gain by
    up to ±``strength``/2. Values stay in 0..255.
    """
    n = len(x)

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator) * 2 - 1

    scale = 1 + strength * uniform(n)
    shift = strength * uniform(n, 2)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    y = F.grid_sample(y[:, None].float(), grid, mode="nearest", padding_mode="border",
                      align_corners=False)[:, 0].round().long()
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    contrast = 1 + strength * uniform(n, 1, 1, 1)
    gain = (1 + strength * uniform(n, 1, 1, 1)) * (1 + strength / 2 * uniform(n, 3, 1, 1))
    x = ((x - mean) * contrast + mean) * gain
    return x.clamp(0, 255), y
