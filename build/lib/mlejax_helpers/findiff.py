r"""Finite-difference derivatives: forward, central and complex-step.

For a step :math:`h` and unit vector :math:`e_j`:

* forward:  :math:`(f(x + h e_j) - f(x)) / h`, error :math:`O(h)`, ``n + 1`` calls;
* central:  :math:`(f(x + h e_j) - f(x - h e_j)) / 2h`, error :math:`O(h^2)`, ``2n`` calls;
* complex step: :math:`\operatorname{Im} f(x + i h e_j) / h`, error :math:`O(h^2)` with
  no subtractive cancellation, ``n`` calls, but ``f`` must accept complex input
  and be real-analytic (no ``abs``, no comparisons).

Round-off in ``f`` (relative size :math:`\epsilon \approx 2.2 \times 10^{-16}`) adds
an error of order :math:`\epsilon / h` to the first two, so the best steps are
about :math:`\sqrt\epsilon` (forward) and :math:`\epsilon^{1/3}` (central), scaled by ``|x|``.
"""

from __future__ import annotations

import numpy as np

from ._validate import as_vector, check_callable, positive_number

SCHEMES = ("forward", "central", "complex")
EPS = np.finfo(np.float64).eps


def default_step(x, scheme: str):
    """Usual step for ``scheme``: ``eps**(1/2)`` or ``eps**(1/3)`` times ``max(1, |x|)``."""
    power = {"forward": 1 / 2, "central": 1 / 3, "complex": 1.0}[_check_scheme(scheme)]
    h = EPS**power if scheme != "complex" else 1e-20
    return h * np.maximum(1.0, np.abs(np.asarray(x, dtype=float)))


def _check_scheme(scheme):
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    return scheme


def gradient(f, x, h=None, scheme: str = "central"):
    """Finite-difference gradient of scalar ``f`` at ``x`` (shape ``(n,)``); returns shape ``(n,)``.

    ``h`` is a positive scalar or ``None`` for :func:`default_step`.
    """
    check_callable(f, "f")
    x = as_vector(x, "x")
    _check_scheme(scheme)
    steps = default_step(x, scheme) if h is None else np.full(len(x), positive_number(h, "h"))
    g = np.empty(len(x))
    f0 = float(f(x)) if scheme == "forward" else None
    for j, hj in enumerate(steps):
        e = np.zeros(len(x))
        e[j] = hj
        if scheme == "forward":
            g[j] = (float(f(x + e)) - f0) / hj
        elif scheme == "central":
            g[j] = (float(f(x + e)) - float(f(x - e))) / (2 * hj)
        else:
            g[j] = np.imag(f(x + 1j * e)) / hj
    return g


def derivative(f, x: float, h: float, scheme: str = "central") -> float:
    """Finite-difference derivative of a scalar function of one real variable."""
    x = float(as_vector([x], "x")[0])
    return float(gradient(lambda v: f(v[0]), [x], h=h, scheme=scheme)[0])
