"""The book's one formatting layer for tables (``mlejax_helpers.show``)."""

from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from mlejax_helpers import show


class _Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self.cell = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.cell = ""

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(self.cell.strip())
            self.cell = None


def cells(styler) -> dict:
    """The table as the reader sees it: header label -> the column's shown cells."""
    parser = _Cells()
    parser.feed(styler.to_html())
    header, *body = [r for r in parser.rows if r]
    return {h: [row[i] for row in body] for i, h in enumerate(header)}


def test_rounding_follows_the_quantity_and_whole_numbers_stay_whole():
    df = pd.DataFrame(
        {
            "neg_loglik": [3886.848123, 3890.69711],
            "ratio": [2.6449, 0.5],
            "nit": [25.0, 43.0],
            "fit_s_median": [0.23456, 1.5],
            "se": [0.012345, 0.2],
        }
    )
    shown = cells(show.table(df))
    assert list(shown) == ["-SLL", "ratio", "iterations", "fit only (s)", "SE"]
    assert shown["-SLL"] == ["3,886.848", "3,890.697"]
    assert shown["ratio"] == ["2.64", "0.50"]
    assert shown["iterations"] == ["25", "43"]
    assert shown["fit only (s)"] == ["0.235", "1.50"]  # a time: 3 significant digits
    assert shown["SE"] == ["0.012", "0.200"]


def test_missing_values_show_as_a_dash_and_a_plain_index_is_hidden():
    df = pd.DataFrame({"time": [1.0, np.nan], "outcome": ["ok", None]})
    html = show.table(df, "a caption").to_html()
    assert "a caption" in html and "nan" not in html.lower() and "None" not in html
    shown = cells(show.table(df))
    assert list(shown) == ["time", "outcome"]  # no index column
    assert shown["time"] == ["1", "-"] and shown["outcome"] == ["ok", "-"]


def test_a_named_index_is_kept_and_relabelled():
    s = pd.Series([0.5, 0.25], index=pd.Index([10_000, 100_000], name="n"), name="x")
    shown = cells(show.table(s))
    assert list(shown) == ["N", "x"]
    assert shown["N"] == ["10,000", "100,000"]


def test_overrides_and_a_clear_error_for_unknown_columns():
    df = pd.DataFrame({"a": [1.23456]})
    shown = cells(show.table(df, digits={"a": 1}, labels={"a": "alpha"}))
    assert shown["alpha"] == ["1.2"]
    with pytest.raises(KeyError, match="lacks.*'b'"):
        show.table(df, digits={"b": 2})
    with pytest.raises(TypeError, match="DataFrame or Series"):
        show.table([1, 2])


def test_a_side_by_side_table_is_rounded_row_by_row():
    side = pd.DataFrame(
        {"ours": [3886.84812, 1.0, 5.1234], "peer": [3886.84823, 0.0, np.nan]},
        index=["-LL", "converged", "end_to_end_s"],
    )
    shown = cells(show.table(side, by_row=True))
    assert shown["ours"] == ["3,886.848", "1", "5.12"]
    assert shown["peer"] == ["3,886.848", "0", "-"]
    assert shown[""] == ["-LL", "converged", "end to end (s)"]
    with pytest.raises(KeyError, match="rows the table lacks"):
        show.table(side, digits={"nope": 1}, by_row=True)


def test_p_values_below_a_thousandth_are_not_shown_as_zero():
    shown = cells(show.table(pd.DataFrame({"p": [0.04321, 1e-12]})))
    assert shown["p"] == ["0.043", "<0.001"]


def test_text_beside_numbers_is_kept_and_the_numbers_are_still_rounded():
    df = pd.DataFrame({"paper (s)": [0.96, "OOM", 186.53], "ours": [1.0, 2.5, None]})
    shown = cells(show.table(df))
    assert shown["paper (s)"] == ["0.960", "OOM", "187"]
    assert shown["ours"] == ["1.00", "2.50", "-"]


def test_a_non_finite_time_is_shown_not_raised():
    shown = cells(show.table(pd.DataFrame({"fit (s)": [1.23456, float("inf")]})))
    assert shown["fit (s)"] == ["1.23", "inf"]
    assert show.significant(0.012345) == "0.0123" and show.significant(1234.5) == "1,234"
