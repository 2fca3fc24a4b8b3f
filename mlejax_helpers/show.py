"""How the book shows a table: one formatting layer for every chapter.

``table(df, caption)`` turns a DataFrame (or Series) into a styled table that reads
like a printed one: each column rounded for the quantity it holds, integers as
integers, ``-`` for a missing value, readable column labels, a caption, and no
integer row index. It changes only how numbers are shown: the DataFrame itself,
and anything computed from it, keeps full precision.

Rounding by quantity, decided from the column's label (first match wins):

=====================================  =========================================
label contains                          shown with
=====================================  =========================================
``-LL``, ``-SLL``, ``loglik``            3 decimals (objective values are compared)
``p`` (the whole label) or ``p-value``   3 decimals, "<0.001" below that
``x`` (a word), ``ratio``, `` / ``       2 decimals (a ratio "2.64x")
``s``, ``ms``, ``seconds``, ``time``     each value to 3 significant digits
anything else                           3 significant digits at the column's
                                        median size (0 to 4 decimals)
=====================================  =========================================

A column whose values are all whole numbers is shown without decimals
(iterations, sizes, counts), with thousands separators. Text in a column (a failure
such as "OOM" beside times) is shown as it is.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

# Labels for the record fields the chapters show (anything else: underscores to spaces).
LABELS = {
    "n": "N",
    "j": "J",
    "r": "R",
    "nit": "iterations",
    "nfev": "evaluations",
    "neg_loglik": "-SLL",
    "neg_loglik_common": "-SLL (common draws)",
    "fit_s_median": "fit only (s)",
    "end_to_end_s_first": "end to end (s)",
    "end_to_end_with_import_s": "waited (s)",
    "compile_s": "compile (s)",
    "import_s": "import (s)",
    "fit_s": "fit (s)",
    "end_to_end_s": "end to end (s)",
    "se": "SE",
    "z": "z",
}


def label(name) -> str:
    """A readable label for a column name: :data:`LABELS`, or underscores as spaces."""
    if not isinstance(name, str):
        return str(name)
    return LABELS.get(name, name.replace("_", " "))


SIGNIFICANT = "3 significant"  # a time: each value to 3 significant digits


def decimals(name, values: pd.Series) -> int | str | None:
    """Decimals to show for column ``name`` holding ``values``: an int, :data:`SIGNIFICANT`
    (a time column), or None (no number in it: shown as it is)."""
    if pd.api.types.is_bool_dtype(values):
        return None
    numbers = pd.to_numeric(values[[not isinstance(v, bool) for v in values]], errors="coerce")
    finite = numbers[np.isfinite(numbers.astype(float))].astype(float)
    if finite.empty:
        return None
    if (finite == finite.round()).all():
        return 0
    text = str(name).lower()
    if any(k in text for k in ("-ll", "-sll", "loglik", "log-likelihood")):
        return 3
    if text in ("p", "p-value") or "p-value" in text:
        return 3
    if (
        text == "x"
        or text.startswith("x ")
        or text.endswith(" x")
        or "ratio" in text
        or " / " in text
    ):
        return 2
    if re.search(r"\b(s|ms|seconds|time)\b", text):
        return SIGNIFICANT
    size = float(finite.abs().median())
    if size == 0:
        return 2
    return int(min(4, max(0, 2 - math.floor(math.log10(size)))))


def significant(v: float) -> str:
    """``v`` to 3 significant digits, trailing zeros kept, never in e-notation (a time);
    ``inf`` and ``nan`` as Python writes them."""
    if not math.isfinite(v):
        return str(v)
    digits = 0 if v == 0 else max(0, 2 - math.floor(math.log10(abs(v))))
    return f"{v:,.{digits}f}"


def _formatter(places, floor: float | None = None):
    def fmt(v):
        if isinstance(v, str):
            return v
        if v is None or pd.isna(v):
            return "-"
        if floor is not None and abs(v) < floor:
            return f"<{floor:g}"
        if places == SIGNIFICANT:
            return significant(v)
        if isinstance(places, str):  # a format of the caller's, such as "{:+.1e}"
            return places.format(v)
        return f"{v:,.{places}f}"

    return fmt


def _index_label(v) -> str:
    """A row label: whole numbers with thousands separators (N = 10,000), else as is."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def table(df, caption: str | None = None, *, digits=None, labels=None, by_row=False):
    """``df`` as the book shows a table (a pandas ``Styler``); see the module docstring.

    ``digits`` maps a column to its number of decimals, :data:`SIGNIFICANT` or a format
    string such as ``"{:+.1e}"`` (overriding the rule);
    ``labels`` maps a column to its label (overriding :data:`LABELS`). With
    ``by_row=True`` each *row* holds one quantity (a side-by-side table whose
    columns are tools): rows are rounded by their label instead. A default
    integer index (0, 1, 2, ...) is hidden; a named index becomes the first column;
    the levels of a MultiIndex are kept, their names relabelled.
    """
    if isinstance(df, pd.Series):
        df = df.to_frame(df.name if df.name is not None else "value")
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"table: df must be a pandas DataFrame or Series, got {type(df).__name__}")
    if by_row:
        return _by_row(df, caption, digits)
    digits, labels = dict(digits or {}), dict(labels or {})
    unknown = [c for c in [*digits, *labels] if c not in df.columns]
    if unknown:
        raise KeyError(f"table: digits/labels name columns the table lacks: {unknown}")
    shown = df.copy()
    if shown.index.nlevels == 1 and shown.index.name is not None:
        shown = shown.reset_index()  # one named index: a column like the others
    formats = {}
    for col in shown.columns:
        places = digits.get(col, decimals(labels.get(col, label(col)), shown[col]))
        if places is not None:
            is_p = str(col).lower() in ("p", "p-value") and col not in digits
            formats[col] = _formatter(places, floor=1e-3 if is_p and places else None)
    plain_index = isinstance(shown.index, pd.RangeIndex) or (
        pd.api.types.is_integer_dtype(shown.index) and shown.index.name is None
    )
    shown.index.names = [label(n) if n is not None else None for n in shown.index.names]
    if not isinstance(shown.columns, pd.MultiIndex):  # grouped headers are the caller's
        shown.columns = [labels.get(c, label(c)) for c in shown.columns]
        formats = {labels.get(c, label(c)): f for c, f in formats.items()}
    styler = shown.style.format(formats, na_rep="-").format_index(_index_label, axis=0)
    if plain_index:
        styler = styler.hide(axis="index")
    if caption:
        styler = styler.set_caption(caption)
    return styler


def _by_row(df: pd.DataFrame, caption, digits) -> pd.io.formats.style.Styler:
    """:func:`table` for a frame whose rows are the quantities (``by_row=True``)."""
    unknown = [r for r in (digits or {}) if r not in df.index]
    if unknown:
        raise KeyError(f"table: digits names rows the table lacks: {unknown}")
    styler = df.style
    for row in df.index:
        values = pd.to_numeric(df.loc[row], errors="coerce")
        places = (digits or {}).get(row, decimals(row, values))
        if places is not None and values.notna().any():
            styler = styler.format(_formatter(places), subset=pd.IndexSlice[[row], :])
    styler = styler.format_index(label, axis=0).format(na_rep="-", subset=[])
    return styler.set_caption(caption) if caption else styler
