"""Tables and figures for chapter 7, computed from benchmark records only.

The paper's own figures are kept here, labelled as the paper's (measured on
a 2015 iMac, 4 GHz quad-core Intel Core i7), so that the chapter can show them
beside ours; every number of ours comes from a record.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np
import pandas as pd

from ..show import significant
from .records import read

PAPER_MACHINE = "the paper's own figures (2015 iMac, 4 GHz quad-core Intel Core i7)"

# The paper's Table 1 (N=10k, J=21, R=12): (gradient, jit log-likelihood, jit gradient) -> seconds.
PAPER_TABLE1 = pd.DataFrame(
    [
        ("pandas", "finite-differences", False, False, np.nan),  # "Very slow"
        ("jnp", "finite-differences", False, False, 10.36),
        ("jnp", "finite-differences", True, False, 4.45),
        ("jnp", "analytic", False, False, 10.10),
        ("jnp", "analytic", True, False, 9.84),
        ("jnp", "analytic", False, True, 2.74),
        ("jnp", "analytic", True, True, 1.73),
        ("jnp", "autodiff", False, False, 1.83),
        ("jnp", "autodiff", True, False, 1.18),
        ("jnp", "autodiff", False, True, 1.59),
        ("jnp", "autodiff", True, True, 0.96),
    ],
    columns=["data", "gradient", "jit_loglik", "jit_grad", "paper time (s)"],
)

# The paper's Tables 2 and 3: dimension -> value -> method -> (seconds, -LL); None = "OOM" or
# "no convergence" as the paper printed it.
_P2 = {
    "n": {
        10_000: {"autodiff": (0.96, 23812.98), "analytic": (1.73, 23812.98),
                 "finite-differences": (10.59, 23812.98), "xlogit": (2.28, 24022.44)},
        50_000: {"autodiff": (10.32, 117379.22), "analytic": (21.96, 117379.22),
                 "finite-differences": (94.42, 117379.22), "xlogit": (13.25, 118751.42)},
        100_000: {"autodiff": (16.14, 262236.97), "analytic": (23.21, 262236.97),
                  "finite-differences": (81.69, 262236.97), "xlogit": (27.74, 264003.72)},
    },
    "j": {
        20: {"autodiff": (0.96, 23812.98), "analytic": (1.73, 23812.98),
             "finite-differences": (10.59, 23812.98), "xlogit": (2.28, 24022.44)},
        100: {"autodiff": (5.37, 38418.69), "analytic": (10.54, 38418.69),
              "finite-differences": (42.68, 38418.69), "xlogit": (11.4, 38943.93)},
        500: {"autodiff": (30.27, 51974.99), "analytic": ("OOM", "OOM"),
              "finite-differences": (186.53, 51974.99),
              "xlogit": ("no convergence", "no convergence")},
    },
    "r": {
        12: {"autodiff": (1.02, 23812.98), "analytic": (1.67, 23812.98),
             "finite-differences": (10.22, 23812.98), "xlogit": (2.36, 24022.44)},
        50: {"autodiff": (4.52, 23809.98), "analytic": (8.92, 23809.98),
             "finite-differences": (28.37, 23809.98), "xlogit": (5.38, 23978.29)},
        100: {"autodiff": (8.95, 23809.97),
              "analytic": ("no convergence", "no convergence"),
              "finite-differences": (53.62, 23809.97), "xlogit": (10.06, 23976.35)},
    },
}  # fmt: skip

# The paper's Table 4 (N=10k, J=21, R=12): solver -> method -> seconds.
PAPER_TABLE4 = pd.DataFrame(
    {
        "autodiff": [0.96, 6.96, 2.69, 0.58, 2.00, 0.81],
        "analytic": [1.73, 18.15, 6.75, 1.05, 4.87, 1.24],
        "finite-differences": [10.59, 90.75, 47.84, 4.80, 35.00, 5.36],
    },
    index=pd.Index(["BFGS", "CG", "Newton-CG", "L-BFGS-B", "TNC", "SLSQP"], name="solver"),
)


def paper_table2(dim: str, what: str = "time") -> pd.DataFrame:
    """The paper's Table 2 (``what="time"``) or Table 3 (``"neg_loglik"``) block for ``dim``."""
    if dim not in _P2:
        raise ValueError(f"dim must be one of {sorted(_P2)}, got {dim!r}")
    k = {"time": 0, "neg_loglik": 1}[what]
    frame = pd.DataFrame(
        {v: {m: cell[k] for m, cell in row.items()} for v, row in _P2[dim].items()}
    )
    return frame.T.rename_axis(dim.upper())


def load(*paths) -> pd.DataFrame:
    """Records of one or more JSON Lines files as a flat DataFrame (provenance flattened)."""
    rows = []
    for path in paths:
        for rec in read(path):
            prov = rec.pop("provenance", {}) or {}
            rec["cpu"] = prov.get("cpu")
            rec["cores"] = prov.get("cores")
            rec["gpu"] = prov.get("gpu")
            rec["date"] = prov.get("date")
            rec["git_commit"] = prov.get("git_commit")
            rec["command"] = prov.get("command")
            rec["jax_version"] = (prov.get("versions") or {}).get("jax")
            rec["source"] = Path(path).name
            rows.append(rec)
    if not rows:
        raise ValueError(f"no records in {paths}")
    df = pd.DataFrame(rows)
    df["method"] = [_method(r) for r in df.itertuples()]
    return _without_resumed_interruptions(df)


def _without_resumed_interruptions(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` less each ``"interrupted"`` record whose run (``key``, ``rep``) was measured
    again later: a resume replaces it, so it is no run of its own."""
    if "status" not in df or "key" not in df:
        return df
    rep = df["rep"].fillna(0) if "rep" in df else pd.Series(0, index=df.index)
    run = df["key"].astype(str) + "/" + rep.astype(int).astype(str)
    later = run.map(run.value_counts()) > 1
    return df[~((df.status == "interrupted") & later)].reset_index(drop=True)


METHOD_NAMES = {  # short column names for Table 2
    "finite-differences": "FD",
    "analytic": "analytic",
    "autodiff": "autodiff",
    "analytic-fused": "fit(data)",
    "device-loop": "device loop",
    "xlogit (defaults)": "xlogit defaults",
    "xlogit (ours)": "xlogit L-BFGS-B",
    "xlogit (ours-bfgs)": "xlogit BFGS",
}


def _method(r) -> str:
    if r.kind == "xlogit":
        name = f"xlogit ({r.variant})"
    elif r.kind == "device-loop":
        name = "device-loop"
    elif r.kind in ("pandas", "jax-loop"):
        return r.label
    else:
        name = r.gradient
    return METHOD_NAMES.get(name, name)


TIMES = ("fit_s_median", "end_to_end_s_first")


def collapse(df: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration (``key``) from its runs in separate processes.

    Times (``fit_s_median``, ``end_to_end_s_first``) become the median over the runs
    that converged, with their range as ``*_low`` and ``*_high``; other numbers are
    medians over every run. ``runs`` and ``converged`` count them; ``status`` is "ok"
    only when every run converged, and ``outcome`` then says how many did.
    """
    rows = []
    for _, g in df.groupby("key", sort=False):
        ok = g[g.status == "ok"]
        row = g.iloc[0].copy()
        for col in g.columns:
            numeric = pd.api.types.is_numeric_dtype(g[col]) and not pd.api.types.is_bool_dtype(
                g[col]
            )
            if numeric and col not in TIMES and g[col].nunique() > 1:
                row[col] = g[col].median()
        for col in (c for c in TIMES if c in g):
            times = (ok if len(ok) else g)[col]
            row[col], row[col + "_low"], row[col + "_high"] = (
                times.median(),
                times.min(),
                times.max(),
            )
        row["runs"], row["converged"] = len(g), len(ok)
        if 0 < len(ok) < len(g):
            bad = g[g.status != "ok"].iloc[0]
            row["status"] = bad.status
            row["outcome"] = f"{len(ok)} of {len(g)} runs converged; {bad.outcome}"
        rows.append(row)
    return pd.DataFrame(rows).reset_index(drop=True)


def portable_command(command) -> str:
    """``command`` without the absolute paths of the machine that ran it: the interpreter
    becomes ``python``, the harness's ``__main__.py`` becomes ``-m mlejax_helpers.bench``."""
    if not isinstance(command, str):
        return "none"
    words = []
    for word in shlex.split(command):
        if word.endswith("mlejax_helpers/bench/__main__.py"):
            word = "-m mlejax_helpers.bench"
        elif word.startswith("/"):
            name = Path(word).name
            word = "python" if name.startswith("python") else name
        words.append(word)
    return " ".join(words)


def provenance_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per distinct machine/commit/command behind the records: no absolute paths,
    "none" where a field is empty (no GPU, say), how many records each command wrote and
    when it started (a run stamps its provenance once, as it starts)."""
    cols = ["source", "cpu", "cores", "gpu", "jax_version", "git_commit", "command"]
    df = df.assign(
        command=df["command"].map(portable_command), source=df["source"].map(lambda s: Path(s).name)
    )
    out = df[cols + ["key", "date"]].astype({"cores": "string"}).fillna("none")
    out = out.groupby(cols).agg(records=("key", "size"), started=("date", "min"))
    return out.reset_index()


def cell(row, value: str = "fit_s_median") -> str:
    """A table cell: the median time (``value``), or the failure (timed out, out of
    memory, did not converge)."""
    if row["status"] in ("ok", "did not converge") and pd.notna(row.get(value)):
        note = " (not converged)" if row["status"] == "did not converge" else ""
        return f"{significant(row[value])}{note}"
    return str(row.get("outcome", row["status"]))


def table1(df: pd.DataFrame) -> pd.DataFrame:
    """Our Table 1 beside the paper's, with the ratio of each row to the fastest."""
    ours = collapse(df[df.suite == "table1"])
    ours["data"] = np.where(ours.kind == "pandas", "pandas", "jnp")
    keys = ["data", "gradient", "jit_loglik", "jit_grad"]
    times = ["fit_s_median", "fit_s_median_low", "fit_s_median_high", "end_to_end_s_first"]
    out = ours[keys + times + ["compile_s", "nit", "nfev", "neg_loglik", "runs", "outcome"]]
    out = out.merge(PAPER_TABLE1, on=keys, how="left")
    out["x fastest (ours)"] = out["fit_s_median"] / out["fit_s_median"].min()
    out["x fastest (paper)"] = out["paper time (s)"] / out["paper time (s)"].min()
    return (
        out.rename(
            columns={
                "fit_s_median": "fit s (median)",
                "fit_s_median_low": "low",
                "fit_s_median_high": "high",
                "end_to_end_s_first": "end to end s",
                "compile_s": "compile s",
                "neg_loglik": "-LL",
            }
        )
        .set_index(keys)
        .sort_index(ascending=[False, True, True, True])
    )


TABLE2_BASE = {"n": 10_000, "j": 20, "r": 12}


def table2(df: pd.DataFrame, dim: str, value: str = "fit_s_median") -> pd.DataFrame:
    """Our Table 2/3 block for ``dim`` (n, j or r): rows = values of dim, columns = methods.

    ``value="cell"`` shows fit-only times with failures spelled out, ``"cell_e2e"`` the
    same for end-to-end times; any record column works too (``"neg_loglik"``,
    ``"neg_loglik_common"``, ``"peak_rss_bytes"``, ...). Runs in separate processes are
    collapsed first (:func:`collapse`).
    """
    if dim not in TABLE2_BASE:
        raise ValueError(f"dim must be one of n, j, r; got {dim!r}")
    sub = df[df.suite == "table2"]
    for other, base in TABLE2_BASE.items():
        if other != dim:
            sub = sub[sub[other] == base]
    sub = _with_cells(collapse(sub))
    out = sub.pivot_table(index=dim, columns="method", values=value, aggfunc="first")
    order = [m for m in METHOD_NAMES.values() if m in out.columns]
    return out[order].rename_axis(dim.upper())


XLOGIT_RUNS = {  # Table 2's xlogit columns, as a reader needs them named
    "xlogit defaults": "defaults",
    "xlogit L-BFGS-B": "L-BFGS-B, our start",
    "xlogit BFGS": "BFGS, our start",
}


def table2_beside_paper(df: pd.DataFrame) -> pd.DataFrame:
    """Table 2 in one: a row per size varied (N, J or R from the base case, which is the
    first row and is not repeated); for each of the paper's three gradients our fit-only
    median beside the paper's time, then xlogit's fastest converging run here (named)
    beside the paper's xlogit, and ``fit(data)``. Failures are spelled out (:func:`cell`)."""
    blocks = []
    for dim in ("n", "j", "r"):
        ours, paper = table2(df, dim, "cell"), paper_table2(dim)
        secs = table2(df, dim, "fit_s_median")
        status = table2(df, dim, "status")
        xl = [c for c in ours.columns if c.startswith("xlogit")]
        block = pd.DataFrame(index=ours.index)
        for method, short in (("autodiff", "autodiff"), ("analytic", "analytic"),
                              ("finite-differences", "FD")):  # fmt: skip
            block[(method, "ours")] = ours[short]
            block[(method, "paper")] = paper[method].reindex(ours.index)
        ok = secs[xl].where(status[xl] == "ok")
        best = ok.idxmin(axis=1)
        block[("xlogit", "ours")] = [
            f"{significant(ok.loc[i, b])} ({XLOGIT_RUNS.get(b, b)})" if isinstance(b, str) else "-"
            for i, b in best.items()
        ]
        block[("xlogit", "paper")] = paper["xlogit"].reindex(ours.index)
        block[("fit(data)", "ours")] = ours["fit(data)"]
        if dim != "n":  # the base case is the N block's first row already
            block = block.drop(index=TABLE2_BASE[dim], errors="ignore")
        block.index = pd.MultiIndex.from_product([[dim.upper()], block.index])
        blocks.append(block)
    out = pd.concat(blocks)
    out.columns = pd.MultiIndex.from_tuples(out.columns)
    return out.rename_axis(["varied", "value"])


def table4_beside_paper(df: pd.DataFrame) -> pd.DataFrame:
    """Table 4 (solver x gradient, fit-only medians) beside the paper's, column pairs."""
    ours = table4(df, "cell")
    paper = PAPER_TABLE4.reindex(ours.index)
    cols = {}
    for method in ("autodiff", "analytic", "finite-differences"):
        cols[(method, "ours")] = ours[method].fillna("not run")
        cols[(method, "paper")] = paper[method]
    return pd.DataFrame(cols).rename_axis("solver")


def _with_cells(sub: pd.DataFrame) -> pd.DataFrame:
    sub = sub.copy()
    sub["cell"] = [cell(r) for _, r in sub.iterrows()]
    sub["cell_e2e"] = [cell(r, "end_to_end_s_first") for _, r in sub.iterrows()]
    return sub


def table4(df: pd.DataFrame, value: str = "fit_s_median") -> pd.DataFrame:
    """Our Table 4: solver x gradient method."""
    sub = _with_cells(collapse(df[df.suite == "table4"]))
    return sub.pivot_table(index="solver", columns="gradient", values=value, aggfunc="first")


def fastest_converged(df: pd.DataFrame, **where) -> pd.Series:
    """The fastest converged configuration matching ``where`` (column=value pairs), its
    runs in separate processes collapsed (:func:`collapse`)."""
    sub = collapse(df)
    sub = sub[sub.status == "ok"]
    for k, v in where.items():
        sub = sub[sub[k] == v]
    if sub.empty:
        raise ValueError(f"no converged record matches {where}")
    return sub.loc[sub["fit_s_median"].idxmin()]


def across_processes(df: pd.DataFrame, value: str = "fit_s_median") -> pd.DataFrame:
    """One row per configuration: the median, min and max of ``value`` over its converged
    runs in separate processes (``rep``), and how many there were."""
    ok = df[df.status == "ok"]
    grouped = ok.groupby(["key", "label", "suite", "n", "j", "r"])[value]
    out = grouped.agg(median="median", low="min", high="max", runs="size")
    return out.reset_index()


def runs_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration and outcome (label, N, R, status): how many runs, and the
    medians of fit-only, end-to-end (the first fit in a fresh process, compilation
    included) and compile seconds (NaN where a run has none)."""
    return df.groupby(["label", "n", "r", "status"], dropna=False).agg(
        runs=("status", "size"),
        fit_s=("fit_s_median", "median"),
        end_to_end_s=("end_to_end_s_first", "median"),
        compile_s=("compile_s", "median"),
    )


def tool_of(label: str) -> str:
    """The tool a record's label names: ``"xlogit"`` or ``"jaxlogit"`` for the peers'
    runs, ``"mlejax"`` for every other (ours: ``ml.fit``, or chapter 6's kernel in the
    headtohead suite, whose labels name the gradient)."""
    first = label.split(",")[0].split(" ")[0]
    return first if first in ("xlogit", "jaxlogit") else "mlejax"


def start_of(label: str) -> str:
    """``"own"`` for a run from the tool's own default start (xlogit's multinomial logit
    start, ours ``start="mnl"``, xlogit's "defaults" row), else ``"common"``."""
    return "own" if ("MNL start" in label or "defaults" in label) else "common"


def fastest_per_tool(df: pd.DataFrame, value: str, by=("n", "r")) -> pd.DataFrame:
    """Each tool's fastest converging configuration per group ``by``: the
    :func:`across_processes` row of ``value`` with the smallest median, with columns
    ``tool`` and ``start`` (:func:`tool_of`, :func:`start_of`) and the median -LL of its
    converged runs. A tool with no converged run in a group has no row there."""
    rows = across_processes(df, value)
    nll = df[df.status == "ok"].groupby("key").neg_loglik.median()
    rows = rows.assign(
        tool=rows.label.map(tool_of), start=rows.label.map(start_of), neg_loglik=rows.key.map(nll)
    )
    best = rows.loc[rows.groupby([*by, "tool"])["median"].idxmin()]
    return best.set_index([*by, "tool"]).sort_index()


def verdict(a: pd.Series, b: pd.Series) -> str:
    """Compare two rows of :func:`across_processes`: ``"tie"`` when their ranges (low to
    high) overlap, else which label is faster and by what ratio of medians."""
    if a["low"] <= b["high"] and b["low"] <= a["high"]:
        return "tie (the ranges overlap)"
    fast, slow = (a, b) if a["median"] < b["median"] else (b, a)
    return f"{fast['label']} faster, {slow['median'] / fast['median']:.2f}x"
