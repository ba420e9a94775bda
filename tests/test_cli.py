from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from seglib.cli import COMMANDS, main
from seglib.masks.trimap import load_trimap, mask_to_trimap


def test_help_lists_every_command() -> None:
    out = subprocess.run([sys.executable, "-m", "seglib", "--help"], capture_output=True,
                         text=True, check=True).stdout
    for name in COMMANDS:
        assert name in out


def test_the_readme_commands_table_has_a_true_row_for_every_command() -> None:
    import argparse
    import importlib
    import re

    from seglib.cli import MODULES

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Commands", 1)[1].split("\n\n", 2)[2].split("\n\n", 1)[0]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(\w+)([^`]*)`", table, re.M)}
    assert sorted(rows) == sorted(COMMANDS)
    for name, usage in rows.items():
        parser = argparse.ArgumentParser()
        importlib.import_module(f"seglib.cli.{MODULES.get(name, name)}").add_arguments(parser)
        for option in re.findall(r"--[\w-]+", usage):
            assert option in parser._option_string_actions, f"{name} {option}"


def test_trimap_command_converts_0_255_masks(tmp_path: Path, capsys) -> None:
    import cv2

    masks = tmp_path / "masks"
    masks.mkdir()
    m = np.zeros((20, 30), np.uint8)
    m[5:15, 8:20] = 255
    cv2.imwrite(str(masks / "shoe.png"), m)
    (masks / "broken.png").write_bytes(b"nope")
    assert main(["trimap", str(masks), "--out", str(tmp_path / "t")]) == 0
    assert np.array_equal(load_trimap(tmp_path / "t" / "shoe.png"), mask_to_trimap(m > 0))
    assert not (tmp_path / "t" / "broken.png").exists()
    assert "1 trimaps" in capsys.readouterr().out


def test_user_errors_are_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "seglib", "trimap", str(tmp_path / "missing"), "--out",
         str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "not a folder" in proc.stderr
    assert "Traceback" not in proc.stderr
