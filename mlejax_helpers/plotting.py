"""Figure helpers shared by the chapters: contours with optimiser paths, error curves."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ._validate import as_float_array, check_callable


def contour_with_paths(
    f,
    xlim=(-2.0, 2.0),
    ylim=(-1.0, 3.0),
    paths=None,
    *,
    ax=None,
    levels: int = 30,
    log_levels: bool = True,
    minimum=None,
    grid: int = 300,
    title: str | None = None,
):
    """Contour plot of ``f`` on a rectangle, with optimiser paths drawn on top.

    ``f`` maps an array of shape ``(2, ...)`` to values of shape ``(...)``.
    ``paths`` maps a label to an array of iterates of shape ``(k, 2)``.
    ``minimum`` (shape ``(2,)``) is marked with a star. Returns the axes.
    """
    check_callable(f, "f")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4.5))
    xs = np.linspace(*xlim, grid)
    ys = np.linspace(*ylim, grid)
    xx, yy = np.meshgrid(xs, ys)
    zz = np.asarray(f(np.stack([xx, yy])))
    if log_levels:
        shift = float(np.min(zz)) - 1e-3  # log-spaced above the minimum, negative f included
        lv = np.geomspace(1e-3, float(np.max(zz)) - shift, levels) + shift
        ax.contour(xx, yy, zz, levels=np.unique(lv), cmap="viridis", linewidths=0.7)
    else:
        ax.contour(xx, yy, zz, levels=levels, cmap="viridis", linewidths=0.7)
    for label, path in (paths or {}).items():
        p = as_float_array(path, f"paths[{label!r}]", shape=(None, 2))
        ax.plot(p[:, 0], p[:, 1], ".-", lw=1.2, ms=3, label=f"{label} ({len(p) - 1} steps)")
    if minimum is not None:
        m = as_float_array(minimum, "minimum", shape=(2,))
        ax.plot(*m, "r*", ms=14, label="minimiser")
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    if title:
        ax.set_title(title)
    if paths or minimum is not None:
        ax.legend(fontsize=8, loc="best")
    return ax


def error_curves(errors, *, ax=None, ylabel="error", xlabel="iteration", title=None):
    """Plot each error sequence of ``errors`` (label -> 1-D array) on a log y-axis."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    for label, e in errors.items():
        e = np.asarray(e, dtype=float)
        e = np.where(e > 0, e, np.nan)
        ax.semilogy(np.arange(len(e)), e, ".-", label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    return ax


def loglog(series, *, ax=None, xlabel="x", ylabel="y", title=None, marker="o-"):
    """Log-log plot of ``series``: label -> ``(x, y)`` pair of 1-D arrays."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    for label, (x, y) in series.items():
        ax.loglog(np.asarray(x, float), np.asarray(y, float), marker, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    return ax
