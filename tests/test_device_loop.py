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


def test_the_default_optimiser_reaches_the_optimum_of_the_others():
    # issue 22: L-BFGS-B (the default), BFGS from the BHHH start and the device loop, from
    # one start on simulated data, stop at one optimum (-LL to 1e-8, relative). On draws
    # symmetric in every coordinate (each point with every pattern of signs) the simulated
    # likelihood does not change when a standard deviation's sign does, so the sign
    # patterns are one optimum, not several (chapter 8), and the optimisers must agree
    model = ml.MixedLogit(("a", "b", "c"), {"a": "n", "b": "ln"})
    df = pdata.simulate_panel(model, [0.8, -0.4, -1.0, 0.7, 0.4], 500, 4, 3, seed=5)
    data = pdata.from_long(df, model, **COLS)
    base = pdata.panel_draws(data.n_persons, 10, 2, "halton", seed=1)
    signs = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]])
    draws = np.concatenate([base * s for s in signs], axis=1)  # (P, 40, 2)
    fits = {
        m: ml.fit(model, data, draws=draws, method=m, se=False)
        for m in ("L-BFGS-B", "BFGS", "device")
    }
    assert all(f.success for f in fits.values()), {m: f.message for m, f in fits.items()}
    best = max(f.loglik for f in fits.values())
    for method, f in fits.items():
        assert f.loglik == pytest.approx(best, rel=1e-8), method


def test_the_sign_search_ends_where_no_single_flip_is_better():
    # on asymmetric draws each sign pattern is an optimum of its own; the search stops only
    # where refitting with any one sign flipped gains no more than its tolerance
    model, data = _panel_uncorrelated()
    spec = {"n_draws": 50, "draws": "halton", "seed": 1, "se": False}
    first = ml.fit(model, data, **spec)
    found = ml.refit_sign_flips(model, data, first, **spec)
    assert found.success and found.loglik >= first.loglik
    sds = [k for k, n in enumerate(model.param_names) if n.startswith("sd.")]
    for k in sds:
        start = found.theta.copy()
        start[k] = -start[k]
        other = ml.fit(model, data, start=start, **spec)
        assert not other.success or other.loglik <= found.loglik + 1e-6 * abs(found.loglik)
    with pytest.raises(ValueError, match="not the data result was fitted to"):
        ml.refit_sign_flips(model, _panel_uncorrelated(persons=60)[1], first, **spec)


def _panel_uncorrelated(persons=150):
    model = ml.MixedLogit(("a", "b", "c"), {"a": "n", "b": "ln"})
    df = pdata.simulate_panel(model, [0.8, -0.4, -1.0, 0.7, 0.4], persons, 4, 3, seed=5)
    return model, pdata.from_long(df, model, **COLS)


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
