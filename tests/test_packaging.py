"""Packaging: the notebooks ship inside the package, ``seglib notebooks DIR`` copies them out,
pyproject declares version ranges (the exact set is constraints.txt), and a built wheel,
installed in a fresh virtual environment, runs the course from any folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from seglib.core.files import write_bytes_new
from seglib.course import runner

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]
NAMES = [f"{n}.ipynb" for n in runner.NOTEBOOKS]


def _requirements() -> dict[str, Requirement]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    reqs = [Requirement(r) for r in data["project"]["dependencies"]]
    return {canonicalize_name(r.name): r for r in reqs}


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not NAME==VERSION"
            pins[canonicalize_name(name)] = version
    return pins


# -- the notebooks inside the package ----------------------------------------------------------
def test_the_runner_finds_the_notebooks_inside_the_package() -> None:
    inside = Path(runner.__file__).resolve().parent / "notebooks"
    assert runner.NOTEBOOKS_DIR == inside
    paths = runner.notebook_paths()
    assert [p.name for p in paths] == NAMES
    for p in paths:  # the package's notebooks are the repository's notebooks/
        assert p.read_bytes() == (ROOT / "notebooks" / p.name).read_bytes()
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "course/notebooks/*.ipynb" in package_data["package-data"]["seglib"]


# -- seglib notebooks DIR -------------------------------------------------------------------
def test_notebooks_command_copies_the_notebooks_and_the_sample(tmp_path: Path, cli) -> None:
    code, out, err = cli("notebooks", tmp_path / "course")
    assert code == 0, err
    folder = tmp_path / "course" / "notebooks"
    assert sorted(p.name for p in folder.iterdir()) == NAMES  # no temp files left behind
    for name in NAMES:
        assert (folder / name).read_bytes() == (runner.NOTEBOOKS_DIR / name).read_bytes()
        assert f"wrote {folder / name}" in out
    images = tmp_path / "course" / "data" / "sample" / "images"
    assert len(list(images.glob("*.jpg"))) == 48  # what the notebooks' ../data/sample reads
    # the notebooks' default paths, relative to notebooks/, find the sample
    params = runner.declared_parameters(folder / "01_sam_masks.ipynb")
    assert (folder / params["images_dir"]).resolve() == images.resolve()
    assert (folder / params["truth_dir"]).is_dir()
    assert "jupyter lab" in out and "images_dir" in out


def test_notebooks_command_never_overwrites_a_students_notebook(tmp_path: Path, cli) -> None:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    mine = folder / "02_trimaps.ipynb"
    mine.write_text("my annotated notebook")
    code, out, _ = cli("notebooks", tmp_path, "--no-sample")
    assert code == 0
    assert mine.read_text() == "my annotated notebook"
    kept = [ln for ln in out.splitlines() if ln.startswith("kept")]
    assert kept == [f"kept {mine}: it exists (not overwritten; rename it to get a fresh copy)"]
    assert not (tmp_path / "data").exists()
    assert "no sample" in out
    code, out, _ = cli("notebooks", tmp_path, "--no-sample")  # again: everything is kept
    assert code == 0 and sum(ln.startswith("kept") for ln in out.splitlines()) == 4


def test_notebooks_command_refuses_a_file_as_dir(tmp_path: Path, cli) -> None:
    (tmp_path / "f").write_text("x")
    code, _, err = cli("notebooks", tmp_path / "f")
    assert code == 2 and err.count("\n") == 1 and "not a folder" in err


def test_write_new_file_keeps_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "a.ipynb"
    assert write_bytes_new(path, b"one") is True
    assert write_bytes_new(path, b"two") is False
    assert path.read_bytes() == b"one"
    assert [p.name for p in tmp_path.iterdir()] == ["a.ipynb"]


# -- version ranges and the constraints file ---------------------------------------------------
def test_torch_is_a_range_and_constraints_pin_a_version_inside_it() -> None:
    reqs, pins = _requirements(), _constraints()
    for name in ("torch", "torchvision"):
        spec = reqs[name].specifier
        assert not any(s.operator == "==" for s in spec), f"{name} is pinned in pyproject"
        assert pins[name] in spec, f"constraints.txt {name}=={pins[name]} is outside {spec}"
    for name, req in reqs.items():  # every dependency has its tested version
        assert name in pins, f"{name} missing from constraints.txt"
        assert pins[name] in req.specifier, f"{name}=={pins[name]} vs {req}"
    assert "seglib" not in pins


# -- a wheel in a fresh virtual environment ----------------------------------------------------
def _run(cmd: list[str | Path], cwd: Path, env: dict[str, str], timeout: float = 300
         ) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd}: {done.stdout[-2000:]}{done.stderr[-3000:]}"
    return done


def _build_wheel(tmp: Path, env: dict[str, str]) -> Path:
    """Build the wheel from a copy of the sources (no stale build/ folder, no network)."""
    src = tmp / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(ROOT / "seglib", src / "seglib", symlinks=True, ignore=ignore)
    shutil.copytree(ROOT / "notebooks", src / "notebooks", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--quiet", "-w", tmp / "dist", src], tmp, env)
    (wheel,) = (tmp / "dist").glob("seglib-*.whl")
    return wheel


def _fake_dist(site: Path, name: str, version: str) -> None:
    """An installed distribution as pip sees it (metadata only), ahead of the parent's."""
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "INSTALLER").write_text("test\n")
    (info / "RECORD").write_text("")


def _keeps_another_supported_torch(py: Path, site: Path, wheel: Path, tmp: Path,
                                   env: dict[str, str]) -> None:
    """In an environment with the lowest supported torch/torchvision (their metadata, ahead of
    the parent environment's), installing the wheel installs seglib alone; an unsupported
    torch would have to be replaced (pip refuses here: no index)."""
    reqs = _requirements()
    lowest = {n: min(s.version for s in reqs[n].specifier if s.operator == ">=")
              for n in ("torch", "torchvision")}
    for name, version in lowest.items():
        _fake_dist(site, name, version)
    report = tmp / "report-lowest.json"
    _run([py, "-m", "pip", "install", "--dry-run", "--no-index", "--quiet", "--report", report,
          wheel], tmp, env)
    install = {i["metadata"]["name"].lower() for i in json.loads(report.read_text())["install"]}
    assert install == {"seglib"}, f"with torch {lowest['torch']} the wheel would change {install}"
    shutil.rmtree(site / f"torch-{lowest['torch']}.dist-info")
    _fake_dist(site, "torch", "1.13.0")  # below the range: pip must want another torch
    report = tmp / "report-old.json"
    done = subprocess.run([str(py), "-m", "pip", "install", "--dry-run", "--no-index",
                           "--quiet", "--report", str(report), str(wheel)], cwd=tmp, env=env,
                          capture_output=True, text=True, timeout=300)
    if done.returncode == 0:  # a local wheel of torch was found (pip's find-links)
        replaced = {i["metadata"]["name"].lower()
                    for i in json.loads(report.read_text())["install"]}
        assert "torch" in replaced, f"torch 1.13 would be kept: {replaced}"
    else:  # nothing to replace it with here
        assert "torch" in done.stderr
    for info in site.glob("torch*.dist-info"):
        shutil.rmtree(info)


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_runs_the_course(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    wheel = _build_wheel(tmp_path, env)

    # installing the wheel here keeps this environment's torch and torchvision
    report = tmp_path / "report.json"
    _run([sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--report", report,
          wheel], tmp_path, env)
    install = {i["metadata"]["name"].lower() for i in json.loads(report.read_text())["install"]}
    assert install == {"seglib"}, f"installing the wheel would change {install - {'seglib'}}"

    # a fresh venv that sees this environment's packages (torch...) but not its seglib
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], tmp_path, env)
    py = venv / "bin" / "python"
    site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     tmp_path, env).stdout.strip())
    # a plain path line: this environment's .pth files (the editable seglib's finder) stay off
    (site / "zz_parent_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # ... and its Jupyter data (nbconvert's HTML templates live in PREFIX/share/jupyter)
    env["JUPYTER_PATH"] = os.pathsep.join(
        x for x in (str(Path(sys.prefix) / "share" / "jupyter"), env.get("JUPYTER_PATH")) if x)
    _keeps_another_supported_torch(py, site, wheel, tmp_path, env)
    _run([py, "-m", "pip", "install", "--no-deps", "--ignore-installed", "--no-index",
          "--quiet", wheel], tmp_path, env)
    work = tmp_path / "work"  # a folder with no seglib in it, as a student's would be
    work.mkdir()
    where = _run([py, "-c", "import seglib.course.runner as r; print(r.__file__, r.IN_CHECKOUT)"],
                 work, env).stdout.split()
    assert Path(where[0]).is_relative_to(venv) and where[1] == "False"

    seglib = venv / "bin" / "seglib"
    done = _run([seglib, "course", "--preset", "smoke", "--out", work / "out"], work, env,
                timeout=420)
    assert "course notebooks missing" not in done.stderr
    out = work / "out"
    for name in NAMES:
        executed = out / name
        assert executed.is_file() and executed.with_suffix(".html").is_file()
        nb = json.loads(executed.read_text())
        assert Path(nb["metadata"]["papermill"]["input_path"]).is_relative_to(venv)
    assert len(list((out / "sample" / "images").glob("*.jpg"))) == 48  # no data/sample here
    assert list((out / "reports").glob("*.png"))
    assert not (site / "runs").exists()

    done = _run([seglib, "notebooks", "course"], work, env, timeout=120)
    assert sorted(p.name for p in (work / "course" / "notebooks").iterdir()) == NAMES
    assert (work / "course" / "data" / "sample" / "images").is_dir()
