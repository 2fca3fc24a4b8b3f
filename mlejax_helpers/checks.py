"""Self-checks for students: call one on your answer and read what it says.

Each check runs your code on fixed inputs, compares with the book's reference
implementation, and returns a :class:`CheckResult` that lists what passed and,
for what failed, the input, the expected value and the value you returned.
``bool(result)`` is ``result.ok``; printing it gives the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._validate import check_callable


@dataclass
class CheckResult:
    """The outcome of one check: ``ok``, and one line per test in ``passed`` / ``failed``."""

    name: str
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        head = f"{self.name}: " + (
            f"all {len(self.passed)} tests passed"
            if self.ok
            else f"{len(self.failed)} of {len(self.failed) + len(self.passed)} tests failed"
        )
        lines = [head] + [f"  FAIL {m}" for m in self.failed] + [f"  ok   {m}" for m in self.passed]
        return "\n".join(lines)

    __repr__ = __str__

    def _compare(self, what, got, expected, rtol=1e-8, atol=1e-10):
        try:
            g = np.asarray(got, dtype=float)
            e = np.asarray(expected, dtype=float)
            good = g.shape == e.shape and np.allclose(g, e, rtol=rtol, atol=atol)
        except (TypeError, ValueError) as exc:
            self.failed.append(f"{what}: could not compare ({exc}); expected {expected!r}")
            return False
        if good:
            self.passed.append(what)
        else:
            self.failed.append(f"{what}: expected {_fmt(e)}, got {_fmt(got)}")
        return good

    def _run(self, what, fn, *args):
        try:
            return True, fn(*args)
        except Exception as exc:  # a student's code may raise anything
            self.failed.append(f"{what}: raised {type(exc).__name__}: {exc}")
            return False, None


def _fmt(x) -> str:
    a = np.asarray(x)
    if a.dtype == object:
        return repr(x)[:200]
    return np.array2string(a, precision=6, threshold=20, separator=", ")


def check_dual(dual_cls, sin=None) -> CheckResult:
    """Check a student's dual-number class ``dual_cls(val, dot)`` with ``.val`` and ``.dot``.

    Tests ``+ - * /`` between duals and with plain numbers on both sides, and,
    if given, a ``sin`` function for duals.
    """
    check_callable(dual_cls, "dual_cls")
    res = CheckResult("check_dual")
    a_val, a_dot, b_val, b_dot = 1.5, 1.0, -0.7, 2.0
    cases = {
        "a + b": (lambda a, b: a + b, a_val + b_val, a_dot + b_dot),
        "a - b": (lambda a, b: a - b, a_val - b_val, a_dot - b_dot),
        "a * b": (lambda a, b: a * b, a_val * b_val, a_dot * b_val + a_val * b_dot),
        "a / b": (lambda a, b: a / b, a_val / b_val, (a_dot * b_val - a_val * b_dot) / b_val**2),
        "3.0 * a": (lambda a, b: 3.0 * a, 3 * a_val, 3 * a_dot),
        "a * 3.0": (lambda a, b: a * 3.0, 3 * a_val, 3 * a_dot),
        "2.0 + a": (lambda a, b: 2.0 + a, 2 + a_val, a_dot),
        "1.0 - a": (lambda a, b: 1.0 - a, 1 - a_val, -a_dot),
        "a + 1.0": (lambda a, b: a + 1.0, a_val + 1, a_dot),
        "a - 1.0": (lambda a, b: a - 1.0, a_val - 1, a_dot),
        "a / 2.0": (lambda a, b: a / 2.0, a_val / 2, a_dot / 2),
        "2.0 / a": (lambda a, b: 2.0 / a, 2 / a_val, -2 * a_dot / a_val**2),
    }
    if sin is not None:
        cases["sin(a)"] = (lambda a, b: sin(a), np.sin(a_val), np.cos(a_val) * a_dot)
    for what, (op, val, dot) in cases.items():
        label = f"{what} with a = Dual({a_val}, {a_dot}), b = Dual({b_val}, {b_dot})"
        ran, out = res._run(label, lambda op=op: op(dual_cls(a_val, a_dot), dual_cls(b_val, b_dot)))
        if not ran:
            continue
        if not (hasattr(out, "val") and hasattr(out, "dot")):
            res.failed.append(f"{label}: expected a Dual, got {type(out).__name__}")
            continue
        res._compare(f"{label}: value", out.val, val)
        res._compare(f"{label}: tangent", out.dot, dot)
    return res


def _reference_inverse_update(kind):
    from .quasi_newton import bfgs_update_inverse

    def dfp(h, s, y):
        hy = h @ y
        return h - np.outer(hy, hy) / (y @ hy) + np.outer(s, s) / (y @ s)

    return {"bfgs": bfgs_update_inverse, "dfp": dfp}[kind]


def check_inverse_update(update, kind: str = "bfgs") -> CheckResult:
    """Check ``update(h, s, y)``, a BFGS or DFP update of an inverse Hessian approximation.

    Tests the secant equation ``H_+ y = s``, symmetry, positive definiteness
    when ``y's > 0``, and agreement with the reference formula, on fixed inputs.
    """
    check_callable(update, "update")
    if kind not in ("bfgs", "dfp"):
        raise ValueError(f"kind must be 'bfgs' or 'dfp', got {kind!r}")
    ref = _reference_inverse_update(kind)
    res = CheckResult(f"check_inverse_update ({kind.upper()})")
    rng = np.random.default_rng(2024)
    for case in range(3):
        n = 2 + case
        a = rng.normal(size=(n, n))
        h = a @ a.T + n * np.eye(n)
        s = rng.normal(size=n)
        y = s + 0.2 * rng.normal(size=n)
        label = f"case {case} (n={n}, s={_fmt(s)}, y={_fmt(y)})"
        ran, out = res._run(label, update, h.copy(), s.copy(), y.copy())
        if not ran:
            continue
        out = np.asarray(out, dtype=float)
        if out.shape != (n, n):
            res.failed.append(f"{label}: expected an ({n}, {n}) matrix, got shape {out.shape}")
            continue
        res._compare(f"{label}: secant equation H_new @ y == s", out @ y, s)
        res._compare(f"{label}: symmetry H_new == H_new.T", out, out.T)
        eig = np.linalg.eigvalsh(0.5 * (out + out.T))
        if eig[0] > 0:
            res.passed.append(f"{label}: positive definite")
        else:
            res.failed.append(f"{label}: not positive definite, smallest eigenvalue {eig[0]:.4g}")
        res._compare(f"{label}: matches the reference {kind.upper()} formula", out, ref(h, s, y))
    return res


def check_gradient(f, grad, points, rtol: float = 1e-6) -> CheckResult:
    """Check a hand-written ``grad(x)`` of a scalar JAX-traceable ``f(x)`` at each of ``points``.

    The reference is ``jax.grad(f)``; failures name the point and the components
    that differ.
    """
    import jax

    check_callable(f, "f")
    check_callable(grad, "grad")
    res = CheckResult("check_gradient")
    ref = jax.grad(f)
    for p in np.atleast_2d(np.asarray(points, dtype=float)):
        label = f"at x = {_fmt(p)}"
        ran, got = res._run(label, grad, p.copy())
        if not ran:
            continue
        expected = np.asarray(ref(p))
        got = np.asarray(got, dtype=float)
        if got.shape != expected.shape:
            res.failed.append(f"{label}: expected shape {expected.shape}, got {got.shape}")
            continue
        bad = ~np.isclose(got, expected, rtol=rtol, atol=rtol * max(1.0, np.abs(expected).max()))
        if bad.any():
            comps = ", ".join(
                f"component {i}: expected {expected[i]:.8g}, got {got[i]:.8g}"
                for i in np.flatnonzero(bad)
            )
            res.failed.append(f"{label}: {comps}")
        else:
            res.passed.append(label)
    return res


def check_mixed_logit_likelihood(neg_loglik_fn, data=None) -> CheckResult:
    """Check a student's mixed logit ``neg_loglik_fn(theta, data)`` against the book's.

    Uses a small simulated data set unless ``data`` is given, and several
    parameter vectors, including one with large utilities that overflow a
    naive ``exp``.
    """
    from . import apartments as apt

    check_callable(neg_loglik_fn, "neg_loglik_fn")
    data = apt.simulate(200, 5, 6, seed=7) if data is None else data
    res = CheckResult("check_mixed_logit_likelihood")
    thetas = {
        "the true theta": apt.THETA_TRUE,
        "theta = (0, 0, 0, 0, 0, 1)": apt.THETA_START,
        "negative sigma (-1.5)": apt.THETA_TRUE * np.array([1, 1, 1, 1, 1, -1]),
        "large utilities (b0 = 800)": np.array([800.0, 1.0, 0.5, -0.1, 0.3, 1.5]),
    }
    for name, theta in thetas.items():
        ran, got = res._run(f"at {name}", neg_loglik_fn, theta.copy(), data)
        if ran:
            res._compare(
                f"at {name}", float(np.asarray(got)), apt.neg_loglik_numpy(theta, data), rtol=1e-9
            )
    return res
