"""The whole BFGS loop on the device (``fit_on_device``) and the one-pass objective of ``fit``."""

import jax
import numpy as np
import pytest

from mlejax_helpers import mixed_logit as ml
from mlejax_helpers.mixed_logit.device_loop import fit_on_device
from mlejax_helpers.mixed_logit.estimate import Remembered, value_grad_opg


@pytest.fixture(scope="module")
def small():
    d = ml.simulate(300, 5, 5, seed=4)
    return d, ml.fit(d, gradient="autodiff", init="identity", gtol=1e-8)


@pytest.mark.parametrize("chunk", [None, 64])
def test_device_loop_reaches_the_scipy_optimum(small, chunk):
    d, ref = small
    res = fit_on_device(d, gtol=1e-8, chunk=chunk)
    assert res.success, res.message
    assert res.neg_loglik == pytest.approx(ref.neg_loglik, rel=1e-10)
    np.testing.assert_allclose(res.theta, ref.theta, atol=1e-5)
    assert res.nfev >= res.nit + 1  # the first pass and every accepted step evaluate
    g = ml.grad_analytic(res.theta, d) / d.shape[0]
    assert np.max(np.abs(np.asarray(g))) <= 1e-8  # the gradient test it reports


def test_device_loop_says_when_it_stops_short(small):
    d, _ = small
    res = fit_on_device(d, maxiter=2)
    assert not res.success and res.nit == 2 and "maximum number of iterations" in res.message


def test_device_loop_checks_its_arguments(small):
    d, _ = small
    with pytest.raises(ValueError, match="gtol"):
        fit_on_device(d, gtol=-1.0)
    with pytest.raises(ValueError, match="chunk"):
        fit_on_device(d, chunk=0)


def test_one_pass_gives_value_gradient_and_bhhh_matrix(small):
    d, ref = small
    th = ref.theta + 0.05
    value, grad, opg = jax.jit(value_grad_opg(None))(th, d, None)
    chunked = value_grad_opg(7)(th, d, None)
    s = np.asarray(ml.scores_analytic(th, d))
    for v, g, o in ((value, grad, opg), chunked):
        assert float(v) == pytest.approx(float(ml.neg_loglik(th, d)), rel=1e-12)
        np.testing.assert_allclose(g, jax.grad(ml.neg_loglik)(th, d), rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(o, s.T @ s, rtol=1e-10)


def test_remembered_evaluates_once_per_point_until_told_to_forget():
    calls = []
    f = Remembered(lambda th: calls.append(th.copy()) or float(th.sum()))
    assert f([1.0, 2.0]) == 3.0 and f(np.array([1.0, 2.0])) == 3.0 and len(calls) == 1
    f([1.0, 2.5])
    assert len(calls) == 2
    f.forget()
    f([1.0, 2.5])
    assert len(calls) == 3
