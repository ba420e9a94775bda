"""Figures for the course notebooks: candidate grids, galleries, prediction grids, curves.

Every function returns a matplotlib ``Figure`` made with pyplot, so a notebook shows it inline
at the end of the cell; :func:`save_figure` writes it as a PNG (atomically) for reports.
Inputs are plain numpy arrays: RGB uint8 photos, bool masks, uint8 trimaps (1/2/3).
"""

from __future__ import annotations

import hashlib
import html
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from seglib.core.errors import SeglibError
from seglib.core.files import file_sha256, move_aside, write_bytes_atomic
from seglib.masks.draw import MASK_COLOR, spotlight, trimap_rgb
from seglib.masks.policy import parse_choice
from seglib.training.presets import model_of_run

#: Colours (RGB 0..1) for the chosen candidate of each policy, used in frames and legends.
POLICY_COLORS = {"foreground": (0.10, 0.75, 0.25), "seed": (0.95, 0.55, 0.05),
                 "override": (0.20, 0.45, 0.95)}


def _grid(rows: int, cols: int, cell: float = 2.2, title: str | None = None):
    fig, axes = plt.subplots(rows, cols, figsize=(cell * cols, cell * rows + (0.4 if title else 0)),
                             squeeze=False, layout="constrained")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        for s in ax.spines.values():
            s.set_visible(False)
    if title:
        fig.suptitle(title)
    return fig, axes


def _frame(ax, color: Sequence[float], width: float = 4.0) -> None:
    for s in ax.spines.values():
        s.set_visible(True)
        s.set_color(color)
        s.set_linewidth(width)


def image_grid(rows: Sequence[Sequence[np.ndarray | None]], col_titles: Sequence[str] = (),
               row_titles: Sequence[str] = (), title: str | None = None,
               cell: float = 2.2) -> Figure:
    """A grid of pictures (RGB, grey or trimaps); ``None`` leaves a cell empty.

    2-D uint8 arrays whose values are all in 1..3 are drawn as trimaps.
    """
    n_rows = len(rows)
    n_cols = max((len(r) for r in rows), default=0)
    if n_rows == 0 or n_cols == 0:
        raise ValueError("image_grid needs at least one row with one picture")
    fig, axes = _grid(n_rows, n_cols, cell, title)
    for r, row in enumerate(rows):
        for c, pic in enumerate(row):
            ax = axes[r, c]
            if pic is None:
                ax.axis("off")
                continue
            a = np.asarray(pic)
            if a.ndim == 2 and a.dtype == np.uint8 and a.size and a.min() >= 1 and a.max() <= 3:
                a = trimap_rgb(a)
            ax.imshow(a, cmap="gray" if a.ndim == 2 else None, vmin=0, vmax=255,
                      interpolation="nearest")
    for c, t in enumerate(col_titles[:n_cols]):
        axes[0, c].set_title(t, fontsize=10)
    for r, t in enumerate(row_titles[:n_rows]):
        axes[r, 0].set_ylabel(t, fontsize=8, rotation=0, ha="right", va="center")
    return fig


def captioned_grid(pictures: Sequence[np.ndarray], captions: Sequence[str] = (),
                   cols: int = 4, title: str | None = None, cell: float = 2.2) -> Figure:
    """Pictures in rows of ``cols``, each with its own caption (e.g. a contact sheet)."""
    if not pictures:
        raise ValueError("captioned_grid needs at least one picture")
    cols = max(1, min(cols, len(pictures)))
    rows = [list(pictures[i:i + cols]) for i in range(0, len(pictures), cols)]
    rows[-1] += [None] * (cols - len(rows[-1]))
    fig = image_grid(rows, title=title, cell=cell)
    for ax, cap in zip(fig.axes, captions, strict=False):
        ax.set_title(cap, fontsize=8)
    return fig


def candidate_grid(image: np.ndarray, masks: np.ndarray, labels: Sequence[str] = (),
                   chosen: Mapping[str, int | str] | None = None, title: str | None = None,
                   max_cols: int = 6, cell: float = 2.0) -> Figure:
    """The photo followed by every candidate mask drawn on it.

    ``labels`` is one caption per candidate (e.g. its scores); ``chosen`` maps a policy name to
    what it picked (an index, or a choice string such as ``"~0"`` or ``"2+5"``), and those
    cells get a frame in the policy's colour (``~`` marks a pick of the complement).
    """
    masks = np.asarray(masks, dtype=bool)
    k = int(masks.shape[0])
    n = k + 1
    cols = min(max_cols, n)
    rows = -(-n // cols)
    fig, axes = _grid(rows, cols, cell, title)
    axes.flat[0].imshow(image)
    axes.flat[0].set_title("photo", fontsize=9)
    marks: dict[int, list[str]] = {}
    for policy, choice in (chosen or {}).items():
        try:
            parts = parse_choice(choice) if str(choice).strip() else []
        except SeglibError:  # an unreadable choice marks nothing; the grid still shows
            parts = []
        for i, inverted in parts:
            marks.setdefault(i, []).append(policy + (" (~ outside)" if inverted else ""))
    for i in range(k):
        ax = axes.flat[i + 1]
        ax.imshow(spotlight(image, masks[i]))
        who = marks.get(i, [])
        cap = f"#{i}" + (f" {labels[i]}" if i < len(labels) else "")
        if who:
            cap += "\n← " + ", ".join(who)
            _frame(ax, POLICY_COLORS.get(who[0].split(" ")[0], (0.9, 0.1, 0.1)))
        ax.set_title(cap, fontsize=7)
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig


def pick_comparison(images: Sequence[np.ndarray], masks_by_policy: Mapping[str, Sequence],
                    names: Sequence[str] = (), title: str | None = None,
                    cell: float = 2.2) -> Figure:
    """One row per photo: the photo, then each policy's picked mask on it, side by side."""
    policies = list(masks_by_policy)
    rows = []
    for i, img in enumerate(images):
        rows.append([img] + [spotlight(img, masks_by_policy[p][i],
                                       POLICY_COLORS.get(p, MASK_COLOR)) for p in policies])
    return image_grid(rows, ["photo"] + [f"pick: {p}" for p in policies], names, title, cell)


def policy_figure(report: Sequence[Mapping[str, object]],
                  title: str | None = None) -> Figure:
    """How well each policy finds the object over a folder (rows of
    :func:`seglib.labels.review.policy_report`): the share of photos where it took a background-like
    mask, the distribution of the written labels' confidence, and (where rows have
    ``iou_<policy>``, i.e. true masks exist) each policy's object IoU per photo."""
    policies = ("seed", "foreground")
    n = max(len(report), 1)
    has_truth = any(r.get("iou_seed") is not None for r in report)
    fig, axes = plt.subplots(1, 3 if has_truth else 2, figsize=(11 if has_truth else 7.5, 3.2))
    rates = [sum(bool(r.get(f"{p}_background")) for r in report) / n for p in policies]
    colors = [POLICY_COLORS[p] for p in policies]
    axes[0].bar(policies, rates, color=colors)
    axes[0].set_ylim(0, 1)
    axes[0].set_ylabel("share of photos")
    axes[0].set_title("took a background-like mask", fontsize=9)
    for x, v in enumerate(rates):
        axes[0].text(x, v + 0.02, f"{v:.0%}", ha="center", fontsize=8)
    conf = [float(r["confidence"]) for r in report  # type: ignore[arg-type]
            if r.get("confidence") is not None]
    axes[1].hist(conf, bins=np.linspace(0, 1, 11), color=MASK_COLOR)
    axes[1].set_xlabel("confidence of the written label")
    axes[1].set_title(f"confidence ({len(conf)} photos)", fontsize=9)
    if has_truth:
        vals = [[float(r[f"iou_{p}"]) for r in report  # type: ignore[arg-type]
                 if r.get(f"iou_{p}") is not None] for p in policies]
        rng = np.random.default_rng(0)
        for x, (p, v) in enumerate(zip(policies, vals, strict=True)):
            axes[2].scatter(x + rng.uniform(-0.15, 0.15, len(v)), v, s=10, alpha=0.6,
                            color=POLICY_COLORS[p])
            if v:
                axes[2].plot([x - 0.25, x + 0.25], [np.mean(v)] * 2, color="black")
        axes[2].set_xticks(range(len(policies)), policies)
        axes[2].set_ylim(0, 1)
        axes[2].set_ylabel("object IoU vs truth")
        axes[2].set_title("each policy's pick (bar: mean)", fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def confidence_figure(report: Sequence[Mapping[str, object]], bad_iou: float = 0.8,
                      title: str | None = None) -> Figure:
    """Each written label's confidence against its object IoU with the truth (rows of
    :func:`seglib.labels.review.policy_report` with ``iou_label``), flagged labels in red, the line
    under which a label counts as bad dashed; without truth, the confidence histogram."""
    rows = [r for r in report if r.get("confidence") is not None]
    scored = [r for r in rows if r.get("iou_label") is not None]
    fig, ax = plt.subplots(figsize=(4.8, 3.6))
    if scored:
        for flagged, color, name in ((False, MASK_COLOR, "not flagged"),
                                     (True, (0.8, 0.1, 0.1), "flagged")):
            pts = [(float(r["confidence"]), float(r["iou_label"]))  # type: ignore[arg-type]
                   for r in scored if bool(r.get("flagged")) == flagged]
            if pts:
                x, y = zip(*pts, strict=True)
                ax.scatter(x, y, s=14, alpha=0.7, color=color, label=f"{name} ({len(pts)})")
        ax.axhline(bad_iou, color="grey", linestyle="--", linewidth=1)
        ax.text(0.01, bad_iou - 0.06, f"bad: IoU < {bad_iou}", fontsize=7, color="grey")
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("confidence of the written label")
        ax.set_ylabel("object IoU vs truth")
        ax.legend(fontsize=7, loc="lower right")
    else:
        ax.hist([float(r["confidence"]) for r in rows],  # type: ignore[arg-type]
                bins=np.linspace(0, 1, 11), color=MASK_COLOR)
        ax.set_xlabel("confidence of the written label")
        ax.set_ylabel("photos")
    ax.set_title(title or f"confidence of {len(rows)} labels", fontsize=9)
    fig.tight_layout()
    return fig


def prediction_grid(images: Sequence[np.ndarray], labels: Sequence[np.ndarray | None],
                    predictions: Mapping[str, Sequence[np.ndarray | None]],
                    names: Sequence[str] = (), title: str | None = None,
                    cell: float = 1.9) -> Figure:
    """Original | Label | one column per model, one row per photo; trimaps drawn in grey."""
    models = list(predictions)
    rows = []
    for i, img in enumerate(images):
        rows.append([img, labels[i]] + [predictions[m][i] for m in models])
    return image_grid(rows, ["Original", "Label"] + [f"Model {m}" for m in models], names,
                      title, cell)


def history_columns(rows: Sequence[Mapping[str, object]]) -> dict[str, list]:
    """Per-epoch history rows (as in ``history.csv``) as columns for :func:`loss_curves`;
    epochs without validation are left out of ``val_epoch`` / ``val_loss``."""
    cols: dict[str, list] = {"epoch": [], "train_loss": [], "val_epoch": [], "val_loss": []}
    for r in rows:
        cols["epoch"].append(int(r["epoch"]))  # type: ignore[call-overload]
        cols["train_loss"].append(float(r["train_loss"]))  # type: ignore[arg-type]
        v = r.get("val_loss")
        if v not in (None, ""):
            cols["val_epoch"].append(int(r["epoch"]))  # type: ignore[call-overload]
            cols["val_loss"].append(float(v))  # type: ignore[arg-type]
    return cols


def loss_curves(histories: Mapping[str, Mapping[str, Sequence[float]] | Sequence[Mapping]],
                title: str = "Loss per epoch") -> Figure:
    """Training (solid) and validation (dashed) loss per epoch, one colour per model; the
    repeats of a model (names ending ``_r2``, ``_r3``, ...) are drawn fainter in its colour.

    Each history maps column names to per-epoch values: ``epoch``, ``train_loss`` (or
    ``loss``), and ``val_loss`` with its own ``val_epoch`` when validation ran less often; a
    list of per-epoch rows (a training run's history) is accepted too.
    """
    histories = {k: history_columns(h) if not isinstance(h, Mapping) else h
                 for k, h in histories.items()}
    fig, ax = plt.subplots(figsize=(7, 4))
    bases: list[str] = []
    for name, h in histories.items():
        base = model_of_run(name)  # repeat k of a model ("711_r2") shares its colour
        first = base not in bases
        if first:
            bases.append(base)
        color, alpha = f"C{bases.index(base)}", 1.0 if first else 0.45
        tr = h.get("train_loss", h.get("loss"))
        va = h.get("val_loss")
        ep = h.get("epoch")
        if tr is not None and len(tr):
            x = ep if ep is not None and len(ep) == len(tr) else range(1, len(tr) + 1)
            ax.plot(list(x), list(tr), color=color, alpha=alpha,
                    label=f"{base} train" if first else None)
        if va is not None and len(va):
            vep = h.get("val_epoch", ep)
            x = vep if vep is not None and len(vep) == len(va) else range(1, len(va) + 1)
            ax.plot(list(x), list(va), color=color, alpha=alpha, linestyle="--",
                    label=f"{base} val" if first else None)
    starts = [float(h.get("train_loss", h.get("loss"))[0]) for h in histories.values()
              if len(h.get("train_loss", h.get("loss")) or [])]
    if starts and ax.lines:  # keep an early validation spike from flattening every curve
        top = max(line.get_ydata().max() for line in ax.lines)
        if top > 2 * max(starts):
            ax.set_ylim(0, 2 * max(starts))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return fig


def learning_curve(points: Sequence[tuple[str, int, float]],
                   title: str = "How many pictures do I need?",
                   ylabel: str = "validation mean IoU",
                   bands: Mapping[str, tuple[float | None, float | None]] | None = None
                   ) -> Figure:
    """Training photos (x, log scale) vs a score (y); each point is ``(name, n_photos, score)``.

    Shuffled subsets are joined by a line; names ending in ``B`` (trained without shuffling)
    are drawn as separate markers. ``bands`` maps a name to its interval ``(low, high)`` (e.g.
    95 % over repeated runs): a shaded band around the line, error bars on the markers.
    """
    bands = bands or {}

    def lo_hi(name: str, s: float) -> tuple[float, float]:
        lo, hi = bands.get(name, (None, None))
        return (s if lo is None else lo), (s if hi is None else hi)

    fig, ax = plt.subplots(figsize=(6.5, 4))
    main = sorted((n, s, name) for name, n, s in points if not str(name).endswith("B"))
    other = [(n, s, name) for name, n, s in points if str(name).endswith("B")]
    if main:
        ax.plot([p[0] for p in main], [p[1] for p in main], "o-", color="C0",
                label="shuffled subsets")
        if any(name in bands for _, _, name in main):
            lims = [lo_hi(name, s) for _, s, name in main]
            ax.fill_between([p[0] for p in main], [a for a, _ in lims], [b for _, b in lims],
                            color="C0", alpha=0.2, label="95 % interval")
    for n, s, name in other:
        lo, hi = lo_hi(name, s)
        ax.errorbar([n], [s], yerr=[[s - lo], [hi - s]], fmt="s", color="C3", markersize=8,
                    capsize=4, label=f"{name} (not shuffled)")
    for n, s, name in main + other:
        below = str(name).endswith("B")  # keep 711B's label clear of 711's
        ax.annotate(str(name), (n, s), textcoords="offset points",
                    xytext=(4, -12 if below else 6), fontsize=8)
    ns = sorted({int(p[1]) for p in points})
    if ns and min(ns) > 0:
        from matplotlib.ticker import NullFormatter, ScalarFormatter

        ax.set_xscale("log")
        ax.set_xticks(ns)
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("training photos")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def timing_bars(names: Sequence[str], seconds: Mapping[str, Sequence[float]],
                title: str = "Seconds per photo") -> Figure:
    """Stacked horizontal bars: one bar per photo, one segment per timed step."""
    fig, ax = plt.subplots(figsize=(7, 0.35 * max(3, len(names)) + 1))
    left = np.zeros(len(names))
    for i, (step, vals) in enumerate(seconds.items()):
        v = np.asarray(vals, dtype=float)
        ax.barh(range(len(names)), v, left=left, color=f"C{i}", label=step)
        left += v
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("seconds")
    ax.set_title(title)
    if len(seconds) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


FIGURES_RECORD = "figures.json"  # next to the figures: {file name: sha256} of each written


def save_figure(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` as a PNG atomically (temp file + rename) and return the path.

    ``figures.json`` in the same folder records the SHA-256 of each figure written there; a
    file at ``path`` that differs (a person's own picture under a figure's name, or one an
    older seglib wrote) is moved aside as ``NAME.edited-K.png`` first, with one line."""
    path = Path(path)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    record = path.parent / FIGURES_RECORD
    try:
        written = json.loads(record.read_text(encoding="utf-8"))
        written = written if isinstance(written, dict) else {}
    except (OSError, ValueError):
        written = {}
    if path.is_file() and written.get(path.name) != file_sha256(path):
        kept = move_aside(path)
        print(f"{path}: not the figure seglib wrote there (your own picture?); kept as "
              f"{kept.name}")
    write_bytes_atomic(path, buf.getvalue())
    written[path.name] = hashlib.sha256(buf.getvalue()).hexdigest()
    write_bytes_atomic(record, (json.dumps(written, indent=1, sort_keys=True) + "\n").encode())
    return path


class Table:
    """A small table that shows as HTML in a notebook and as aligned text elsewhere."""

    def __init__(self, rows: Sequence[Mapping[str, object]], columns: Sequence[str] | None = None,
                 floatfmt: str = ".3f") -> None:
        self.rows = [dict(r) for r in rows]
        self.columns = list(columns) if columns else list(
            dict.fromkeys(k for r in self.rows for k in r))
        self.floatfmt = floatfmt

    def _cell(self, v: object) -> str:
        if v is None:
            return ""
        if isinstance(v, float | np.floating):
            return "nan" if v != v else format(float(v), self.floatfmt)
        return str(v)

    def __repr__(self) -> str:
        cells = [[self._cell(r.get(c)) for c in self.columns] for r in self.rows]
        widths = [max([len(c)] + [len(row[i]) for row in cells])
                  for i, c in enumerate(self.columns)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(self.columns, widths, strict=True))]
        lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True))
                  for row in cells]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(self._cell(r.get(c)))}</td>"
                             for c in self.columns) + "</tr>" for r in self.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
