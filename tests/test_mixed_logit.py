import jax
import numpy as np
import pytest

from mlejax_helpers import mixed_logit as ml
from mlejax_helpers.findiff import gradient as fd_gradient
from mlejax_helpers.mixed_logit.estimate import GRADIENTS, THETA_START
from mlejax_helpers.mixed_logit.xlogit_bridge import fit_xlogit, to_xlogit_long


@pytest.fixture(scope="module")
def data():
    return ml.simulate(300, 6, 15, seed=3)


def random_thetas(rng, k=5):
    return ml.THETA_TRUE + rng.normal(scale=0.3, size=(k, 6))


def test_simulated_data_shapes_and_choices():
    d = ml.simulate(500, 7, 9, seed=1, draws="halton")
    assert d.shape == (500, 7, 9)
    assert d.choice.dtype == np.int64 and d.choice.min() >= 0 and d.choice.max() <= 7
    assert 0.05 < np.mean(d.choice == 0) < 0.9  # the outside option is chosen, not always
    assert abs(d.draws.mean()) < 0.05 and abs(d.draws.std() - 1) < 0.05
    np.testing.assert_array_equal(d.theta_true, ml.THETA_TRUE)


def test_halton_draws_are_more_even_than_pseudo():
    from scipy.stats import norm

    def discrepancy(z):
        u = np.sort(norm.cdf(z.ravel()))
        return np.max(np.abs(u - (np.arange(len(u)) + 0.5) / len(u)))

    assert discrepancy(ml.make_draws(100, 50, "halton")) < discrepancy(ml.make_draws(100, 50))
    with pytest.raises(ValueError, match="draws must be one of"):
        ml.make_draws(10, 10, "sobol")


def test_three_likelihoods_agree(data, rng):
    df = ml.to_long_dataframe(data)
    for theta in random_thetas(rng, 3):
        jax_value = float(ml.neg_loglik(theta, data))
        assert ml.neg_loglik_numpy(theta, data) == pytest.approx(jax_value, rel=1e-9)
        assert ml.neg_loglik_pandas(theta, df, data.draws) == pytest.approx(jax_value, rel=1e-9)


def test_likelihood_is_overflow_safe(data):
    theta = np.array([300.0, 1.0, 1.0, 0.0, 0.0, 1.0])  # exp(300+) overflows without log-sum-exp
    assert np.isfinite(float(ml.neg_loglik(theta, data)))
    assert np.isfinite(ml.neg_loglik_numpy(theta, data))
    assert np.all(np.isfinite(ml.grad_analytic_numpy(theta, data)))


def test_analytic_gradient_matches_autodiff(data, rng):
    for theta in random_thetas(rng):
        auto = np.asarray(jax.grad(ml.neg_loglik)(theta, data))
        np.testing.assert_allclose(ml.grad_analytic(theta, data), auto, rtol=1e-8, atol=1e-8)
        np.testing.assert_allclose(ml.grad_analytic_numpy(theta, data), auto, rtol=1e-8, atol=1e-8)


def test_analytic_gradient_matches_finite_differences_at_their_order(data, rng):
    theta = random_thetas(rng, 1)[0]
    exact = ml.grad_analytic_numpy(theta, data)

    def f(t):
        return ml.neg_loglik_numpy(t, data)

    errs = [np.abs(fd_gradient(f, theta, h=h) - exact).max() for h in (1e-2, 1e-3)]
    assert np.log10(errs[0] / errs[1]) == pytest.approx(2.0, abs=0.3)  # central: O(h^2)
    assert np.abs(fd_gradient(f, theta) - exact).max() < 1e-5 * np.abs(exact).max()


def test_scores_analytic_and_autodiff_agree(data, rng):
    theta = random_thetas(rng, 1)[0]
    s = np.asarray(ml.scores_analytic(theta, data))
    assert s.shape == (300, 6)
    np.testing.assert_allclose(ml.scores_autodiff(theta, data), s, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ml.scores_analytic_numpy(theta, data), s, rtol=1e-8, atol=1e-10)


def test_hessian_is_symmetric_and_matches_differences_of_the_gradient(data, rng):
    theta = random_thetas(rng, 1)[0]
    h = np.asarray(jax.hessian(ml.neg_loglik)(theta, data))
    np.testing.assert_allclose(h, h.T, atol=1e-9 * np.abs(h).max())
    eps = 1e-5
    g = ml.grad_analytic_numpy
    fd = np.column_stack(
        [(g(theta + eps * e, data) - g(theta - eps * e, data)) / (2 * eps) for e in np.eye(6)]
    )
    np.testing.assert_allclose(fd, h, rtol=1e-6, atol=1e-6 * np.abs(h).max())


def test_every_gradient_method_reaches_the_same_optimum():
    d = ml.simulate(1500, 8, 10, seed=11)
    fits = [ml.fit(d, gradient=g) for g in GRADIENTS]
    best = min(f.neg_loglik for f in fits)
    for f in fits:
        assert f.neg_loglik == pytest.approx(best, rel=1e-6), (f.gradient, f.message)
        assert f.run_s > 0 and f.compile_s > 0
    newton = ml.fit(d, method="trust-krylov")
    assert newton.success and newton.neg_loglik == pytest.approx(best, rel=1e-6)


def test_estimates_cover_the_truth_with_many_halton_draws():
    d = ml.simulate(20_000, 5, 200, seed=2024, draws="halton")
    res = ml.fit(d, gradient="autodiff-fused")
    assert res.success, res.message
    se = ml.standard_errors(res.theta, d)
    estimate = se["estimate"].to_numpy().copy()
    estimate[5] = abs(estimate[5])  # sigma and -sigma are the same model
    z = np.abs(estimate - se["true"]) / se["se_hessian"]
    assert np.all(z < 3), z


def test_neg_loglik_on_common_draws_matches_direct_evaluation(data):
    draws = ml.make_draws(300, 40, "halton", seed=5)
    direct = ml.neg_loglik_numpy(ml.THETA_TRUE, data._replace(draws=draws))
    chunked = ml.neg_loglik_on_draws(ml.THETA_TRUE, data, draws, chunk=7)
    assert chunked == pytest.approx(direct, rel=1e-12)


def test_standard_errors_refuse_a_saddle(data):
    with pytest.raises(ValueError, match="not positive definite"):
        ml.standard_errors(np.array([0.0, 0, 0, 0, 0, 0.0]) + [5, -5, 5, -5, 5, 0.0], data)


@pytest.mark.parametrize(
    "field, value, err, msg",
    [
        ("log_sqft", np.ones((10, 3)), ValueError, "bathrooms must have shape"),
        ("choice", np.full(300, 99), ValueError, "choice must be in 0..6"),
        ("choice", np.full(300, 0.5), TypeError, "choice must hold integers"),
        ("outdoor", np.full((300, 6), np.nan), ValueError, "outdoor must be finite"),
        ("draws", np.ones((299, 4)), ValueError, "draws must have shape"),
        ("family_size", "big", TypeError, "family_size must be a numeric array"),
    ],
)
def test_bad_data_names_the_field(data, field, value, err, msg):
    fields = data._asdict()
    fields[field] = value
    with pytest.raises(err, match=msg):
        ml.make_data(**fields)


def test_bad_arguments_are_clear(data):
    with pytest.raises(ValueError, match=r"theta .* must have shape \(6,\)"):
        ml.neg_loglik_numpy(np.zeros(5), data)
    with pytest.raises(ValueError, match="gradient must be one of"):
        ml.fit(data, gradient="symbolic")
    with pytest.raises(ValueError, match="method must be one of"):
        ml.fit(data, method="Nelder-Mead")
    with pytest.raises(TypeError, match="data must be a MixedLogitData"):
        ml.fit({"choice": 1})
    with pytest.raises(ValueError, match="n_options must be >= 1"):
        ml.simulate(10, 0, 5)


def test_xlogit_long_format_and_fit_from_our_start():
    d = ml.simulate(2000, 5, 50, seed=8, draws="halton")
    X, y, ids, alts = to_xlogit_long(d)
    assert X.shape == (2000 * 6, 5)
    assert np.all(X[alts == 0] == 0)  # outside option: all-zero regressors
    assert np.all(np.bincount(ids, weights=y) == 1)  # one choice per consumer
    res = fit_xlogit(d, theta0=THETA_START, optim_method="L-BFGS-B")
    assert res["convergence"], res["message"]
    ours = ml.fit(d)
    np.testing.assert_allclose(res["theta"][:5], ours.theta[:5], atol=0.15)


def test_chunked_likelihood_and_gradients_match_the_whole(data, rng):
    theta = random_thetas(rng, 1)[0]
    whole = float(ml.neg_loglik(theta, data))
    for chunk in (1, 7, 300, 1000):
        assert float(ml.neg_loglik_chunked(theta, data, chunk)) == pytest.approx(whole, rel=1e-12)
    v, g = ml.value_and_grad_analytic_chunked(theta, data, 64)
    assert float(v) == pytest.approx(whole, rel=1e-12)
    g_auto = jax.grad(ml.neg_loglik_chunked)(theta, data, 64)
    np.testing.assert_allclose(g, ml.grad_analytic(theta, data), rtol=1e-10)
    np.testing.assert_allclose(g_auto, ml.grad_analytic(theta, data), rtol=1e-10)
    np.testing.assert_allclose(
        ml.scores_analytic_chunked(theta, data, 64),
        ml.scores_analytic(theta, data),
        rtol=1e-10,
        atol=1e-12,
    )


def test_fit_with_chunks_reaches_the_same_optimum():
    d = ml.simulate(800, 6, 8, seed=21)
    assert ml.default_chunk(d) is None  # small problems are not chunked
    whole = ml.fit(d, gradient="analytic-fused", init="bhhh", chunk=None)
    for gradient in ("autodiff", "analytic-fused", "finite-differences"):
        chunked = ml.fit(d, gradient=gradient, chunk=100)
        assert chunked.neg_loglik == pytest.approx(whole.neg_loglik, rel=1e-7), gradient
    with pytest.raises(ValueError, match="chunk must be >= 1"):
        ml.fit(d, chunk=0)
