"""The course runner: presets and a headless papermill run of the four course notebooks.

The notebooks ship inside the package, in ``seglib/course/notebooks/`` (in a checkout that
folder is a link to the repository's ``notebooks/``; a wheel holds copies), so an installed
seglib runs the course from any folder. Without the checkout's ``data/sample`` the embedded
sample is written into ``OUT/sample``.

``run_course("demo", out="runs/demo")`` executes the four notebooks in order in a kernel of
the current interpreter, passing each the preset's parameters it declares, and writes into
the output folder: the executed notebooks, an HTML export of each, and (from the notebooks)
``labels/``, ``models/`` and ``reports/*.png``. A failing notebook stops the run with one line
naming the notebook and the cell. Rerunning resumes: labels and trained models already in the
output folder are reused by the notebooks.

``OUT/course.json`` records what the folder was made from (the photo folder, ``{stem:
sha256}`` of its photos as of the last run that finished, the preset). A rerun after photos
were added, removed or replaced says so in one line and goes on (every rerun says it until
a run finishes: a failed or killed run has not brought the labels and models up to date):
notebook 01 labels the new and changed photos and keeps every other label and
``overrides.csv``, notebook 03 trains again the models whose photos or labels changed. A
rerun with another preset, or with photos none of which is one of the folder's, stops before
notebook 01 with one line; ``fresh=True`` (``--fresh``) deletes the
folder's labels, models, reports and executed notebooks first and says so.

``course.json`` also records the SHA-256 of each executed notebook the runner wrote
(``"notebooks": {name: sha256}``). A rerun never overwrites an executed notebook that differs
from what it wrote (a student's notes, or one written by an older seglib): it is moved aside
as ``NAME.edited-N.ipynb`` first, with one line saying so, and the notebook is run again.
Before a notebook starts, ``course.json`` names it (``"running"``), and the name is cleared
when its run ends: a notebook a killed run left half-written is the runner's own and is
replaced, as is one a failed run wrote (its hash is recorded).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seglib.core.errors import SeglibError
from seglib.core.files import file_sha256, move_aside, write_bytes_atomic, write_bytes_new
from seglib.core.folders import (
    COURSE_FILE,
    describe_changes,
    folder_kind,
    hash_files,
    read_json,
    refuse_output,
    write_json,
)

REPO = Path(__file__).resolve().parents[2]  # the folder seglib is imported from
IN_CHECKOUT = (REPO / "pyproject.toml").is_file()  # a source checkout, not site-packages


def _notebooks_dir() -> Path:
    """The package's notebooks (``seglib/course/notebooks``); in a checkout where that link
    did not survive (git without symbolic links), the repository's ``notebooks/``."""
    inside = Path(__file__).resolve().parent / "notebooks"
    if inside.is_dir() or not IN_CHECKOUT:
        return inside
    return REPO / "notebooks"


NOTEBOOKS_DIR = _notebooks_dir()
SAMPLE_DIR = REPO / "data" / "sample"  # a checkout's sample; an installed seglib writes one
WORK_DIR = REPO if IN_CHECKOUT else Path.cwd()  # default runs/PRESET and ../shared live here
SHARED_SHOES = WORK_DIR.parent / "shared" / "shoes" / "images"
NOTEBOOKS = ("01_sam_masks", "02_trimaps", "03_train_10_161_207_711", "04_compare")
KERNEL_NAME = "python3"
COURSE_SCHEMA = 1
OUTPUT_DIRS = ("labels", "models", "reports")  # what --fresh deletes, with the notebooks


@dataclass(frozen=True)
class CoursePreset:
    """A named set of notebook parameters and the photos it runs on by default."""

    name: str
    description: str
    images: str  # "sample" (the embedded sample), a folder, or "" (must be given)
    params: dict[str, Any] = field(default_factory=dict)


PRESETS: dict[str, CoursePreset] = {
    "smoke": CoursePreset(
        "smoke", "embedded sample, tiny sizes, 1 epoch: checks that everything runs (~1 min)",
        "sample",
        {"preset": "smoke", "label_limit": 16, "show_photos": 3, "timing_photos": 3,
         "review_photos": 3, "refine": True},
    ),
    "demo": CoursePreset(
        "demo", "embedded sample, small models trained long enough to show the idea (<10 min)",
        "sample",
        {"preset": "demo", "label_limit": None, "show_photos": 6, "timing_photos": 6,
         "review_photos": 12, "workers": "auto"},
    ),
    "quick": CoursePreset(
        "quick", "a real folder of photos (default ../shared/shoes/images), CPU (<30 min)",
        str(SHARED_SHOES),
        {"preset": "quick", "label_limit": None, "show_photos": 6, "timing_photos": 8,
         "review_photos": 24, "refine": True, "workers": "auto"},
    ),
    "full": CoursePreset(
        "full", "the original protocol: 200x200 photos, 100 epochs; for a GPU",
        "",
        {"preset": "full", "label_limit": None, "show_photos": 8, "timing_photos": 8,
         "review_photos": 50, "refine": True},
    ),
}


def get_preset(name: str) -> CoursePreset:
    try:
        return PRESETS[name]
    except KeyError:
        raise SeglibError(
            f"unknown course preset {name!r}; choose one of {', '.join(PRESETS)}"
        ) from None


def sample_images(out: Path | None = None) -> Path:
    """The embedded sample's photo folder; written into ``out/sample`` when it is missing."""
    images = SAMPLE_DIR / "images"
    if IN_CHECKOUT and images.is_dir() and any(images.iterdir()):
        return images
    if out is None:
        raise SeglibError(f"{images}: embedded sample missing; run 'python -m seglib sample'")
    from seglib.course.sample import write_sample

    target = Path(out) / "sample"
    if not (target / "images").is_dir():
        write_sample(target)
    return target / "images"


def truth_for(images: Path) -> Path | None:
    """True trimaps next to a photo folder (``../trimaps``), as in the embedded sample."""
    t = Path(images).parent / "trimaps"
    return t if t.is_dir() else None


def parse_value(text: str) -> Any:
    """A ``-p NAME VALUE`` value: int, float, true/false, none, JSON list/dict, else text."""
    t = text.strip()
    low = t.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for conv in (int, float):
        try:
            return conv(t)
        except ValueError:
            pass
    if t[:1] in "[{" and t:
        try:
            return json.loads(t)
        except json.JSONDecodeError:
            raise SeglibError(f"parameter value {text!r} is not valid JSON") from None
    return text


def notebook_paths(folder: str | Path | None = None) -> list[Path]:
    """The four course notebooks, in order."""
    folder = Path(folder) if folder else NOTEBOOKS_DIR
    paths = [folder / f"{n}.ipynb" for n in NOTEBOOKS]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise SeglibError(f"{folder}: course notebooks missing ({', '.join(missing)})")
    return paths


def copy_notebooks(dest: str | Path) -> list[tuple[Path, bool]]:
    """Copy the four course notebooks into ``dest/notebooks`` for JupyterLab.

    An existing file (a student's annotated notebook) is never overwritten. Returns
    ``(path, written)`` per notebook; ``written`` is False for a file that was kept.
    """
    folder = Path(dest) / "notebooks"
    if folder.exists() and not folder.is_dir():
        raise SeglibError(f"{folder}: exists and is not a folder; choose another folder")
    return [(folder / src.name, write_bytes_new(folder / src.name, src.read_bytes()))
            for src in notebook_paths()]


def declared_parameters(path: str | Path) -> dict[str, Any]:
    """Names and default values of a notebook's ``parameters`` cell (without running it)."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise SeglibError(f"{path}: needs exactly one cell tagged 'parameters', has {len(cells)}")
    ns: dict[str, Any] = {}
    exec(compile(cells[0].source, str(path), "exec"), {}, ns)
    return {k: v for k, v in ns.items() if not k.startswith("_")}


def build_parameters(preset: str = "demo", images: str | Path | None = None,
                     checkpoint: str | Path | None = None, out: str | Path | None = None,
                     overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """All notebook parameters of a course run (each notebook receives those it declares)."""
    p = get_preset(preset)
    out_dir = Path(out) if out else WORK_DIR / "runs" / preset
    out_dir = out_dir.expanduser().resolve()
    if images:
        img = Path(images).expanduser().resolve()
    elif p.images == "sample":
        img = sample_images(out_dir)
    elif p.images:
        img = Path(p.images)
    else:
        raise SeglibError(f"preset {preset!r} has no default photos; pass --images DIR")
    if not img.is_dir():
        raise SeglibError(f"{img}: photo folder not found; pass --images DIR (a folder of "
                          "JPEG/PNG photos)")
    from seglib.core.images import list_images

    if not list_images(img):
        raise SeglibError(f"{img}: no .jpg/.jpeg/.png photos in this folder; pass --images DIR "
                          "with your photos")
    if checkpoint and not Path(checkpoint).expanduser().exists():
        raise SeglibError(f"{checkpoint}: checkpoint not found; get one with "
                          "'python -m seglib weights vit_b' (or sam2.1_tiny for -p backend "
                          "sam2) or leave --checkpoint out")
    truth = truth_for(img)
    params: dict[str, Any] = {
        "images_dir": str(img),
        "out_dir": str(out_dir),
        "checkpoint": str(Path(checkpoint).expanduser().resolve()) if checkpoint else "",
        "truth_dir": str(truth) if truth else "",
        "interactive": False,
        **p.params,
    }
    params.update(overrides or {})
    from seglib.course.parameters import check_course_parameters

    params = check_course_parameters(params, [p.name for p in list_images(img)])
    check_course_setup(params)
    if params.get("truth_dir"):  # the notebooks run in their own folder
        params["truth_dir"] = str(Path(str(params["truth_dir"])).expanduser().resolve())
    return params


def check_course_setup(params: Mapping[str, Any]) -> None:
    """What would fail only inside a notebook, checked before notebook 01 (one line each):
    a backend that needs a checkpoint and has none, a ``truth_dir`` that is not a folder,
    a device (``-p device`` or ``$SEGLIB_DEVICE``) this machine does not have."""
    if params.get("backend", "auto") != "auto" and not params["checkpoint"]:
        from seglib import backends

        try:
            backends.choose(params["backend"])
        except SeglibError as exc:
            raise SeglibError(f"-p backend {params['backend']}: {exc}") from None
    truth = params.get("truth_dir")
    if truth and not Path(str(truth)).expanduser().is_dir():
        raise SeglibError(f"-p truth_dir {truth}: not a folder; pass the folder of true "
                          "trimaps, or leave -p truth_dir out to score against the labels")
    from seglib.core.device import pick_device

    pick_device(str(params.get("device") or "auto"))


@contextmanager
def kernel_of_this_python() -> Iterator[str]:
    """Make the ``python3`` kernel start this interpreter, whatever kernels are installed.

    A kernelspec pointing at ``sys.executable`` (with this checkout on ``PYTHONPATH``) is
    written to a temporary folder that is put first on ``JUPYTER_PATH`` for the run, so a
    fresh virtual environment works without ``ipykernel install``.
    """
    try:
        import ipykernel  # noqa: F401
    except ImportError:
        raise SeglibError(f"ipykernel is not installed for {sys.executable}; run "
                          "'pip install -e .' in the project folder") from None
    with tempfile.TemporaryDirectory(prefix="seglib-kernel-") as tmp:
        spec_dir = Path(tmp) / "kernels" / KERNEL_NAME
        spec_dir.mkdir(parents=True)
        pypath = os.pathsep.join(x for x in (str(REPO), os.environ.get("PYTHONPATH", "")) if x)
        spec = {
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
                     "--IPKernelApp.log_level=ERROR"],
            "display_name": "Python 3 (ipykernel)",
            "language": "python",
            "metadata": {"supported_encryption": ["curve"]},
            "env": {"PYTHONPATH": pypath, "MPLBACKEND": "module://matplotlib_inline.backend_inline"},
        }
        (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
        old = os.environ.get("JUPYTER_PATH")
        os.environ["JUPYTER_PATH"] = os.pathsep.join(x for x in (tmp, old) if x)
        try:
            yield KERNEL_NAME
        finally:
            if old is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = old


def failure_message(executed: Path, exc: BaseException) -> str:
    """One line naming the notebook, the failing cell and the error."""
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = str(getattr(exc, "evalue", exc)).strip().splitlines()
    evalue_line = evalue[-1] if evalue else ""
    where = "a cell"
    try:
        import nbformat

        nb = nbformat.read(str(executed), as_version=4)
        code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
        failed = [(i, c) for i, c in code
                  if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
        if not failed:  # a dead kernel leaves no error output: the last cell that started
            failed = [(i, c) for i, c in code
                      if c.metadata.get("papermill", {}).get("start_time")][-1:]
        if failed:
            i, cell = failed[0]
            first = next((ln.strip() for ln in cell.source.splitlines() if ln.strip()), "")
            if len(first) > 60:
                first = first[:57] + "..."
            count = cell.get("execution_count")
            where = f"cell {i + 1}" + (f" [{count}]" if count else "") + f" `{first}`"
    except Exception:  # noqa: BLE001 - the message is best effort
        idx = getattr(exc, "cell_index", None)
        if idx is not None:
            where = f"cell {int(idx) + 1}"
    evalue_line = re.sub(r"\x1b\[[0-9;]*m", "", evalue_line)
    if ename == "DeadKernelError":
        return (f"{executed.name} failed at {where}: the kernel died (out of memory, or "
                f"killed); run the same command again to resume")
    return (f"{executed.name} failed at {where}: {ename}: {evalue_line} "
            f"(traceback in {executed})")


def export_html(executed: Path) -> Path:
    """Write ``executed`` (an .ipynb) as a standalone HTML page next to it."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_filename(str(executed))
    return write_bytes_atomic(executed.with_suffix(".html"), body.encode("utf-8"))


def course_photos(images: str | Path) -> dict[str, str]:
    """``{stem: sha256}`` of the photos in ``images`` (the first file of a repeated stem)."""
    from seglib.core.images import list_images

    files: dict[str, Path] = {}
    for path in list_images(images):
        files.setdefault(path.stem, path)
    return hash_files(files)


def _outputs(out: Path) -> list[Path]:
    """The course outputs present in ``out``: labels/, models/, reports/, executed notebooks
    (and their HTML pages) and course.json."""
    found = [out / d for d in OUTPUT_DIRS if (out / d).exists()]
    found += [out / f"{n}{ext}" for n in NOTEBOOKS for ext in (".ipynb", ".html")
              if (out / f"{n}{ext}").exists()]
    return found + ([out / COURSE_FILE] if (out / COURSE_FILE).exists() else [])


def _looks_like_a_course(out: Path) -> bool:
    return ((out / COURSE_FILE).is_file() or folder_kind(out / "labels") == "labels"
            or folder_kind(out / "models") == "runs"
            or any((out / f"{n}.ipynb").is_file() for n in NOTEBOOKS))


def start_fresh(out: Path, log: Callable[[str], None] = print) -> list[Path]:
    """Delete a course folder's labels, models, reports, executed notebooks and course.json;
    says what it deleted. A folder that is not a course output is left alone."""
    import shutil

    if not _looks_like_a_course(out):
        return []
    gone = _outputs(out)
    for path in gone:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    if gone:
        log(f"{out}: --fresh: deleted {', '.join(p.name for p in gone)}")
    return gone


def check_course_folder(out: Path, images: Path, preset: str, photos: Mapping[str, str]
                        ) -> str:
    """Raise one line unless ``out`` is empty of course outputs, or was made with the same
    preset from photos (``{stem: sha256}``) that share at least one with these. Returns one
    line naming the photos added, removed or changed since ("" when none): the rerun labels
    the new and changed ones and keeps every other label and ``overrides.csv``."""
    fix = ("choose a new --out, or pass --fresh to delete its labels, models, reports and "
           "notebooks and start over")
    manifest = read_json(out / COURSE_FILE)
    if manifest is None:
        if _looks_like_a_course(out):
            raise SeglibError(f"{out}: holds course outputs but no {COURSE_FILE} (made by an "
                              f"older seglib), so its photos cannot be checked; {fix}")
        return ""
    old = manifest.get("photos") or {}
    changes = describe_changes(old, photos, "photo")
    if changes and not any(photos.get(stem) == digest for stem, digest in old.items()):
        raise SeglibError(f"{out}: was made from other photos ({manifest.get('images')}): "
                          f"{'; '.join(changes)} in {images}; {fix}")
    if manifest.get("preset") != preset:
        raise SeglibError(f"{out}: was made with preset {manifest.get('preset')!r}, not "
                          f"{preset!r}; {fix}")
    if not changes:
        return ""
    return (f"{out}: {'; '.join(changes)} in {images} since the last run: new and changed "
            "photos are labeled, every other label and overrides.csv kept (labels of photos "
            "that are gone are not used for training)")


@dataclass
class CourseResult:
    out: Path
    notebooks: list[Path]
    html: list[Path]
    reports: list[Path]
    seconds: dict[str, float]


def check_overrides(overrides: Mapping[str, Any] | None,
                    declared: Mapping[Path, Mapping[str, Any]]) -> None:
    """Raise one line naming the ``-p`` parameters that no notebook declares."""
    known = set().union(*declared.values()) if declared else set()
    unknown = sorted(set(overrides or {}) - known)
    if unknown:
        raise SeglibError(f"unknown notebook parameter(s) {', '.join(unknown)}; the notebooks "
                          f"declare: {', '.join(sorted(known))}")


def claim_course_folder(out_dir: Path, images: Path, preset: str, fresh: bool = False,
                        log: Callable[[str], None] = print) -> dict[str, str]:
    """Check ``out_dir`` before the first notebook and record what it is made from.

    Refuses an output folder that is an input or not a course folder
    (:func:`seglib.core.folders.refuse_output`), deletes earlier outputs when ``fresh``
    (:func:`start_fresh`), refuses one made from other photos or another preset
    (:func:`check_course_folder`; photos added, removed or replaced are said in one line),
    then writes ``course.json``. Returns ``{stem: sha256}``.
    """
    refuse_output(out_dir, inputs=[images], allow="course")
    photos = course_photos(images)
    if fresh:
        start_fresh(out_dir, log)
    changed = check_course_folder(out_dir, images, preset, photos)
    if changed:
        log(changed)
    manifest = read_json(out_dir / COURSE_FILE) or {}
    written, done = manifest.get("notebooks"), manifest.get("photos")
    write_json(out_dir / COURSE_FILE, {"schema": COURSE_SCHEMA, "kind": "course",
                                       "images": str(images), "preset": preset,
                                       # the photos of the last run that finished
                                       # (finish_course); a first run's from the start
                                       "photos": done if isinstance(done, dict) else photos,
                                       "notebooks": written if isinstance(written, dict)
                                       else {},
                                       **({"running": manifest["running"]}
                                          if "running" in manifest else {})})
    return photos


def finish_course(out_dir: Path, photos: Mapping[str, str]) -> None:
    """Record in ``course.json`` that a run on ``photos`` (``{stem: sha256}``) finished: the
    next rerun compares its photos with these."""
    manifest = read_json(out_dir / COURSE_FILE) or {}
    write_json(out_dir / COURSE_FILE, {**manifest, "photos": dict(photos)})


def keep_edited_notebook(target: Path, log: Callable[[str], None] = print) -> Path | None:
    """Move ``target`` (an executed notebook about to be written again) aside as
    ``NAME.edited-N.ipynb`` when it is not what the runner wrote (``course.json``'s
    ``notebooks`` hash): a student's notes are never overwritten. Says so in one line."""
    if not target.is_file():
        return None
    manifest = read_json(target.parent / COURSE_FILE) or {}
    if manifest.get("running") == target.name:  # a run killed while writing it
        return None
    written = manifest.get("notebooks") or {}
    if isinstance(written, dict) and written.get(target.name) == file_sha256(target):
        return None
    kept = move_aside(target)
    log(f"  {target.name}: changed since the course wrote it (notes?); kept as {kept.name}, "
        "and run again")
    return kept


def record_notebook(target: Path) -> None:
    """Record the SHA-256 of the executed notebook ``target`` in ``course.json`` (none when
    there is no file) and that no notebook is running."""
    manifest = read_json(target.parent / COURSE_FILE) or {}
    manifest.pop("running", None)
    written = manifest.get("notebooks")
    written = written if isinstance(written, dict) else {}
    if target.is_file():
        written[target.name] = file_sha256(target)
    write_json(target.parent / COURSE_FILE, {**manifest, "notebooks": written})


def mark_running(target: Path) -> None:
    """Name ``target`` in ``course.json`` as the notebook being written (before its run)."""
    manifest = read_json(target.parent / COURSE_FILE) or {}
    write_json(target.parent / COURSE_FILE, {**manifest, "running": target.name})


def execute_notebook(path: Path, target: Path, parameters: Mapping[str, Any],
                     kernel: str) -> None:
    """Run one notebook with papermill into ``target``; a failure is one line naming the
    notebook and the cell (:func:`failure_message`)."""
    import papermill as pm

    try:
        pm.execute_notebook(
            str(path), str(target), parameters=dict(parameters), kernel_name=kernel,
            language="python", cwd=str(path.parent),
            progress_bar=sys.stderr.isatty(), log_output=False,
        )
    except Exception as exc:  # papermill raises its own error types
        if not target.is_file():
            raise SeglibError(f"{path.name}: could not start: {exc}") from None
        raise SeglibError(failure_message(target, exc)) from None


@contextmanager
def quiet_papermill() -> Iterator[None]:
    """Silence papermill's logger (a failure is reported in one line instead); after Ctrl-C
    also asyncio's, which would log the kernel's unawaited cell task at exit."""
    pm_logger = logging.getLogger("papermill")
    old_level = pm_logger.level
    pm_logger.setLevel(logging.CRITICAL)
    try:
        yield
    except KeyboardInterrupt:
        logging.getLogger("asyncio").setLevel(logging.CRITICAL + 1)
        raise
    finally:
        pm_logger.setLevel(old_level)


def execute_course(paths: Sequence[Path], declared: Mapping[Path, Mapping[str, Any]],
                   params: Mapping[str, Any], result: CourseResult, html: bool = True,
                   log: Callable[[str], None] = print) -> CourseResult:
    """Run the notebooks in order into ``result.out``, each with the parameters it declares;
    adds each executed notebook, HTML page and time to ``result``."""
    with quiet_papermill(), kernel_of_this_python() as kernel:
        for path in paths:
            target = result.out / path.name
            nb_params = {k: v for k, v in params.items() if k in declared[path]}
            t0 = time.perf_counter()
            keep_edited_notebook(target, log)
            mark_running(target)  # a killed run's half-written notebook is the runner's
            try:
                execute_notebook(path, target, nb_params, kernel)
            finally:  # a failed notebook is the runner's too: a rerun overwrites it
                record_notebook(target)
            dt = time.perf_counter() - t0
            result.seconds[path.stem] = dt
            result.notebooks.append(target)
            if html:
                result.html.append(export_html(target))
            log(f"  {path.name}: done in {dt:.0f} s")
    return result


def run_course(preset: str = "demo", images: str | Path | None = None,
               checkpoint: str | Path | None = None, out: str | Path | None = None,
               overrides: Mapping[str, Any] | None = None,
               notebooks: Sequence[str | Path] | None = None, html: bool = True,
               fresh: bool = False, log: Callable[[str], None] = print) -> CourseResult:
    """Execute the course notebooks in order with papermill; stop at the first failure.

    ``notebooks`` defaults to the four course notebooks. Raises :class:`SeglibError` with a
    one-line message naming the failing notebook and cell. The stages: the parameters
    (:func:`build_parameters`, :func:`check_overrides`), the output folder
    (:func:`claim_course_folder`; ``fresh`` first deletes its earlier outputs), the notebooks
    (:func:`execute_course`), then the list of report PNGs.
    """
    params = build_parameters(preset, images, checkpoint, out, overrides)
    out_dir = Path(params["out_dir"])
    paths = [Path(p) for p in notebooks] if notebooks else notebook_paths()
    declared = {p: declared_parameters(p) for p in paths}
    check_overrides(overrides, declared)
    photos = claim_course_folder(out_dir, Path(params["images_dir"]), preset, fresh, log)
    log(f"course preset {preset!r}: photos {params['images_dir']} -> {out_dir}")
    result = execute_course(paths, declared, params, CourseResult(out_dir, [], [], [], {}),
                            html, log)
    finish_course(out_dir, photos)
    reports = out_dir / "reports"
    result.reports = sorted(reports.glob("*.png")) if reports.is_dir() else []
    log(f"wrote {len(result.notebooks)} executed notebooks, {len(result.html)} HTML pages and "
        f"{len(result.reports)} report PNGs to {out_dir}")
    return result
