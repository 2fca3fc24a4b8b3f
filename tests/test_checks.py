import math

import jax.numpy as jnp
import numpy as np

from mlejax_helpers import autodiff as ad
from mlejax_helpers import checks
from mlejax_helpers.quasi_newton import bfgs_update_hessian, bfgs_update_inverse


def test_check_dual_accepts_the_books_dual_and_names_a_wrong_product():
    assert checks.check_dual(ad.Dual, sin=ad.sin)

    class BadDual(ad.Dual):
        def __mul__(self, o):  # forgets the product rule's second term
            o = self._lift(o)
            return ad.Dual(self.val * o.val, self.dot * o.val)

    res = checks.check_dual(BadDual)
    assert not res
    report = str(res)
    assert "a * b" in report and "tangent" in report and "expected" in report and "got" in report
    assert "a + b" not in "".join(res.failed)  # what is right is not blamed


def test_check_dual_catches_wrong_operations_with_plain_numbers():
    class ConstantQuotient(ad.Dual):
        def __rtruediv__(self, o):  # forgets that c / a depends on a
            return ad.Dual(o / self.val, 0.0)

    res = checks.check_dual(ConstantQuotient)
    assert not res and all("2.0 / a" in m for m in res.failed), res.failed


def test_check_dual_reports_exceptions_and_wrong_types():
    class NoDivision(ad.Dual):
        def __truediv__(self, o):
            raise NotImplementedError("todo")

    res = checks.check_dual(NoDivision)
    assert any("raised NotImplementedError: todo" in m for m in res.failed)
    res = checks.check_dual(lambda v, d: (v, d))
    assert any("expected a Dual, got tuple" in m for m in res.failed)


def test_check_inverse_update():
    assert checks.check_inverse_update(bfgs_update_inverse)

    def dfp(h, s, y):  # duality: DFP on H is BFGS on B with s and y swapped
        return bfgs_update_hessian(h, y, s)

    assert checks.check_inverse_update(dfp, kind="dfp")

    def dfp_sign_slip(h, s, y):
        hy = h @ y
        return h + np.outer(hy, hy) / (y @ hy) + np.outer(s, s) / (y @ s)

    res = checks.check_inverse_update(dfp_sign_slip, kind="dfp")
    assert not res and any("secant equation" in m for m in res.failed)
    res = checks.check_inverse_update(dfp, kind="bfgs")  # right property, wrong formula
    assert not res and any("reference BFGS formula" in m for m in res.failed)
    assert any("secant equation" in m for m in res.passed)

    def transposed(h, s, y):
        return bfgs_update_inverse(h, s, y) + np.triu(np.ones_like(h), 1)

    res = checks.check_inverse_update(transposed)
    assert any("symmetry" in m for m in res.failed)


def test_check_gradient_names_the_component():
    def f(x):
        return x[0] * x[1] + jnp.sin(x[0])

    def good(x):
        return np.array([x[1] + np.cos(x[0]), x[0]])

    def bad(x):
        return np.array([x[1] - np.cos(x[0]), x[0]])

    pts = [[1.0, 2.0], [-0.5, 0.3]]
    assert checks.check_gradient(f, good, pts)
    res = checks.check_gradient(f, bad, pts)
    assert not res and all("component 0" in m for m in res.failed)
    assert not any("component 1" in m for m in res.failed)


def loop_likelihood(theta, data):
    """The simulated -LL written from its definition with scalar loops, in logs: independent
    of the book's array code, and safe for large utilities (the largest is subtracted)."""
    b0, b1, b2, b3, mu, sigma = (float(t) for t in theta)
    n, j, r = data.shape
    total = 0.0
    for i in range(n):
        log_l = []  # log of the logit probability of the choice, one per draw
        for k in range(r):
            beta = mu + sigma * data.draws[i, k]
            v = [0.0] + [
                b0
                + b1 * data.log_sqft[i, a]
                + b2 * data.bathrooms[i, a]
                + b3 * data.bathrooms[i, a] * data.family_size[i]
                + beta * data.outdoor[i, a]
                for a in range(j)
            ]
            top = max(v)
            log_l.append(v[data.choice[i]] - top - math.log(sum(math.exp(u - top) for u in v)))
        top = max(log_l)
        total -= top + math.log(sum(math.exp(x - top) for x in log_l) / r)
    return total


def test_check_mixed_logit_likelihood():
    assert checks.check_mixed_logit_likelihood(loop_likelihood)

    def naive(theta, data):  # overflows for large utilities
        b0, b1, b2, b3, mu, sigma = theta
        xb = b0 + b1 * data.log_sqft + b2 * data.bathrooms
        xb = xb + b3 * data.bathrooms * data.family_size[:, None]
        v = xb[:, :, None] + data.outdoor[:, :, None] * (mu + sigma * data.draws)[:, None, :]
        ev = np.exp(v)
        denom = 1 + ev.sum(axis=1)
        chosen = np.where(
            data.choice[:, None] > 0,
            np.take_along_axis(ev, np.clip(data.choice - 1, 0, None)[:, None, None], 1)[:, 0],
            1.0,
        )
        return -np.sum(np.log(np.mean(chosen / denom, axis=1)))

    with np.errstate(all="ignore"):
        res = checks.check_mixed_logit_likelihood(naive)
    assert not res
    assert [m for m in res.failed if "large utilities" in m]
    assert any("the true theta" in m for m in res.passed)
