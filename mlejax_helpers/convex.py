"""Test functions and numerical checks of the optimality conditions.

Every test function takes ``x`` with ``x[0], x[1], ...`` as coordinates, so it
accepts a point of shape ``(n,)`` or a grid of shape ``(n, ...)`` (handy for
contour plots) and works under ``jax.grad`` / ``jax.hessian``.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from ._validate import as_square_matrix, positive_number


def quadratic(x, a: float = 1.0, b: float = 10.0):
    r"""Ill-conditioned convex quadratic :math:`f(x) = (a x_0^2 + b x_1^2)/2`.

    Its Hessian is ``diag(a, b)``, so the condition number is ``b / a``; the
    minimiser is the origin.
    """
    return 0.5 * (a * x[0] ** 2 + b * x[1] ** 2)


def rosenbrock(x, a: float = 1.0, b: float = 100.0):
    r"""Rosenbrock's banana :math:`(a - x_0)^2 + b (x_1 - x_0^2)^2`.

    Not convex; a unique minimiser at ``(a, a**2)`` at the end of a curved valley.
    """
    return (a - x[0]) ** 2 + b * (x[1] - x[0] ** 2) ** 2


def himmelblau(x):
    r"""Himmelblau's function :math:`(x_0^2 + x_1 - 11)^2 + (x_0 + x_1^2 - 7)^2`.

    Not convex: four local minima, all with value 0, one of them at ``(3, 2)``,
    a local maximum near ``(-0.27, -0.92)`` and four saddle points.
    """
    return (x[0] ** 2 + x[1] - 11) ** 2 + (x[0] + x[1] ** 2 - 7) ** 2


@dataclass(frozen=True)
class PSDCheck:
    """Outcome of :func:`check_psd`; ``bool(result)`` is ``result.ok``."""

    ok: bool
    eigenvalues: np.ndarray
    reason: str
    definite: bool = False  # every eigenvalue above the tolerance: positive definite

    def __bool__(self) -> bool:
        return self.ok


def check_psd(h, tol: float = 1e-10) -> PSDCheck:
    """Check that a symmetric matrix ``h`` of shape ``(n, n)`` is positive semi-definite.

    A matrix is PSD when every eigenvalue is >= 0; numerically we accept
    eigenvalues down to ``-tol * max(1, max|eigenvalue|)``. The result says
    which eigenvalue failed and along which direction, or that the matrix was
    not symmetric.
    """
    h = as_square_matrix(h, "h")
    tol = positive_number(tol, "tol")
    scale = max(1.0, float(np.max(np.abs(h))))
    asym = float(np.max(np.abs(h - h.T)))
    if asym > 1e-8 * scale:
        return PSDCheck(False, np.linalg.eigvals(h), f"not symmetric: max |h - h.T| = {asym:.3g}")
    eig, vec = np.linalg.eigh(0.5 * (h + h.T))
    floor = -tol * max(1.0, float(np.max(np.abs(eig))))
    if eig[0] < floor:
        direction = np.round(vec[:, 0], 4)
        return PSDCheck(
            False,
            eig,
            f"not PSD: smallest eigenvalue {eig[0]:.4g} < 0 along direction {direction}",
        )
    definite = bool(eig[0] > -floor)
    kind = "positive definite" if definite else "PSD but singular (an eigenvalue is ~0)"
    return PSDCheck(True, eig, f"{kind}: eigenvalues in [{eig[0]:.4g}, {eig[-1]:.4g}]", definite)


@dataclass(frozen=True)
class OptimalityCheck:
    """Outcome of :func:`check_optimality`."""

    gradient_norm: float
    hessian: PSDCheck
    is_stationary: bool
    verdict: str


def check_optimality(f, x, gtol: float = 1e-6) -> OptimalityCheck:
    """Check the first- and second-order conditions for a minimum of ``f`` at ``x``.

    Computes ``grad f(x)`` and ``hessian f(x)`` with JAX. ``x`` is a point of
    shape ``(n,)``. The verdict is one of "local minimum (strict)",
    "stationary, second-order test inconclusive", "saddle point or maximum"
    or "not stationary".
    """
    import jax

    x = jnp.asarray(np.asarray(x, dtype=float))
    g = np.asarray(jax.grad(f)(x))
    h = np.asarray(jax.hessian(f)(x))
    gnorm = float(np.max(np.abs(g)))
    psd = check_psd(h)
    stationary = gnorm <= gtol
    if not stationary:
        verdict = f"not stationary: max |gradient| = {gnorm:.3g} > {gtol:g}"
    elif not psd.ok:
        verdict = "saddle point or maximum: " + psd.reason
    elif psd.definite:  # the same threshold as check_psd: the two never disagree
        verdict = "local minimum (strict): gradient ~ 0 and Hessian positive definite"
    else:
        verdict = "stationary, second-order test inconclusive: Hessian is singular"
    return OptimalityCheck(gnorm, psd, stationary, verdict)
