"""The whole BFGS loop on the device (``ml.fit(..., method="device")``), on any model, and
the one-pass objective of chapter 6's kernel."""

import jax
import numpy as np
import pytest

from mlejax_helpers import apartments as apt
from mlejax_helpers import mixed_logit as ml
from mlejax_helpers.apartments.estimate import value_grad_opg
from mlejax_helpers.mixed_logit import panel_data as pdata
from mlejax_helpers.mixed_logit.diagnostics import GRAD_TOL
from mlejax_helpers.mixed_logit.fitting import Remembered

COLS = {"person": "person", "situation": "situation", "alternative": "alt", "choice": "choice"}


@pytest.fixture(scope="module")
def small():
    d = apt.simulate(300, 5, 5, seed=4)
    return d, apt.fit(d, gradient="autodiff", init="identity", gtol=1e-8)


def _panel():
    """Normal, lognormal and correlated coefficients on an unbalanced panel."""
    model = ml.MixedLogit(("a", "b", "c"), {"a": "n", "b": "ln"}, correlated=True)
    df = pdata.simulate_panel(model, [0.8, -0.4, -1.0, 0.7, 0.2, 0.4], 150, 4, 3, seed=5)
    df = df[~((df.person % 4 == 0) & (df.situation % 4 == 3))]
    return model, pdata.from_long(df, model, **COLS)


@pytest.mark.parametrize("case", ["apartments", "panel"])
def test_device_loop_reaches_the_scipy_optimum(case):
    if case == "apartments":
        model, data, draws = apt.to_mixed_logit(apt.simulate(300, 5, 5, seed=4))
        spec = {"draws": draws, "start": apt.THETA_START}
    else:
        model, data = _panel()
        spec = {"n_draws": 50, "draws": "halton", "seed": 1}
    ref = ml.fit(model, data, method="BFGS", **spec)
    res = ml.fit(model, data, method="device", **spec)
    assert ref.success and res.success, (ref.message, res.message)
    assert res.message.startswith("converged") and res.scaled_gradient <= GRAD_TOL
    # g'B^-1 g <= 1e-5 bounds the -LL gap to the optimum at about 1e-5 / 2 (a Newton step)
    assert -res.loglik == pytest.approx(-ref.loglik, abs=1e-4)
    se_ref, se = ref.summary()["se"], res.summary()["se"]
    np.testing.assert_allclose(res.theta, ref.theta, atol=0.02 * se_ref.min())
    np.testing.assert_allclose(se, se_ref, rtol=1e-2)
    assert res.nfev >= res.nit + 1  # the first pass and every accepted step evaluate


def test_every_optimiser_reaches_one_optimum_after_the_sign_search():
    # issue 22: L-BFGS-B (the default), BFGS from the BHHH start and the device loop, from
    # one start on simulated data. On 50 scrambled Halton draws each sign pattern of the
    # standard deviations is an optimum of its own, and the three may land in different ones
    # (here, on the book's machine, they did: -LL 435.85, 435.31, 435.31 with other signs);
    # refit_sign_flips then brings every one of them to the best (-LL to 1e-8, relative)
    model = ml.MixedLogit(("a", "b", "c"), {"a": "n", "b": "ln"})
    df = pdata.simulate_panel(model, [0.8, -0.4, -1.0, 0.7, 0.4], 150, 4, 3, seed=5)
    data = pdata.from_long(df[~((df.person % 4 == 0) & (df.situation % 4 == 3))], model, **COLS)
    spec = {"n_draws": 50, "draws": "halton", "seed": 1, "se": False}
    fits, best = {}, {}
    for m in ("L-BFGS-B", "BFGS", "device"):
        fits[m] = ml.fit(model, data, method=m, **spec)
        best[m] = ml.refit_sign_flips(model, data, fits[m], method=m, **spec)
        assert fits[m].success and best[m].success and best[m].loglik >= fits[m].loglik
    top = max(f.loglik for f in best.values())
    for method, f in best.items():
        assert f.loglik == pytest.approx(top, rel=1e-8), method


def test_device_loop_says_when_it_stops_short():
    model, data, draws = apt.to_mixed_logit(apt.simulate(300, 5, 5, seed=4))
    res = ml.fit(model, data, draws=draws, method="device", maxiter=2)
    assert not res.success and res.nit == 2 and "maximum number of iterations" in res.message
    assert res.cov_error is not None  # no standard errors away from an optimum
    with pytest.raises(ValueError, match="method='device' runs the analytic program"):
        ml.fit(model, data, draws=draws, method="device", gradient="autodiff")
    with pytest.raises(ValueError, match="maxiter"):
        ml.fit(model, data, draws=draws, method="device", maxiter=0)


def test_one_pass_gives_value_gradient_and_bhhh_matrix(small):
    d, ref = small
    th = ref.theta + 0.05
    value, grad, opg = jax.jit(value_grad_opg(None))(th, d, None)
    chunked = value_grad_opg(7)(th, d, None)
    s = np.asarray(apt.scores_analytic(th, d))
    for v, g, o in ((value, grad, opg), chunked):
        assert float(v) == pytest.approx(float(apt.neg_loglik(th, d)), rel=1e-12)
        np.testing.assert_allclose(g, jax.grad(apt.neg_loglik)(th, d), rtol=1e-9, atol=1e-9)
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
