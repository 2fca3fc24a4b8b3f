r"""Gradient descent, Newton and quasi-Newton (BFGS, SR1) methods, written to be read.

All share the update :math:`w_{t+1} = w_t - \gamma_t P_t^{-1} \nabla f(w_t)`:

* gradient descent: :math:`P_t = I`, a fixed step :math:`\gamma`;
* Newton: :math:`P_t = \nabla^2 f(w_t)`, :math:`\gamma_t = 1`;
* quasi-Newton: :math:`P_t = B_t`, a secant approximation of the Hessian
  updated from :math:`s_t = w_{t+1} - w_t` and :math:`y_t = \nabla f(w_{t+1}) - \nabla f(w_t)`
  so that :math:`B_{t+1} s_t = y_t` (the secant equation), with
  :math:`\gamma_t` from a line search.

Functions work on NumPy float64 vectors of shape ``(n,)`` and matrices of shape
``(n, n)``. The optimisers return an :class:`OptimPath` holding every iterate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._validate import as_square_matrix, as_vector, check_callable, positive_int, positive_number


def _check_update_args(m, s, y, m_name):
    m = as_square_matrix(m, m_name)
    n = m.shape[0]
    return m, as_vector(s, "s", n), as_vector(y, "y", n)


def curvature_ok(s, y) -> bool:
    """The curvature condition ``y's > 0``, with a relative margin: ``y's > 1e-12 |s| |y|``.

    The updates below refuse a pair that fails it, and :func:`bfgs` skips such a
    pair, with this one test, so the two can never disagree.
    """
    return float(s @ y) > 1e-12 * float(np.linalg.norm(s) * np.linalg.norm(y))


def bfgs_update_inverse(h, s, y):
    r"""BFGS update of an inverse-Hessian approximation ``h`` (shape ``(n, n)``).

    .. math:: H_{+} = (I - \rho s y^\top) H (I - \rho y s^\top) + \rho s s^\top,
              \quad \rho = 1 / (y^\top s).

    ``H_+`` satisfies the secant equation ``H_+ y = s`` and stays symmetric
    positive definite when ``h`` is and the curvature condition ``y's > 0``
    holds. Raises ``ValueError`` when it does not hold (a Wolfe line search
    guarantees it).
    """
    h, s, y = _check_update_args(h, s, y, "h")
    sy = float(s @ y)
    if not curvature_ok(s, y):
        raise ValueError(
            f"curvature condition fails: y's = {sy:.3g} <= 0, so the BFGS update would not "
            "stay positive definite; skip the update or use a Wolfe line search"
        )
    return inverse_update(h, s, y, np)


def inverse_update(h, s, y, xp):
    """The formula of :func:`bfgs_update_inverse` alone, for ``xp`` = ``numpy`` or
    ``jax.numpy``: no checks, so that a jitted loop can call it (it must check ``y's > 0``)."""
    rho = 1.0 / (s @ y)
    v = xp.eye(s.shape[0]) - rho * xp.outer(s, y)
    return v @ h @ v.T + rho * xp.outer(s, s)


def bfgs_update_hessian(b, s, y):
    r"""BFGS update of a Hessian approximation ``b`` (the dual form of :func:`bfgs_update_inverse`).

    .. math:: B_{+} = B - \frac{B s s^\top B}{s^\top B s} + \frac{y y^\top}{y^\top s}

    Satisfies ``B_+ s = y``; requires ``y's > 0`` (raises ``ValueError`` otherwise).
    """
    b, s, y = _check_update_args(b, s, y, "b")
    sy = float(s @ y)
    if not curvature_ok(s, y):
        raise ValueError(f"curvature condition fails: y's = {sy:.3g} <= 0")
    bs = b @ s
    return b - np.outer(bs, bs) / float(s @ bs) + np.outer(y, y) / sy


def sr1_update(b, s, y, r: float = 1e-8):
    r"""Symmetric rank-one update of a Hessian approximation ``b``; returns ``(b_new, skipped)``.

    .. math:: B_{+} = B + \frac{(y - Bs)(y - Bs)^\top}{(y - Bs)^\top s}

    SR1 satisfies ``B_+ s = y`` but need not stay positive definite (which lets
    it track an indefinite Hessian). Its denominator can vanish, so the update
    is skipped (``b`` returned unchanged, ``skipped=True``) when
    ``|(y - Bs)'s| < r ||s|| ||y - Bs||`` (Nocedal & Wright, eq. 6.26).
    """
    b, s, y = _check_update_args(b, s, y, "b")
    r = positive_number(r, "r")
    v = y - b @ s
    denom = float(v @ s)
    if abs(denom) < r * np.linalg.norm(s) * np.linalg.norm(v):
        return b.copy(), True
    return b + np.outer(v, v) / denom, False


@dataclass
class OptimPath:
    """The result of one of this module's optimisers, with every iterate kept.

    ``path`` has shape ``(nit + 1, n)``; ``nfev``/``njev`` count calls of the
    function and of its gradient, as ``scipy.optimize.OptimizeResult`` does.
    """

    x: np.ndarray
    fun: float
    path: np.ndarray
    nit: int
    nfev: int
    njev: int
    success: bool
    message: str
    values: np.ndarray = field(default_factory=lambda: np.empty(0))


class _Counted:
    """Wrap ``f`` and ``grad`` with call counters and float64 conversion."""

    def __init__(self, f, grad):
        self.f, self.grad = f, grad
        self.nfev = self.njev = 0

    def value(self, x):
        self.nfev += 1
        return float(self.f(x))

    def gradient(self, x):
        self.njev += 1
        return np.asarray(self.grad(x), dtype=np.float64)


def _prepare(f, grad, x0):
    if f is not None:
        check_callable(f, "f")
    check_callable(grad, "grad")
    return _Counted(f, grad), as_vector(x0, "x0")


def _iterate(c, x, maxiter, gtol, step_fn):
    """Shared loop: stop at ``max|g| <= gtol``, after ``maxiter`` steps or on blow-up."""
    path = [x.copy()]
    message, success = f"maximum number of iterations ({maxiter}) reached", False
    for _ in range(maxiter):
        g = c.gradient(x)
        if np.max(np.abs(g)) <= gtol:
            message, success = "gradient below gtol", True
            break
        try:
            x = step_fn(x, g)
        except StopIteration as stop:  # the step cannot be taken; the reason says why
            message = str(stop)
            break
        path.append(x.copy())
        if not np.all(np.isfinite(x)) or np.max(np.abs(x)) > 1e12:
            message = "diverged: iterates blew up"
            break
    return x, path, success, message


def gradient_descent(grad, x0, step: float, maxiter: int = 1000, gtol: float = 1e-8, f=None):
    """Fixed-step gradient descent ``x <- x - step * grad(x)``.

    Stops when ``max|grad| <= gtol`` (success), after ``maxiter`` steps, or when
    the iterates blow up (``|x| > 1e12``: "diverged"). ``f``, if given, is
    evaluated at every iterate for ``values``.
    """
    c, x = _prepare(f, grad, x0)
    step = positive_number(step, "step")
    maxiter = positive_int(maxiter, "maxiter")
    x, path, success, message = _iterate(c, x, maxiter, gtol, lambda x, g: x - step * g)
    return _result(c, f, x, path, success, message)


def newton(grad, hess, x0, maxiter: int = 100, gtol: float = 1e-10, f=None):
    """Pure Newton's method: solve ``hess(x) d = -grad(x)`` and step ``x <- x + d``.

    No line search and no check that the Hessian is positive definite: on a
    non-convex function it happily converges to a saddle point or a maximum,
    which is what the chapter demonstrates. The message records how many steps
    were taken with an indefinite Hessian; a singular Hessian stops the run
    (``success=False``) with a message saying so.
    """
    c, x = _prepare(f, grad, x0)
    check_callable(hess, "hess")
    maxiter = positive_int(maxiter, "maxiter")
    indefinite = 0

    def newton_step(x, g):
        nonlocal indefinite
        h = np.asarray(hess(x), dtype=np.float64)
        if np.linalg.eigvalsh(0.5 * (h + h.T))[0] <= 0:
            indefinite += 1
        try:
            return x + np.linalg.solve(h, -g)
        except np.linalg.LinAlgError:
            raise StopIteration(f"singular Hessian at x = {x}: no Newton step exists") from None

    x, path, success, message = _iterate(c, x, maxiter, gtol, newton_step)
    if indefinite:
        message += f"; {indefinite} step(s) taken with a Hessian that was not positive definite"
    return _result(c, f, x, path, success, message)


def _result(c, f, x, path, success, message):
    path = np.array(path)
    values = np.array([float(f(p)) for p in path]) if f is not None else np.empty(0)
    fun = values[-1] if f is not None else np.nan
    return OptimPath(x, fun, path, len(path) - 1, c.nfev, c.njev, success, message, values)


def wolfe_line_search(phi, dphi, phi0, dphi0, alpha1=1.0, c1=1e-4, c2=0.9, maxiter=30):
    r"""Find a step ``alpha`` satisfying the strong Wolfe conditions, or return ``None``.

    ``phi(a) = f(x + a d)`` and ``dphi(a) = grad f(x + a d)' d`` along a
    descent direction (``dphi0 < 0``). The conditions are

    * sufficient decrease: ``phi(a) <= phi0 + c1 a dphi0``;
    * curvature: ``|dphi(a)| <= c2 |dphi0|``.

    Bracketing then zoom with safeguarded quadratic interpolation
    (Nocedal & Wright, algorithms 3.5 and 3.6).
    """
    if not dphi0 < 0:
        raise ValueError(f"d must be a descent direction: dphi0 = {dphi0:.3g} >= 0")

    def zoom(lo, hi, phi_lo, phi_hi, dphi_lo):
        for _ in range(maxiter):
            d = hi - lo
            curv = (phi_hi - phi_lo - dphi_lo * d) / (d * d)
            a = lo - dphi_lo / (2 * curv) if curv > 0 else lo + 0.5 * d
            inner = sorted((lo + 0.1 * d, lo + 0.9 * d))
            if not inner[0] <= a <= inner[1]:
                a = lo + 0.5 * d
            phi_a = phi(a)
            if phi_a > phi0 + c1 * a * dphi0 or phi_a >= phi_lo:
                hi, phi_hi = a, phi_a
            else:
                dphi_a = dphi(a)
                if abs(dphi_a) <= -c2 * dphi0:
                    return a
                if dphi_a * (hi - lo) >= 0:
                    hi, phi_hi = lo, phi_lo
                lo, phi_lo, dphi_lo = a, phi_a, dphi_a
        return None

    a_prev, phi_prev, dphi_prev, a = 0.0, phi0, dphi0, alpha1
    for i in range(maxiter):
        phi_a = phi(a)
        if phi_a > phi0 + c1 * a * dphi0 or (i > 0 and phi_a >= phi_prev):
            return zoom(a_prev, a, phi_prev, phi_a, dphi_prev)
        dphi_a = dphi(a)
        if abs(dphi_a) <= -c2 * dphi0:
            return a
        if dphi_a >= 0:
            return zoom(a, a_prev, phi_a, phi_prev, dphi_a)
        a_prev, phi_prev, dphi_prev, a = a, phi_a, dphi_a, 2.0 * a
    return None


def bfgs(f, grad, x0, gtol: float = 1e-5, maxiter: int = 200):
    """A teaching BFGS: inverse-Hessian updates with a strong-Wolfe line search.

    Chosen to match ``scipy.optimize.minimize(method="BFGS")`` where that is
    cheap to do: ``H_0 = I`` (no rescaling), the same Wolfe constants
    (``c1=1e-4``, ``c2=0.9``), the same first trial step
    (``min(1, 2.02 (f_k - f_{k-1}) / g'd)``, with ``f_{-1} = f_0 + ||g_0||/2``),
    and the same stopping rule (``max|g| <= gtol``). The line search itself
    differs (scipy uses MINPACK's ``dcsrch``), so paths agree closely but not
    exactly.
    """
    c, x = _prepare(f, grad, x0)
    gtol = positive_number(gtol, "gtol")
    maxiter = positive_int(maxiter, "maxiter")
    h = np.eye(len(x))
    fx, g = c.value(x), c.gradient(x)
    f_old = fx + np.linalg.norm(g) / 2
    path, values = [x.copy()], [fx]
    message, success = f"maximum number of iterations ({maxiter}) reached", False
    for _ in range(maxiter):
        if np.max(np.abs(g)) <= gtol:
            message, success = "gradient below gtol", True
            break
        d = -h @ g
        dphi0 = float(g @ d)
        alpha1 = min(1.0, 1.01 * 2 * (fx - f_old) / dphi0) if dphi0 < 0 else 1.0
        alpha1 = alpha1 if alpha1 > 0 else 1.0
        seen_f, seen_g = {}, {}  # reuse the line search's last evaluations at the step

        def phi(a, x=x, d=d, seen=seen_f):
            seen[a] = c.value(x + a * d)
            return seen[a]

        def dphi(a, x=x, d=d, seen=seen_g):
            seen[a] = c.gradient(x + a * d)
            return float(seen[a] @ d)

        alpha = wolfe_line_search(phi, dphi, fx, dphi0, alpha1=alpha1)
        if alpha is None:
            message = "line search failed to find a Wolfe step"
            break
        x_new = x + alpha * d
        f_new = seen_f[alpha] if alpha in seen_f else c.value(x_new)
        g_new = seen_g[alpha] if alpha in seen_g else c.gradient(x_new)
        s, y = x_new - x, g_new - g
        f_old, x, fx, g = fx, x_new, f_new, g_new
        path.append(x.copy())
        values.append(fx)
        # else skip the update (Nocedal & Wright's safeguard). scipy 1.17's BFGS never skips:
        # it updates whatever the sign of y's, with 1/y's taken as 1000 when y's = 0
        if curvature_ok(s, y):
            h = bfgs_update_inverse(h, s, y)
    return OptimPath(
        x, fx, np.array(path), len(path) - 1, c.nfev, c.njev, success, message, np.array(values)
    )
