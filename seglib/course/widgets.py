"""The notebooks' ipywidgets: the reviewer of notebook 01 (it records a person's choice of
candidate in ``overrides.csv`` through :mod:`seglib.labels.review`) and the photo picker of
notebook 04 (it redraws the side-by-side grid). They only show and record; the logic lives
in the label and training packages."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seglib.core.errors import SeglibError
from seglib.core.images import is_image_name, read_image, resize_image
from seglib.course import compare
from seglib.course.figures import prediction_grid
from seglib.labels.labeling import LabelSummary, repick_folder
from seglib.labels.review import (
    confidence_text,
    load_candidates,
    review_order,
    set_override,
    short_captions,
)
from seglib.labels.store import OVERRIDES_CSV, LabelRecord, LabelStore
from seglib.masks.candidates import Candidates
from seglib.masks.policy import pick
from seglib.training.predict import TrainedModel


@dataclass
class PhotoState:
    stem: str
    photo: np.ndarray
    candidates: Candidates
    row: LabelRecord
    override: str


class Reviewer:
    """Step through a labeled folder, see candidates, override picks, re-pick.

    The methods work without a display (``choose``, ``repick``), and :meth:`widget` builds the
    ipywidgets interface on top of them.
    """

    def __init__(self, labels_dir: str | Path, images_dir: str | Path,
                 stems: list[str] | None = None, policy: str = "foreground",
                 flagged_first: bool = True) -> None:
        self.labels_dir = Path(labels_dir)
        self.images_dir = Path(images_dir)
        self.policy = policy
        rows = {r.stem: r for r in LabelStore(self.labels_dir).ok_records()}
        if not rows:
            raise SeglibError(f"{self.labels_dir}: no labeled photos (labels.csv); label first")
        if stems is not None:
            missing = [s for s in stems if s not in rows]
            if missing:
                raise SeglibError(f"{self.labels_dir}: not labeled: {', '.join(missing[:3])}")
            order = list(stems)
        else:
            order = review_order(rows.values()) if flagged_first else sorted(rows)
        self.rows = rows
        self.stems = order
        self.index = 0
        self._ui: dict[str, Any] = {}

    # -- logic (no widgets) --------------------------------------------------------------
    def photo_path(self, stem: str) -> Path:
        name = self.rows[stem].file
        p = self.images_dir / name
        if name and p.is_file():
            return p
        for q in sorted(self.images_dir.glob(f"{stem}.*")):
            if is_image_name(q):
                return q
        raise SeglibError(f"{self.images_dir}: photo of {stem!r} not found")

    def state(self, stem: str | None = None) -> PhotoState:
        stem = stem or self.stems[self.index]
        cands = load_candidates(self.labels_dir, stem)
        photo = read_image(self.photo_path(stem))
        photo = resize_image(photo, cands.shape)
        return PhotoState(stem, photo, cands, self.rows[stem],
                          LabelStore(self.labels_dir).overrides().get(stem, ""))

    def choose(self, stem: str, choice: str | int | None) -> dict[str, str]:
        """Override the pick of ``stem`` (``None`` or "" goes back to the policy's pick)."""
        return set_override(self.labels_dir, stem, choice)

    def repick(self) -> LabelSummary:
        """Rewrite trimaps and labels.csv from the cached candidates and overrides.csv
        (refined, imported and hand-edited labels are kept, as ``pick`` keeps them)."""
        summary = repick_folder(self.labels_dir, self.policy)
        self.rows.update({r.stem: r for r in LabelStore(self.labels_dir).ok_records()})
        return summary

    def figure(self, stem: str | None = None):
        """The candidate grid of one photo, the policies' picks and any override framed."""
        from seglib.course import figures as viz

        st = self.state(stem)
        chosen: dict[str, str] = {p: pick(st.candidates, p).chosen
                                  for p in ("foreground", "seed")}
        if st.override:
            chosen = {"override": st.override, **chosen}
        flag = f" · FLAGGED: {st.row.doubt}" if st.row.flagged else ""
        title = (f"{st.stem}: {st.row.source} {st.row.chosen} (confidence "
                 f"{confidence_text(st.row.confidence)}){flag}"
                 + (f" · override {st.override}" if st.override else ""))
        return viz.candidate_grid(st.photo, st.candidates.masks, short_captions(st.candidates),
                                  chosen, title=title)

    # -- widget --------------------------------------------------------------------------
    def widget(self):
        """The interactive reviewer (ipywidgets). Display it in a notebook cell."""
        import ipywidgets as w

        ui = self._ui
        ui["title"] = w.HTML()
        ui["out"] = w.Output()
        ui["choice"] = w.ToggleButtons(options=[("policy", "")], value="",
                                       style={"button_width": "64px"})
        ui["custom"] = w.Text(placeholder="e.g. ~0 or 2+5", layout=w.Layout(width="140px"))
        ui["set"] = w.Button(description="set", layout=w.Layout(width="60px"))
        ui["prev"] = w.Button(description="◀ previous")
        ui["next"] = w.Button(description="next ▶")
        ui["repick"] = w.Button(description="re-pick folder", button_style="primary")
        ui["status"] = w.HTML()
        ui["prev"].on_click(lambda _: self._go(-1))
        ui["next"].on_click(lambda _: self._go(+1))
        ui["set"].on_click(lambda _: self._apply(ui["custom"].value))
        ui["repick"].on_click(lambda _: self._repick_clicked())
        ui["choice"].observe(self._choice_changed, names="value")
        self._render()
        return w.VBox([
            w.HBox([ui["prev"], ui["next"], ui["title"]]),
            ui["out"],
            w.HBox([w.Label("override:"), ui["choice"]]),
            w.HBox([ui["custom"], ui["set"], ui["repick"]]),
            ui["status"],
        ])

    def _go(self, step: int) -> None:
        self.index = (self.index + step) % len(self.stems)
        self._render()

    def _render(self) -> None:
        import matplotlib.pyplot as plt
        from IPython.display import display

        ui = self._ui
        st = self.state()
        ui["title"].value = (f"<b>{st.stem}</b> ({self.index + 1}/{len(self.stems)})"
                             + (" · <span style='color:#c00'>flagged: "
                                f"{html.escape(st.row.doubt)}</span>" if st.row.flagged else ""))
        ui["busy"] = True
        ui["choice"].options = [("policy", "")] + [(f"#{i}", str(i))
                                                   for i in range(len(st.candidates))]
        ui["choice"].value = st.override if st.override.isdigit() else ""
        ui["busy"] = False
        with ui["out"]:
            ui["out"].clear_output(wait=True)
            fig = self.figure(st.stem)
            display(fig)
            plt.close(fig)

    def _choice_changed(self, change: dict) -> None:
        if not self._ui.get("busy"):
            self._apply(change["new"])

    def _apply(self, choice: str) -> None:
        stem = self.stems[self.index]
        try:
            self.choose(stem, choice)
            msg = (f"{stem}: override {choice} written to {OVERRIDES_CSV}" if choice
                   else f"{stem}: back to the policy's pick")
        except SeglibError as exc:
            msg = f"<span style='color:#c00'>{exc}</span>"
        self._ui["status"].value = msg + " · press <i>re-pick folder</i> to rewrite trimaps"
        self._render()

    def _repick_clicked(self) -> None:
        summary = self.repick()
        self._ui["status"].value = summary.describe()
        self._render()


def photo_picker(runs: Mapping[str, TrainedModel], photos: Sequence[Path],
                 chosen: Sequence[Path], labels_dir: str | Path | None,
                 max_photos: int = 8) -> Any:
    """A widget for notebook 04: pick photos (at most ``max_photos`` drawn) and see the
    side-by-side grid of :func:`seglib.course.compare.predictions` for them. Display it in a
    notebook cell."""
    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    by_stem = {p.stem: p for p in photos}
    picker = w.SelectMultiple(options=list(by_stem), value=[p.stem for p in chosen], rows=8,
                              description="photos")
    grid_out = w.Output()

    def redraw(change: Any = None) -> None:
        sel = [by_stem[s] for s in picker.value][:max_photos]
        with grid_out:
            grid_out.clear_output(wait=True)
            if sel:
                fig = prediction_grid(*compare.predictions(runs, sel, labels_dir),
                                      [p.stem for p in sel])
                display(fig)
                plt.close(fig)

    picker.observe(redraw, names="value")
    redraw()
    return w.HBox([picker, grid_out])
