"""CSV files people open in spreadsheets: formula cells escaped, values round-trip, BOM read."""

from __future__ import annotations

import csv

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seglib.core.errors import SeglibError
from seglib.core.files import file_sha256
from seglib.core.tables import read_csv, write_csv


@pytest.mark.parametrize("name", ["=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "\tx",
                                  "'quoted", "plain"])
def test_formula_cells_are_escaped_and_round_trip(tmp_path, name):
    path = write_csv(tmp_path / "t.csv", [{"stem": name, "n": "1"}], ["stem", "n"])
    with open(path, newline="", encoding="utf-8") as f:
        raw = list(csv.reader(f))[1][0]
    assert not raw.startswith(("=", "+", "-", "@", "\t"))  # what a spreadsheet would run
    assert read_csv(path) == [{"stem": name, "n": "1"}]


def test_excel_bom_and_semicolons_are_read(tmp_path):
    path = tmp_path / "overrides.csv"
    path.write_bytes("\ufeffstem;candidate\r\nshoe_1;3\r\n".encode())
    assert read_csv(path, required=("stem", "candidate")) == [{"stem": "shoe_1",
                                                               "candidate": "3"}]


def test_missing_header_is_one_line_error(tmp_path):
    path = tmp_path / "overrides.csv"
    path.write_text("shoe_1,3\n")
    with pytest.raises(SeglibError, match="header 'stem,candidate'") as exc:
        read_csv(path, required=("stem", "candidate"))
    assert "\n" not in str(exc.value)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(), min_size=1, max_size=5))
def test_any_text_round_trips(tmp_path_factory, values):
    path = tmp_path_factory.mktemp("csv") / "t.csv"
    rows = [{"a": v.replace("\x00", ""), "b": "x"} for v in values]
    write_csv(path, rows, ["a", "b"])
    back = read_csv(path)
    keep = [r for r in rows if r["a"].strip() or r["b"].strip()]
    assert [r["a"] for r in back] == [r["a"] for r in keep]


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_give_rows_or_one_clear_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("csv") / "t.csv"
    path.write_bytes(data)
    try:
        rows = read_csv(path, required=("stem",))
    except SeglibError as exc:
        assert "\n" not in str(exc)
    else:
        assert all(isinstance(r, dict) for r in rows)


def test_file_sha256_keys_by_content(tmp_path):
    a, b = tmp_path / "a.jpg", tmp_path / "b.jpg"
    a.write_bytes(b"one")
    b.write_bytes(b"one")
    assert file_sha256(a) == file_sha256(b) and len(file_sha256(a)) == 64
    b.write_bytes(b"two")
    assert file_sha256(a) != file_sha256(b)
