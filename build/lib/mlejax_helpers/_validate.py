"""Argument checks shared by every helper.

Each function returns a clean NumPy array or raises a ``TypeError`` /
``ValueError`` whose message names the argument, what was expected and what
was received.
"""

from __future__ import annotations

import numbers

import numpy as np


def _describe(x) -> str:
    shape = getattr(x, "shape", None)
    dtype = getattr(x, "dtype", None)
    if shape is not None:
        return f"{type(x).__name__} with shape {tuple(shape)} and dtype {dtype}"
    return f"{type(x).__name__} {x!r}"[:120]


def as_float_array(x, name: str, *, ndim: int | None = None, shape=None, finite=True) -> np.ndarray:
    """Return ``x`` as a float64 NumPy array after checking type, shape and values.

    ``shape`` may contain ``None`` for a free axis. Raises ``TypeError`` for
    non-numeric input and ``ValueError`` for a wrong shape or non-finite values.
    """
    if isinstance(x, (str, bytes)) or x is None:
        raise TypeError(f"{name} must be a numeric array, got {_describe(x)}")
    try:
        arr = np.asarray(x)
    except Exception as exc:  # pragma: no cover - exotic objects
        raise TypeError(f"{name} must be array-like, got {_describe(x)}") from exc
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise TypeError(f"{name} must hold real numbers, got {_describe(x)}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real, got complex dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if shape is not None:
        if arr.ndim != len(shape) or any(
            s is not None and s != a for s, a in zip(shape, arr.shape, strict=True)
        ):
            want = tuple("any" if s is None else s for s in shape)
            raise ValueError(f"{name} must have shape {want}, got {arr.shape}")
    if finite and not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(
            f"{name} must be finite, found {arr[tuple(bad)]} at index {tuple(int(b) for b in bad)}"
        )
    return arr


def as_vector(x, name: str, size: int | None = None) -> np.ndarray:
    """A finite 1-D float64 vector, optionally of a given length."""
    return as_float_array(x, name, shape=(size,))


def as_square_matrix(a, name: str, size: int | None = None) -> np.ndarray:
    """A finite square float64 matrix, optionally ``size`` x ``size``."""
    arr = as_float_array(a, name, ndim=2)
    if arr.shape[0] != arr.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {arr.shape}")
    if size is not None and arr.shape[0] != size:
        raise ValueError(f"{name} must have shape ({size}, {size}), got {arr.shape}")
    return arr


def positive_number(x, name: str) -> float:
    """A finite float greater than zero."""
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_describe(x)}")
    if not np.isfinite(x) or x <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {x}")
    return float(x)


def positive_int(x, name: str) -> int:
    """An integer of at least one."""
    if isinstance(x, bool) or not isinstance(x, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {_describe(x)}")
    if x < 1:
        raise ValueError(f"{name} must be >= 1, got {x}")
    return int(x)


def check_callable(f, name: str):
    """Raise ``TypeError`` unless ``f`` can be called."""
    if not callable(f):
        raise TypeError(f"{name} must be callable, got {_describe(f)}")
    return f
