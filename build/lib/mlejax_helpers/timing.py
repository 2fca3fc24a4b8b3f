"""Honest timing of JAX (and NumPy) functions.

JAX dispatches work asynchronously: a call returns as soon as the work is
queued, so a stopwatch around it measures almost nothing. Every helper here
waits with :func:`jax.block_until_ready`, times the first call (which includes
tracing and compilation for a jitted function) apart from the later calls, and
reports the median of repeats.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ._validate import check_callable, positive_int


def block(x):
    """Wait until every JAX array in the pytree ``x`` is computed; other values pass through."""
    import jax

    return jax.block_until_ready(x)


@dataclass(frozen=True)
class Timing:
    """Times of one function, in seconds.

    ``first_call_s`` is the wall time of the first call (for a jitted function:
    trace + compile + one run). ``run_s`` holds one entry per repeat (each the
    average over ``number`` calls). ``compile_s`` is ``first_call_s`` minus the
    median run: the one-off cost a jitted function charges on its first call.
    """

    first_call_s: float
    run_s: np.ndarray
    number: int

    @property
    def median_s(self) -> float:
        return float(np.median(self.run_s))

    @property
    def min_s(self) -> float:
        return float(np.min(self.run_s))

    @property
    def max_s(self) -> float:
        return float(np.max(self.run_s))

    @property
    def compile_s(self) -> float:
        return max(self.first_call_s - self.median_s, 0.0)

    def __str__(self) -> str:
        return (
            f"first call {format_seconds(self.first_call_s)}, then median "
            f"{format_seconds(self.median_s)} (min {format_seconds(self.min_s)}, "
            f"max {format_seconds(self.max_s)}, {len(self.run_s)} repeats x {self.number})"
        )


def format_seconds(s: float) -> str:
    """Format a duration with a sensible unit: ``'3.2 ms'``, ``'1.25 s'``."""
    if s < 1e-6:
        return f"{s * 1e9:.0f} ns"
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.3g} s"


def time_call(fn, *args, repeats: int = 7, number: int = 1, **kwargs) -> Timing:
    """Time ``fn(*args, **kwargs)``: the first call apart, then ``repeats`` x ``number`` calls.

    For a jitted function the first call includes tracing and compilation only
    if this function has not yet been called with arguments of these shapes.

    Each repeat's time is the mean over ``number`` back-to-back calls (use
    ``number > 1`` for functions that take microseconds). The result of every
    call is blocked on, so asynchronous dispatch cannot hide work.
    """
    check_callable(fn, "fn")
    repeats = positive_int(repeats, "repeats")
    number = positive_int(number, "number")
    t0 = time.perf_counter()
    block(fn(*args, **kwargs))
    first = time.perf_counter() - t0
    runs = np.empty(repeats)
    for k in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            out = fn(*args, **kwargs)
        block(out)
        runs[k] = (time.perf_counter() - t0) / number
    return Timing(first, runs, number)


def time_compile(jitted, *args, fresh: bool = True, **kwargs) -> tuple[float, float]:
    """Seconds to trace (lower) and to compile a ``jax.jit`` function for these arguments.

    Uses JAX's ahead-of-time API: ``jitted.lower(*args).compile()``. Returns
    ``(trace_s, compile_s)``. JAX caches traces and compiled programs per
    function, so a second measurement of the same function would report almost
    nothing; with ``fresh=True`` (the default) this helper first empties JAX's
    caches with ``jax.clear_caches()``, so every jitted function in the
    process compiles again on its next call.
    """
    import jax

    if not hasattr(jitted, "lower"):
        raise TypeError(f"jitted must be a function made by jax.jit, got {type(jitted).__name__}")
    if fresh:
        jax.clear_caches()
    t0 = time.perf_counter()
    lowered = jitted.lower(*args, **kwargs)
    t1 = time.perf_counter()
    lowered.compile()
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1


def timing_table(timings: dict[str, Timing]):
    """A pandas DataFrame of several :class:`Timing` results, with speed-up against the slowest."""
    import pandas as pd

    if not timings:
        raise ValueError("timings must name at least one Timing")
    rows = []
    for name, t in timings.items():
        if not isinstance(t, Timing):
            raise TypeError(f"timings[{name!r}] must be a Timing, got {type(t).__name__}")
        rows.append(
            {
                "method": name,
                "first call (s)": t.first_call_s,
                "median run (s)": t.median_s,
                "min run (s)": t.min_s,
                "max run (s)": t.max_s,
            }
        )
    df = pd.DataFrame(rows).set_index("method")
    df["speed-up vs slowest"] = df["median run (s)"].max() / df["median run (s)"]
    return df
