"""The notebooks' ipywidgets: the reviewer of notebook 01 (it records a person's choice of
candidate in ``overrides.csv`` through :mod:`seglib.labels.review`, and draws a new label from
clicks and a box through :mod:`seglib.labels.fixing`) and the photo picker of notebook 04 (it
redraws the side-by-side grid). They only show and record; the logic lives in the label and
training packages.

The fix panel's pointer events come from ``ipyevents`` (an ``Event`` watching the
``ipywidgets.Image`` of the photo). We chose it over ``ipycanvas`` and
``jupyter-bbox-widget``: it is maintained, ships a prebuilt JupyterLab 4 extension with the pip
package, adds no drawing model of its own (the picture stays a PNG that numpy and cv2 redraw,
so the mask redrawn after each click costs a few milliseconds), reports the press's position
in the picture's own pixels (``dataX``/``dataY``) with the Shift key, and without a frontend
(papermill, tests) it is an inert widget: nothing waits on it.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from seglib.backends import open_prompter
from seglib.backends.prompts import Prompter, Prompts
from seglib.core.errors import SeglibError
from seglib.core.images import is_image_name, read_image, resize_image
from seglib.course import compare
from seglib.course.figures import prediction_grid
from seglib.labels.fixing import FixResult, fix_label
from seglib.labels.labeling import LabelSummary, repick_folder
from seglib.labels.review import (
    confidence_text,
    load_candidates,
    review_order,
    set_override,
    short_captions,
)
from seglib.labels.store import OVERRIDES_CSV, LabelRecord, LabelStore, read_overrides
from seglib.masks.candidates import Candidates
from seglib.masks.draw import prompts_picture
from seglib.masks.policy import pick
from seglib.masks.trimap import OBJECT, load_trimap, resize_mask
from seglib.training.predict import TrainedModel

FIX_SIDE = 480  # the fix panel shows a photo with its long side this many pixels (240 px: 2x)
DRAG_PIXELS = 6  # a press and release farther apart than this (on screen) draw a box
LABEL_COLOR = (0.55, 0.55, 0.55)  # the written label, before any prompt
PROMPTED_COLOR = (0.12, 0.56, 1.0)  # the mask the prompts draw


def fix_scale(shape: Sequence[int], side: int = FIX_SIDE) -> float:
    """How many times the fix panel enlarges a photo of ``shape`` (h, w, ...)."""
    return side / max(int(shape[0]), int(shape[1]), 1)


def event_to_photo(event: Mapping[str, Any], scale: float,
                   shape: Sequence[int]) -> tuple[float, float]:
    """The photo pixel (x, y) under a pointer event on the fix panel's picture.

    ipyevents gives ``dataX``/``dataY`` on an Image: the position in the PNG's own pixels
    (whatever size the browser shows it at); without them ``relativeX``/``relativeY`` (or
    ``offsetX``/``offsetY``), the position on the element, which the panel shows at the PNG's
    size. The PNG is the photo enlarged ``scale`` times; the point is kept inside the photo."""
    for kx, ky in (("dataX", "dataY"), ("relativeX", "relativeY"), ("offsetX", "offsetY")):
        if event.get(kx) is not None and event.get(ky) is not None:
            dx, dy = float(event[kx]), float(event[ky])
            break
    else:
        raise SeglibError(f"a pointer event without a position: {sorted(event)}")
    h, w = int(shape[0]), int(shape[1])
    x = min(max((dx + 0.5) / scale - 0.5, 0.0), w - 1.0)
    y = min(max((dy + 0.5) / scale - 0.5, 0.0), h - 1.0)
    return round(x, 2), round(y, 2)


@dataclass
class PhotoState:
    stem: str
    photo: np.ndarray
    candidates: Candidates
    row: LabelRecord
    override: str


@dataclass
class FixView:
    """What the fix panel shows: the picture, its scale over the photo, the photo's (h, w),
    and a note when the prompts draw no mask yet."""

    picture: np.ndarray
    scale: float
    shape: tuple[int, int]
    note: str = ""


class Reviewer:
    """Step through a labeled folder, see candidates, override picks, re-pick, and fix a
    wrong label with prompts: points on the object, points off it, a box.

    The methods work without a display (``choose``, ``repick``; ``add_point``, ``add_box``,
    ``undo``, ``clear``, ``preview``, ``keep`` on the photo at ``index``), and :meth:`widget`
    builds the ipywidgets interface on top of them. The prompter (``backend``, ``checkpoint``:
    :func:`seglib.backends.open_prompter`) is opened at the first prompt and kept; each photo is
    given to it once, so each click costs only the mask's redraw.
    """

    def __init__(self, labels_dir: str | Path, images_dir: str | Path,
                 stems: list[str] | None = None, policy: str = "foreground",
                 flagged_first: bool = True, backend: str = "opencv",
                 checkpoint: str | Path | None = None) -> None:
        self.labels_dir = Path(labels_dir)
        self.images_dir = Path(images_dir)
        self.policy = policy
        self.backend, self.checkpoint = backend, checkpoint
        self._prompter: Prompter | None = None  # opened at the first prompt, kept
        self._prompter_stem = ""  # the photo the prompter holds (SAM: its embedding)
        self._history: list[Prompts] = [Prompts()]  # the current photo's prompts, undoable
        self._history_stem = ""
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
                          self._overrides().get(stem, ""))

    def _overrides(self) -> dict[str, str]:
        """``overrides.csv`` (``labels.csv`` is not read again: ``self.rows`` has it)."""
        return read_overrides(self.labels_dir, self.rows)

    def choose(self, stem: str, choice: str | int | None) -> dict[str, str]:
        """Override the pick of ``stem`` (``None`` or "" goes back to the policy's pick)."""
        return set_override(self.labels_dir, stem, choice)

    def repick(self) -> LabelSummary:
        """Rewrite trimaps and labels.csv from the cached candidates and overrides.csv
        (refined, imported and hand-edited labels are kept, as ``pick`` keeps them)."""
        summary = repick_folder(self.labels_dir, self.policy)
        self.rows.update({r.stem: r for r in LabelStore(self.labels_dir).ok_records()})
        return summary

    # -- fixing a label with prompts (no widgets) ----------------------------------------
    @property
    def stem(self) -> str:
        """The photo the reviewer shows."""
        return self.stems[self.index]

    @property
    def prompts(self) -> Prompts:
        """The prompts on the photo shown (none after moving to another photo)."""
        if self._history_stem != self.stem:
            self._history, self._history_stem = [Prompts()], self.stem
        return self._history[-1]

    def _push(self, prompts: Prompts) -> Prompts:
        self.prompts  # noqa: B018 (starts the photo's history when the photo changed)
        self._history.append(prompts)
        return prompts

    def add_point(self, x: float, y: float, positive: bool = True) -> Prompts:
        """Add a point (photo pixels) on the object (``positive``) or off it."""
        p = self.prompts
        xy = ((float(x), float(y)),)
        if positive:
            return self._push(replace(p, positive=p.positive + xy))
        return self._push(replace(p, negative=p.negative + xy))

    def add_box(self, x0: float, y0: float, x1: float, y1: float) -> Prompts:
        """Set the box around the object (photo pixels, any two opposite corners); a new box
        replaces the one before."""
        box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        return self._push(replace(self.prompts, box=tuple(float(v) for v in box)))

    def undo(self) -> Prompts:
        """Take back the last change (a point, a box, or a clear)."""
        self.prompts  # noqa: B018
        if len(self._history) > 1:
            self._history.pop()
        return self.prompts

    def clear(self) -> Prompts:
        """Remove every prompt (undo brings them back)."""
        return self._push(Prompts()) if not self.prompts.is_empty() else self.prompts

    def prompter(self, stem: str | None = None) -> Prompter:
        """The prompter, opened once, holding the photo ``stem`` (default: the one shown)."""
        stem = stem or self.stem
        if self._prompter is None:
            self._prompter = open_prompter(self.backend, self.checkpoint)
        if self._prompter_stem != stem:
            self._prompter.set_photo(self.state(stem).photo)
            self._prompter_stem = stem
        return self._prompter

    def preview(self) -> np.ndarray | None:
        """The mask the prompts draw on the photo shown (bool, photo size), nothing written;
        ``None`` without prompts."""
        p = self.prompts
        return None if p.is_empty() else np.asarray(self.prompter().mask(p), dtype=bool)

    def keep(self) -> FixResult:
        """Write the prompted mask as the label of the photo shown (source ``prompted``, its
        prompts in prompts.csv), then show the next photo in the reviewer's order."""
        stem, p = self.stem, self.prompts
        if p.is_empty():
            raise SeglibError(f"{stem}: no prompt yet: click on the object or drag a box")
        result = fix_label(self.labels_dir, stem, points=p.positive, negative=p.negative,
                           box=p.box, images_dir=self.images_dir,
                           prompter=self.prompter(stem), backend=self.backend,
                           checkpoint=self.checkpoint)
        self.rows.update({r.stem: r for r in LabelStore(self.labels_dir).ok_records()})
        self.index = (self.index + 1) % len(self.stems)
        return result

    def label_mask(self, stem: str | None = None) -> np.ndarray:
        """The object of the written label (bool, at the size of the photo shown)."""
        st = self.state(stem)
        obj = load_trimap(self.labels_dir / f"{st.stem}.png") == OBJECT
        return obj if obj.shape == st.photo.shape[:2] else resize_mask(obj, st.photo.shape[:2])

    def fix_picture(self) -> FixView:
        """The fix panel's picture of the photo shown: the prompted mask with the prompts, or
        the written label (grey) before any prompt, or while the prompts draw no mask (only
        negative points: ``note`` says why)."""
        st, p = self.state(), self.prompts
        try:
            mask, note = self.preview(), ""
        except SeglibError as exc:
            mask, note = None, str(exc)
        color = PROMPTED_COLOR if mask is not None else LABEL_COLOR
        if mask is None:
            mask = self.label_mask(st.stem)
        scale = fix_scale(st.photo.shape)
        picture = prompts_picture(st.photo, mask, scale, p.positive, p.negative, p.box,
                                  color=color)
        return FixView(picture, scale, st.photo.shape[:2], note)

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
        fix = self._fix_panel()
        self._render()
        return w.VBox([
            w.HBox([ui["prev"], ui["next"], ui["title"]]),
            ui["out"],
            w.HBox([w.Label("override:"), ui["choice"]]),
            w.HBox([ui["custom"], ui["set"], ui["repick"]]),
            fix,
            ui["status"],
        ])

    def _fix_panel(self):
        """The fix panel: the photo with the prompted mask; pointer events from ipyevents."""
        import ipywidgets as w
        from ipyevents import Event

        ui = self._ui
        ui["fix_image"] = w.Image(format="png")
        ui["fix_image"].add_class("seglib-fix-photo")
        ui["mode"] = w.ToggleButtons(options=[("click: object", "positive"),
                                              ("click: not object", "negative")],
                                     value="positive", style={"button_width": "140px"})
        ui["undo"] = w.Button(description="Undo", layout=w.Layout(width="80px"))
        ui["clear"] = w.Button(description="Clear", layout=w.Layout(width="80px"))
        ui["keep"] = w.Button(description="Keep", button_style="success",
                              layout=w.Layout(width="80px"))
        ui["undo"].on_click(lambda _: self._fix_changed(self.undo))
        ui["clear"].on_click(lambda _: self._fix_changed(self.clear))
        ui["keep"].on_click(lambda _: self._keep_clicked())
        ui["events"] = Event(source=ui["fix_image"], watched_events=["mousedown", "mouseup"],
                             prevent_default_action=True)
        ui["events"].on_dom_event(self._pointer)
        help_ = w.HTML("<b>Fix a wrong label:</b> click on the object, Shift-click (or "
                       "<i>not object</i>) on what is not, drag a box around it; "
                       "<i>Keep</i> writes the mask (source <code>prompted</code>).")
        ui["fix_note"] = w.HTML()
        panel = w.VBox([help_, w.HBox([ui["fix_image"], w.VBox(
            [ui["mode"], w.HBox([ui["undo"], ui["clear"], ui["keep"]]), ui["fix_note"]])])])
        panel.add_class("seglib-fix-panel")
        return panel

    def _pointer(self, event: Mapping[str, Any]) -> None:
        """A press on the photo starts a prompt, its release ends it: a click is a point (on
        the object, off it with Shift or in *not object* mode), a drag a box."""
        ui = self._ui
        if "fix_shape" not in ui:
            return
        scale, shape = ui["fix_scale"], ui["fix_shape"]
        try:
            xy = event_to_photo(event, scale, shape)
        except SeglibError:
            return
        if event.get("type") == "mousedown":
            ui["press"] = (self.stem, xy)
            return
        press = ui.pop("press", None)
        if event.get("type") != "mouseup" or press is None or press[0] != self.stem:
            return
        (x0, y0), (x1, y1) = press[1], xy
        if max(abs(x1 - x0), abs(y1 - y0)) * scale > DRAG_PIXELS:
            self._fix_changed(lambda: self.add_box(x0, y0, x1, y1))
        else:
            positive = (ui["mode"].value == "positive") != bool(event.get("shiftKey"))
            self._fix_changed(lambda: self.add_point(x1, y1, positive=positive))

    def _fix_changed(self, change) -> None:
        """Apply a change of prompts and redraw the fix panel at once."""
        change()
        self._draw_fix()

    def _draw_fix(self) -> None:
        import cv2

        ui = self._ui
        try:
            view = self.fix_picture()
        except SeglibError as exc:
            ui["status"].value = f"<span style='color:#c00'>{html.escape(str(exc))}</span>"
            return
        _, png = cv2.imencode(".png", np.ascontiguousarray(view.picture[..., ::-1]))
        ui["fix_scale"], ui["fix_shape"] = view.scale, view.shape
        ui["fix_image"].value = png.tobytes()
        ui["fix_image"].layout.width = f"{view.picture.shape[1]}px"
        ui["fix_image"].layout.height = f"{view.picture.shape[0]}px"
        ui["keep"].disabled = self.prompts.is_empty() or bool(view.note)
        ui["undo"].disabled = len(self._history) < 2
        ui["fix_note"].value = (f"<span style='color:#c00'>{html.escape(view.note)}</span>"
                                if view.note else self._prompts_text())

    def _prompts_text(self) -> str:
        p = self.prompts
        if p.is_empty():
            return "grey: the written label"
        return (f"blue: the mask drawn from {len(p.positive)} object point(s), "
                f"{len(p.negative)} not-object point(s)" + (", a box" if p.box else ""))

    def _keep_clicked(self) -> None:
        stem = self.stem
        try:
            result = self.keep()
            msg = f"{stem}: {html.escape(result.describe())}"
        except SeglibError as exc:
            msg = f"<span style='color:#c00'>{html.escape(str(exc))}</span>"
        self._ui["status"].value = msg
        self._render()

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
        if "fix_image" in ui:
            self._draw_fix()

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
