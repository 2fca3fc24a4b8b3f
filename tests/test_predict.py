"""Predicted probabilities and elasticities against hand computations."""

import numpy as np
import pytest
from scipy.special import softmax

from mlejax_helpers import mixed_logit as ml
from mlejax_helpers.mixed_logit import panel_data as pdata

COLS = {"person": "person", "situation": "situation", "alternative": "alt", "choice": "choice"}
MODEL = ml.MixedLogit(("a", "b"), {"a": "n", "b": "ln"})
THETA = np.array([0.8, -0.5, 0.6, 0.3])


@pytest.fixture(scope="module")
def fitted():
    df = pdata.simulate_panel(MODEL, THETA, 60, 3, 3, seed=7)
    df = df.assign(avail=1)
    df.loc[(df.situation % 4 == 1) & (df.alt == 2) & ~df.choice, "avail"] = 0  # some 2-way
    data = pdata.from_long(df, MODEL, availability="avail", **COLS)
    return df, data, ml.fit(MODEL, data, n_draws=15, se=False)


def test_probabilities_are_the_average_over_draws_of_logit_probabilities(fitted):
    df, data, res = fitted
    pred = ml.predict(res, data)
    assert len(pred) == int(df.avail.sum())  # every available alternative, nothing else
    np.testing.assert_allclose(pred.groupby(["person", "situation"]).probability.sum(), 1.0)
    draws = pdata.panel_draws(60, 15, 2, "halton", seed=0)  # the fit's, made again
    m, s = res.theta[:2], res.theta[2:]
    for person, situation in ((0, 1), (13, 40), (59, 178)):
        rows = df[(df.person == person) & (df.situation == situation) & (df.avail == 1)]
        beta = np.c_[m[0] + s[0] * draws[person, :, 0], np.exp(m[1] + s[1] * draws[person, :, 1])]
        hand = softmax(rows[["a", "b"]].to_numpy() @ beta.T, axis=0).mean(axis=1)  # (J,)
        got = pred[(pred.person == person) & (pred.situation == situation)]
        np.testing.assert_allclose(got.probability, hand, rtol=1e-12)
        assert list(got.alternative) == list(rows.alt)


def test_elasticities_equal_finite_differences_of_the_probabilities(fitted):
    df, data, res = fitted
    table = ml.elasticities(res, data, "a")
    h = 1e-6
    base = ml.predict(res, data).set_index(["person", "situation", "alternative"]).probability
    for j in (0, 2):
        bumped = df.assign(a=np.where(df.alt == j, df.a * (1 + h), df.a))
        new = ml.predict(res, pdata.from_long(bumped, MODEL, availability="avail", **COLS))
        new = new.set_index(["person", "situation", "alternative"]).probability
        e = ((new - base) / base / h).rename("e").reset_index()  # one situation at a time
        has_j = e.alternative.eq(j).groupby([e.person, e.situation]).transform("any")
        fd = e[has_j].groupby("alternative").e.mean()
        np.testing.assert_allclose(table[j].loc[fd.index], fd, rtol=1e-4, atol=1e-7)
    assert table.shape == (3, 3) and np.isfinite(table.to_numpy()).all()
    with pytest.raises(ValueError, match="attribute 'c' is not one of the model's"):
        ml.elasticities(res, data, "c")


def test_moments_of_the_random_coefficients_against_simulation(fitted):
    fit = fitted[2]  # with the identity as covariance, so the standard errors are by hand
    res = ml.Result(**{**vars(fit), "hessian": np.eye(4), "bhhh": np.eye(4), "cov_error": None})
    table = ml.moments(res, cov="hessian")
    eta = np.random.default_rng(0).standard_normal(2_000_000)
    m, s = res.theta[:2], np.abs(res.theta[2:])
    normal, lognormal = m[0] + s[0] * eta, np.exp(m[1] + s[1] * eta)
    for (name, _), draws in zip(table.index, (normal, lognormal), strict=True):
        row = table.loc[name].iloc[0]
        assert row["mean"] == pytest.approx(draws.mean(), rel=2e-3)
        assert row["median"] == pytest.approx(np.median(draws), rel=2e-3)
        assert row["sd"] == pytest.approx(draws.std(), rel=3e-3)
        assert row["share > 0"] == pytest.approx((draws > 0).mean(), abs=2e-3)
    # the standard errors are the delta method's with the given covariance (identity here)
    assert table.loc[("a", "normal"), "se(mean)"] == pytest.approx(1.0)
    assert table.loc[("b", "lognormal"), "se(median)"] == pytest.approx(np.exp(m[1]))


def test_correlations_of_a_correlated_fit():
    model = ml.MixedLogit(("a", "b"), {"a": "n", "b": "n"}, correlated=True)
    chol = np.array([0.8, 0.3, 0.4])  # L = [[0.8, 0], [0.3, 0.4]]
    res = ml.Result(
        model, np.r_[1.0, -1.0, chol], True, "", -10.0, 20, 5, 1, 1, 0.0, 0.0, 0.0, 0.0,
        "BFGS", {"kind": "halton", "n_draws": 5, "seed": 0}, np.eye(5), np.eye(5),
    )  # fmt: skip
    corr, se = ml.correlations(res, cov="hessian")
    lower = np.array([[0.8, 0.0], [0.3, 0.4]])
    sigma = lower @ lower.T
    assert corr.loc["a", "b"] == pytest.approx(sigma[0, 1] / np.sqrt(sigma[0, 0] * sigma[1, 1]))
    assert corr.loc["a", "a"] == pytest.approx(1.0) and se.loc["a", "b"] > 0
    cov, cov_se = ml.covariances(res, cov="hessian")
    np.testing.assert_allclose(cov.to_numpy(), sigma, rtol=1e-12)
    # delta method with an identity covariance of (L00, L10, L11): hand derivatives
    assert cov_se.loc["a", "a"] == pytest.approx(2 * 0.8)  # d L00^2 / d L00
    assert cov_se.loc["a", "b"] == pytest.approx(np.hypot(0.3, 0.8))  # d L00 L10
    assert cov_se.loc["b", "b"] == pytest.approx(2 * np.hypot(0.3, 0.4))  # d (L10^2 + L11^2)
    moments = ml.moments(res, cov="hessian")
    assert moments.loc[("b", "normal"), "sd"] == pytest.approx(np.sqrt(sigma[1, 1]))


def test_refit_sign_flips_keeps_the_best_converged_optimum(fitted):
    df, data, res = fitted
    flip_a = res.theta * np.r_[np.ones(len(MODEL.attributes)), -1, 1]
    worse = ml.fit(MODEL, data, n_draws=15, se=False, start=flip_a)
    assert worse.success and worse.loglik < res.loglik - 0.1  # another sign, another optimum
    best = ml.refit_sign_flips(MODEL, data, worse, n_draws=15, se=False)
    flips = [
        ml.fit(MODEL, data, n_draws=15, se=False, start=worse.theta * np.r_[1, 1, s])
        for s in ([-1, 1], [1, -1])
    ]
    # at least the best single flip (a second round may flip another sign too)
    assert best.loglik >= max(f.loglik for f in [worse, *flips] if f.success)
    assert best.loglik > worse.loglik + 0.1 and best.success
    with pytest.raises(TypeError, match="result must be a Result"):
        ml.refit_sign_flips(MODEL, data, res.theta)
    with pytest.raises(ValueError, match="other draws"):
        ml.refit_sign_flips(MODEL, data, worse, n_draws=16, se=False)
    with pytest.raises(ValueError, match="fitted with another model"):
        ml.refit_sign_flips(ml.MixedLogit(("a", "b"), {"a": "n"}), data, res)
    corr = ml.MixedLogit(("a", "b"), {"a": "n", "b": "ln"}, correlated=True)
    corr_res = ml.Result(**{**vars(res), "model": corr})
    with pytest.raises(ValueError, match="Cholesky factor has none to flip"):
        ml.refit_sign_flips(corr, data, corr_res)
