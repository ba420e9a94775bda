"""The notebooks' widgets in a real JupyterLab, clicked in a real browser.

The in-process tests drive the widgets' callbacks directly; these check what a student sees:
JupyterLab runs the notebook, the widget renders and answers clicks. Notebook 01: clicking a
candidate writes ``overrides.csv`` and *re-pick folder* rewrites the labels; dragging a box and
clicking on the fix panel's photo redraws the mask and *Keep* writes a ``prompted`` label
(with ``SEGLIB_README_SHOTS=docs/images`` it also saves the README's picture of the panel,
``fix_loop.png``). Notebook 04:
picking other photos redraws the side-by-side grid. They need Chromium (Debian package
``chromium``) and the ``playwright`` package (dev extra); without them they are skipped.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from seglib.core import images as io
from seglib.course import runner as course

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
TOKEN = "seglib-browser-test"

pytestmark = pytest.mark.slow


def _browser() -> str | None:
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            pytest.fail(f"jupyter lab exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"jupyter lab did not answer at {url} within {timeout:.0f} s")


@pytest.fixture()
def lab(tmp_path: Path):
    """A JupyterLab server on a free port, rooted in ``tmp_path``, with its own settings."""
    if _browser() is None:
        pytest.skip("no Chromium on this machine (Debian: apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright not installed (dev extra)")
    pytest.importorskip("jupyterlab", reason="jupyterlab not installed")
    port = _free_port()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
           "OMP_NUM_THREADS": "1"}
    news = tmp_path / "settings" / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    root = tmp_path / "lab"
    root.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
         "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}",
         f"--ServerApp.root_dir={root}", "--allow-root"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_http(f"{base}/api/status?token={TOKEN}", proc)
        yield base, root
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def _run_all(page) -> None:
    """Run → Run All Cells, again if the first click came before the notebook was ready."""
    for _ in range(3):
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_text("Run All Cells", exact=True).click()
        try:  # the first code cell's prompt turns to [*] or [1]
            page.locator(".jp-InputPrompt", has_text="[*]").or_(
                page.locator(".jp-InputPrompt", has_text="[1]")).first.wait_for(timeout=20_000)
            return
        except Exception:
            page.keyboard.press("Escape")
    pytest.fail("JupyterLab did not start running the notebook after three tries")


@contextlib.contextmanager
def _notebook_page(base: str, nb: Path):
    """A Chromium page with notebook ``nb`` (under the lab's root) open and running all cells."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_browser(), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{base}/lab/tree/{nb.name}?token={TOKEN}")
            page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=120_000)
            _run_all(page)
            yield page
        finally:
            browser.close()


def _wait_widget(page, locator, shot: Path, timeout: float = 240_000) -> None:
    """Wait for ``locator``; on a timeout save a screenshot and report the cells' errors."""
    try:
        locator.wait_for(timeout=timeout)
    except Exception:
        page.screenshot(path=str(shot), full_page=True)
        errors = page.locator("[data-mime-type='application/vnd.jupyter.stderr'], "
                              ".jp-RenderedText[data-mime-type*='error']")
        pytest.fail(f"no widget after {timeout / 1000:.0f} s (screenshot {shot}); "
                    f"cell errors: {errors.all_inner_texts()[-3:]}")


def _rows(labels: Path) -> dict[str, dict[str, str]]:
    return _rows_of(labels / "labels.csv")


def _rows_of(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return {r["stem"]: r for r in csv.DictReader(f)}


def test_reviewer_click_writes_an_override_and_repicks(lab, tmp_path: Path) -> None:
    import papermill as pm

    base, root = lab
    photos = root / "photos"
    photos.mkdir()
    for p in io.list_images(SAMPLE / "images")[:6]:
        shutil.copyfile(p, photos / p.name)
    out = root / "out"
    nb = root / "01.ipynb"
    pm.execute_notebook(str(course.NOTEBOOKS_DIR / "01_sam_masks.ipynb"), str(nb),
                        prepare_only=True, progress_bar=False,
                        parameters={"images_dir": str(photos), "out_dir": str(out),
                                    "truth_dir": str(SAMPLE / "trimaps"), "backend": "opencv",
                                    "show_photos": 1, "timing_photos": 1, "review_photos": 2,
                                    "interactive": True, "refine": False})
    labels = out / "labels"
    with _notebook_page(base, nb) as page:
        repick = page.locator("button", has_text="re-pick folder")
        _wait_widget(page, repick, tmp_path / "reviewer.png")
        title = page.locator(".widget-html-content b").first
        first = title.inner_text()
        assert (labels / f"{first}.png").is_file()  # the widget shows a labeled photo
        page.locator("button", has_text="next ▶").click()
        page.wait_for_function("t => document.querySelector('.widget-html-content b')"
                               ".innerText !== t", arg=first, timeout=30_000)
        stem = title.inner_text()
        assert stem != first and (labels / f"{stem}.png").is_file()
        page.locator(".widget-toggle-buttons").get_by_role("button", name="#1",
                                                            exact=True).click()  # not #10
        page.get_by_text(f"{stem}: override 1 written").wait_for(timeout=30_000)
        assert (labels / "overrides.csv").read_text().splitlines()[1:] == [f"{stem},1"]
        repick.click()
        page.get_by_text("photos re-picked from cached candidates").wait_for(timeout=60_000)
    rows = _rows(labels)
    assert len(rows) == 6 and rows[stem]["chosen"] == "1" and rows[stem]["flagged"] == "0"


def _prepare_01(root: Path, out: Path) -> Path:
    """Notebook 01 on six sample photos (opencv backend, reviewer on), ready to run in the lab."""
    import papermill as pm

    photos = root / "photos"
    photos.mkdir()
    for p in io.list_images(SAMPLE / "images")[:6]:
        shutil.copyfile(p, photos / p.name)
    nb = root / "01.ipynb"
    pm.execute_notebook(str(course.NOTEBOOKS_DIR / "01_sam_masks.ipynb"), str(nb),
                        prepare_only=True, progress_bar=False,
                        parameters={"images_dir": str(photos), "out_dir": str(out),
                                    "truth_dir": str(SAMPLE / "trimaps"), "backend": "opencv",
                                    "show_photos": 1, "timing_photos": 1, "review_photos": 2,
                                    "interactive": True, "refine": False})
    return nb


def _object_box(stem: str, margin: int = 10) -> tuple[int, int, int, int, float, float]:
    """The true object's box (x0, y0, x1, y1) grown by ``margin`` and a point inside it."""
    import numpy as np

    from seglib.masks.trimap import OBJECT, load_trimap

    obj = load_trimap(SAMPLE / "trimaps" / f"{stem}.png") == OBJECT
    ys, xs = np.nonzero(obj)
    h, w = obj.shape
    box = (max(int(xs.min()) - margin, 0), max(int(ys.min()) - margin, 0),
           min(int(xs.max()) + margin, w - 1), min(int(ys.max()) + margin, h - 1))
    inside = np.argmin((xs - xs.mean()) ** 2 + (ys - ys.mean()) ** 2)  # nearest the centre
    return (*box, float(xs[inside]), float(ys[inside]))


def test_reviewer_fix_panel_box_and_click_keep_a_prompted_label(lab, tmp_path: Path) -> None:
    base, root = lab
    out = root / "out"
    nb = _prepare_01(root, out)
    labels = out / "labels"
    with _notebook_page(base, nb) as page:
        keep = page.locator(".seglib-fix-panel button", has_text="Keep")
        _wait_widget(page, keep, tmp_path / "fix.png")
        photo = page.locator("img.seglib-fix-photo")
        page.wait_for_function("() => { const i = document.querySelector('img.seglib-fix-photo');"
                               " return i && i.naturalWidth > 0; }", timeout=30_000)
        # the last cell's output: the notebook stops scrolling, then the photo is brought in view
        _wait_widget(page, page.get_by_text("corrections come back with"),
                     tmp_path / "fix_end.png", timeout=120_000)
        page.wait_for_function("() => { const b = document.querySelector("
                               "'.widget-html-content b'); return b && b.innerText.trim(); }",
                               timeout=30_000)  # the title's stem is drawn after the panel
        stem = page.locator(".widget-html-content b").first.inner_text()
        size = io.read_image(SAMPLE / "images" / f"{stem}.jpg").shape[:2]
        page.locator(".seglib-fix-panel").scroll_into_view_if_needed()
        r = photo.bounding_box()
        sx, sy = r["width"] / size[1], r["height"] / size[0]

        def at(x: float, y: float) -> tuple[float, float]:  # photo pixel -> page
            return r["x"] + (x + 0.5) * sx, r["y"] + (y + 0.5) * sy

        x0, y0, x1, y1, cx, cy = _object_box(stem)
        note = page.locator(".seglib-fix-panel .widget-html-content")
        page.mouse.move(*at(x0, y0))
        page.mouse.down()
        page.mouse.move(*at(x1, y1), steps=8)
        page.mouse.up()
        _wait_widget(page, note.get_by_text("0 object point(s), 0 not-object point(s), a box"),
                     tmp_path / "fix_prompts.png", timeout=30_000)
        page.mouse.click(*at(cx, cy))
        _wait_widget(page, note.get_by_text("1 object point(s), 0 not-object point(s), a box"),
                     tmp_path / "fix_prompts.png", timeout=30_000)
        page.keyboard.down("Shift")
        page.mouse.click(*at(x0 + 3, y1 - 3))  # Shift: a corner of the box is not the object
        page.keyboard.up("Shift")
        _wait_widget(page, note.get_by_text("1 object point(s), 1 not-object point(s), a box"),
                     tmp_path / "fix_prompts.png", timeout=30_000)
        shots = os.environ.get("SEGLIB_README_SHOTS")
        panel = page.locator(".seglib-fix-panel")
        panel.screenshot(path=str(Path(shots) / "fix_loop.png" if shots
                                  else tmp_path / "fix_loop.png"))
        assert not (labels / "prompts.csv").exists()  # nothing written before Keep
        keep.click()
        page.get_by_text(f"{stem}: source prompted").wait_for(timeout=60_000)
        assert page.locator(".widget-html-content b").first.inner_text() != stem  # next photo
    row = _rows(labels)[stem]
    assert row["source"] == "prompted" and row["flagged"] == "0"
    prompts = json.loads(_rows_of(labels / "prompts.csv")[stem]["prompts"])
    assert prompts["box"] == pytest.approx([x0, y0, x1, y1], abs=1)  # the photo's pixels
    assert prompts["positive"] == [pytest.approx([cx, cy], abs=1)]
    assert prompts["negative"] == [pytest.approx([x0 + 3, y1 - 3], abs=1)]


def test_photo_picker_redraws_the_grid(lab, smoke_run, tmp_path: Path) -> None:
    import papermill as pm

    base, root = lab
    nb = root / "04.ipynb"
    params = course.build_parameters("smoke", out=smoke_run.out)
    declared = course.declared_parameters(course.NOTEBOOKS_DIR / "04_compare.ipynb")
    pm.execute_notebook(str(course.NOTEBOOKS_DIR / "04_compare.ipynb"), str(nb),
                        prepare_only=True, progress_bar=False,
                        parameters={**{k: v for k, v in params.items() if k in declared},
                                    "interactive": True})
    with _notebook_page(base, nb) as page:
        picker = page.locator(".widget-select-multiple select")
        _wait_widget(page, picker, tmp_path / "picker.png")
        grid = page.locator(".widget-hbox:has(.widget-select-multiple) .widget-output img")
        grid.first.wait_for(timeout=60_000)
        before = grid.first.get_attribute("src")
        options = picker.evaluate("s => Array.from(s.options).map(o => o.label)")
        assert len(options) >= 3, options
        picker.select_option(label=options[-3:])
        page.wait_for_function(
            "b => { const i = document.querySelector("
            "'.widget-hbox:has(.widget-select-multiple) .widget-output img');"
            " return i && i.getAttribute('src') !== b; }", arg=before, timeout=60_000)
        assert grid.count() == 1  # one grid, redrawn in place
