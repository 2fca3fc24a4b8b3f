r"""Is an estimate an optimum, and is every parameter identified? The tests behind ``success``.

**Convergence.** With the total gradient :math:`g` of the -LL and a positive
(semi)definite curvature matrix :math:`M` (the BHHH matrix :math:`S'S` after a fit,
the Hessian before standard errors), the *scaled gradient* :math:`g'M^{+}g` is
twice the decrease in -LL that a Newton step on the quadratic model would still
make. It does not change when a parameter is rescaled (an attribute measured in
cents rather than euros), unlike ``max|g|``. A fit has converged when
:math:`g'M^{+}g \le` :data:`GRAD_TOL` (Stata's ``nrtolerance`` test, 1e-5), whatever
the optimiser's own flag said.

**Identification.** A parameter is not identified when the curvature matrix is
singular in its direction: its row is exactly zero (an attribute constant across
alternatives), or the matrix scaled to unit diagonal,
:math:`D^{-1/2} M D^{-1/2}`, has an eigenvalue below :data:`RANK_TOL` (collinear
attributes); the parameters named are those with weight in that eigenvector.
"""

from __future__ import annotations

import numpy as np

GRAD_TOL = 1e-5  # g' M^+ g at a converged fit (Stata's nrtolerance default)
RANK_TOL = 1e-10  # smallest eigenvalue of the unit-diagonal curvature matrix


def unidentified(matrix, names) -> list[str]:
    """Names of the parameters along which ``matrix`` ``(k, k)`` (Hessian or BHHH) is
    singular: a zero row, or weight above 0.1 in an eigenvector of the unit-diagonal
    matrix whose eigenvalue is below :data:`RANK_TOL`."""
    m = np.asarray(matrix, dtype=float)
    d = np.diag(m).copy()
    zero = ~(np.abs(d) > 0) | ~np.isfinite(d)
    keep = np.flatnonzero(~zero)
    out = set(np.flatnonzero(zero).tolist())
    if keep.size:
        scale = 1.0 / np.sqrt(np.abs(d[keep]))
        c = m[np.ix_(keep, keep)] * scale[:, None] * scale[None, :]
        eig, vec = np.linalg.eigh(0.5 * (c + c.T))
        for j in np.flatnonzero(np.abs(eig) < RANK_TOL):
            out.update(keep[np.abs(vec[:, j]) > 0.1].tolist())
    return [names[i] for i in sorted(out)]


def scaled_gradient(grad, matrix) -> float:
    r""":math:`g'M^{+}g` (pseudo-inverse: directions that are not identified are left out)."""
    g = np.asarray(grad, dtype=float)
    return float(g @ np.linalg.pinv(np.asarray(matrix, dtype=float), hermitian=True) @ g)


def convergence(grad, bhhh, names, optimiser_message) -> tuple[bool, str, float]:
    """``(success, message, g'B^+g)`` after a fit, from the total gradient and the BHHH
    matrix at the estimate. ``success`` needs a finite gradient, every parameter
    identified and the scaled gradient at most :data:`GRAD_TOL`; the message says
    which test decided, then what the optimiser said."""
    g = np.asarray(grad, dtype=float)
    if not np.all(np.isfinite(g)) or not np.all(np.isfinite(bhhh)):
        return False, f"not converged: non-finite gradient; {optimiser_message}", float("nan")
    crit = scaled_gradient(g, bhhh)
    lost = unidentified(bhhh, names)
    if lost:
        return (
            False,
            f"not identified: parameter(s) {lost} can change without changing the "
            f"likelihood (an attribute constant within every situation, or attributes that "
            f"are collinear); drop or fix them. Optimiser: {optimiser_message}",
            crit,
        )
    if crit > GRAD_TOL:
        return (
            False,
            f"not converged: scaled gradient g'B^-1 g = {crit:.3g} > {GRAD_TOL:g}; "
            f"optimiser: {optimiser_message}",
            crit,
        )
    return (
        True,
        f"converged: g'B^-1 g = {crit:.3g} <= {GRAD_TOL:g}; optimiser: {optimiser_message}",
        crit,
    )


def require_optimum(grad, hessian, names) -> None:
    """Raise ``ValueError`` unless standard errors make sense at this point: every
    parameter identified (named otherwise), the Hessian positive definite, and the
    scaled gradient :math:`g'H^{-1}g` at most :data:`GRAD_TOL`."""
    h = np.asarray(hessian, dtype=float)
    lost = unidentified(h, names)
    if lost:
        raise ValueError(
            f"parameter(s) {lost} are not identified (the Hessian is singular in their "
            "direction: an attribute constant within every situation, or collinear "
            "attributes), so they have no standard error: drop or fix them and fit again"
        )
    eig = np.linalg.eigvalsh(0.5 * (h + h.T))
    if not np.all(np.isfinite(eig)) or eig[0] <= 0:
        raise ValueError(
            f"the Hessian at theta is not positive definite (smallest eigenvalue {eig[0]:.3g}): "
            "theta is not a local minimum, so Hessian-based standard errors are meaningless"
        )
    crit = scaled_gradient(grad, h)
    if not crit <= GRAD_TOL:
        raise ValueError(
            f"theta is not an optimum: the scaled gradient g'H^-1 g is {crit:.3g} > {GRAD_TOL:g}, "
            "so standard errors there are meaningless: fit (again) to convergence first"
        )
