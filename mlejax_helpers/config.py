"""The book's one size knob and its float64 set-up.

Every notebook asks :func:`pick` for its problem sizes and repeat counts, so a
single environment variable decides how much work a run does:

``MLEJAX_SIZE=small``
    what the test-suite uses: every cell runs, on tiny problems, in seconds.
``MLEJAX_SIZE=full`` (the default)
    the sizes a reader should see, used by the site build.
"""

from __future__ import annotations

import os

SIZE_ENV = "MLEJAX_SIZE"
SIZES = ("small", "full")
DEFAULT_SIZE = "full"


def size() -> str:
    """Return the current size, ``"small"`` or ``"full"``, from ``$MLEJAX_SIZE``."""
    value = os.environ.get(SIZE_ENV, DEFAULT_SIZE).strip().lower() or DEFAULT_SIZE
    if value not in SIZES:
        raise ValueError(f"{SIZE_ENV} must be one of {SIZES}, got {value!r}")
    return value


def pick(small, full):
    """Return ``small`` when the book runs small (tests), else ``full``."""
    return small if size() == "small" else full


def enable_x64() -> None:
    """Switch JAX to float64 by default (call before creating any array).

    Maximum likelihood needs it: a log-likelihood summed over 10^4 observations
    is of order 10^4, and float32 carries about 7 significant digits, so changes
    in the last 10^-3 of the objective -- exactly where an optimiser decides it
    has converged -- are lost in round-off.
    """
    import jax

    jax.config.update("jax_enable_x64", True)
