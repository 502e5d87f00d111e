"""CSV cells a spreadsheet would run are neutralised; documents render with their header."""

from __future__ import annotations

import csv
import io

import orjson
from hypothesis import given
from hypothesis import strategies as st

from services.export.formats import neutralise, render


def test_formula_starts_get_an_apostrophe():
    for text in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\r=1"):
        assert neutralise(text).startswith("'")
    assert neutralise("plain") == "plain"
    assert neutralise("a=b") == "a=b"
    assert neutralise(42) == 42


def test_line_breaks_become_spaces():
    assert neutralise("two\nlines\r\n") == "two lines  "


@given(st.text())
def test_no_cell_starts_a_formula_or_breaks_a_line(text):
    cell = neutralise(text)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert "\n" not in cell and "\r" not in cell


def test_render_csv_and_ndjson():
    rows = [{"key": "=cmd", "clicks": 3}, {"key": "DE", "clicks": 1}]
    text = render(rows, ("key", "clicks"), "csv").decode()
    assert list(csv.reader(io.StringIO(text))) == [["key", "clicks"], ["'=cmd", "3"], ["DE", "1"]]
    lines = render(rows, ("key", "clicks"), "ndjson").splitlines()
    assert [orjson.loads(line) for line in lines] == rows  # JSON keeps values as they are
