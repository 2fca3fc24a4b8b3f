import subprocess
import sys

import jax
import numpy as np
import pytest

from mlejax_helpers import apartments as apt
from mlejax_helpers import mixed_logit as ml
from mlejax_helpers.apartments import estimate
from mlejax_helpers.apartments.estimate import GRADIENTS, METHODS, SECOND_ORDER, THETA_START
from mlejax_helpers.apartments.xlogit_bridge import fit_xlogit, to_xlogit_long
from mlejax_helpers.findiff import gradient as fd_gradient


@pytest.fixture(scope="module")
def data():
    return apt.simulate(300, 6, 15, seed=3)


def random_thetas(rng, k=5):
    return apt.THETA_TRUE + rng.normal(scale=0.3, size=(k, 6))


def test_simulated_data_shapes_and_choices():
    d = apt.simulate(500, 7, 9, seed=1, draws="halton")
    assert d.shape == (500, 7, 9)
    assert d.choice.dtype == np.int64 and d.choice.min() >= 0 and d.choice.max() <= 7
    assert 0.05 < np.mean(d.choice == 0) < 0.9  # the outside option is chosen, not always
    assert abs(d.draws.mean()) < 0.05 and abs(d.draws.std() - 1) < 0.05
    np.testing.assert_array_equal(d.theta_true, apt.THETA_TRUE)


def test_halton_draws_are_more_even_than_pseudo():
    from scipy.stats import norm

    def discrepancy(z):
        u = np.sort(norm.cdf(z.ravel()))
        return np.max(np.abs(u - (np.arange(len(u)) + 0.5) / len(u)))

    assert discrepancy(apt.make_draws(100, 50, "halton")) < discrepancy(apt.make_draws(100, 50))
    with pytest.raises(ValueError, match="draws must be one of"):
        apt.make_draws(10, 10, "sobol")


def test_xlogit_halton_draws_are_xlogits_own():
    from xlogit import MixedLogit

    model = MixedLogit()
    model._rvdist = ["n"]  # one normal random coefficient, as in chapter 6's model
    theirs = model._generate_draws(37, 11, halton=True)[:, 0, :]  # (N, Kr, R) -> (N, R)
    np.testing.assert_array_equal(apt.make_draws(37, 11, "xlogit-halton"), theirs)
    from mlejax_helpers.apartments.data import radical_inverse

    assert radical_inverse(6, 2) == 0.375 and radical_inverse(5, 3) == pytest.approx(7 / 9)


def test_three_likelihoods_agree(data, rng):
    df = apt.to_long_dataframe(data)
    for theta in random_thetas(rng, 3):
        jax_value = float(apt.neg_loglik(theta, data))
        assert apt.neg_loglik_numpy(theta, data) == pytest.approx(jax_value, rel=1e-9)
        assert apt.neg_loglik_pandas(theta, df, data.draws) == pytest.approx(jax_value, rel=1e-9)


def test_likelihood_is_overflow_safe(data):
    theta = np.array([300.0, 1.0, 1.0, 0.0, 0.0, 1.0])  # exp(300+) overflows without log-sum-exp
    assert np.isfinite(float(apt.neg_loglik(theta, data)))
    assert np.isfinite(apt.neg_loglik_numpy(theta, data))
    assert np.all(np.isfinite(apt.grad_analytic_numpy(theta, data)))


def test_analytic_gradient_matches_autodiff(data, rng):
    for theta in random_thetas(rng):
        auto = np.asarray(jax.grad(apt.neg_loglik)(theta, data))
        np.testing.assert_allclose(apt.grad_analytic(theta, data), auto, rtol=1e-8, atol=1e-8)
        np.testing.assert_allclose(apt.grad_analytic_numpy(theta, data), auto, rtol=1e-8, atol=1e-8)


def test_analytic_gradient_matches_finite_differences_at_their_order(data, rng):
    theta = random_thetas(rng, 1)[0]
    exact = apt.grad_analytic_numpy(theta, data)

    def f(t):
        return apt.neg_loglik_numpy(t, data)

    errs = [np.abs(fd_gradient(f, theta, h=h) - exact).max() for h in (1e-2, 1e-3)]
    assert np.log10(errs[0] / errs[1]) == pytest.approx(2.0, abs=0.3)  # central: O(h^2)
    assert np.abs(fd_gradient(f, theta) - exact).max() < 1e-5 * np.abs(exact).max()


def test_scores_analytic_and_autodiff_agree(data, rng):
    theta = random_thetas(rng, 1)[0]
    s = np.asarray(apt.scores_analytic(theta, data))
    assert s.shape == (300, 6)
    np.testing.assert_allclose(apt.scores_autodiff(theta, data), s, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(apt.scores_analytic_numpy(theta, data), s, rtol=1e-8, atol=1e-10)


def test_hessian_is_symmetric_and_matches_differences_of_the_gradient(data, rng):
    theta = random_thetas(rng, 1)[0]
    h = np.asarray(jax.hessian(apt.neg_loglik)(theta, data))
    np.testing.assert_allclose(h, h.T, atol=1e-9 * np.abs(h).max())
    eps = 1e-5
    g = apt.grad_analytic_numpy
    fd = np.column_stack(
        [(g(theta + eps * e, data) - g(theta - eps * e, data)) / (2 * eps) for e in np.eye(6)]
    )
    np.testing.assert_allclose(fd, h, rtol=1e-6, atol=1e-6 * np.abs(h).max())


@pytest.mark.slow
def test_every_gradient_method_reaches_the_same_optimum():
    d = apt.simulate(1500, 8, 10, seed=11)
    fits = [apt.fit(d, gradient=g) for g in GRADIENTS]
    best = min(f.neg_loglik for f in fits)
    for f in fits:
        assert f.neg_loglik == pytest.approx(best, rel=1e-6), (f.gradient, f.message)
        # every objective call is counted: a forward-difference gradient costs K = 6
        # extra calls, an exact gradient none
        per_gradient = 7 if f.gradient == "finite-differences" else 1
        assert abs(f.nfev - per_gradient * f.njev) <= per_gradient, (f.gradient, f.nfev, f.njev)
    newton = apt.fit(d, method="trust-krylov")
    assert newton.success and newton.neg_loglik == pytest.approx(best, rel=1e-6)


def _accepted(method, gradient):
    if gradient == "finite-differences" and method in SECOND_ORDER:
        return False
    return not (gradient == "analytic-numpy" and method in SECOND_ORDER)


@pytest.fixture(scope="module")
def small_optimum():
    d = apt.simulate(300, 5, 5, seed=4)
    return d, apt.fit(d, gradient="analytic-fused", gtol=1e-8).neg_loglik


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("gradient", GRADIENTS)
def test_every_accepted_method_and_gradient_pair_fits(small_optimum, method, gradient):
    d, best = small_optimum
    if not _accepted(method, gradient):
        with pytest.raises(ValueError, match=f"method={method!r} needs Hessian"):
            apt.fit(d, gradient=gradient, method=method)
        return
    res = apt.fit(d, gradient=gradient, method=method)
    assert res.method == method and res.gradient == gradient
    assert res.neg_loglik >= best * (1 - 1e-10)  # nothing reports a value below the optimum
    if gradient == "finite-differences" and not res.success:
        return  # forward differences may stall a line search (TNC does here); it says so
    assert res.success, res.message
    rel = 1e-5 if gradient == "finite-differences" else 1e-8
    assert res.neg_loglik == pytest.approx(best, rel=rel)


def test_the_default_fit_is_the_fused_analytic_path_with_a_bhhh_start(small_optimum):
    d, best = small_optimum
    res = apt.fit(d)
    assert (res.gradient, res.init, res.method) == ("analytic-fused", "bhhh", "BFGS")
    assert res.success and res.neg_loglik == pytest.approx(best, rel=1e-8)
    other = apt.fit(d, gradient="autodiff", init="identity")
    assert other.neg_loglik == pytest.approx(res.neg_loglik, rel=1e-8)
    assert apt.fit(d, method="CG").init == "identity"  # "auto": BHHH is a BFGS start


def test_bhhh_start_works_for_the_numpy_gradient_too(small_optimum):
    d, best = small_optimum
    res = apt.fit(d, gradient="analytic-numpy", init="bhhh")
    assert res.success and res.neg_loglik == pytest.approx(best, rel=1e-8)


def test_a_non_finite_optimum_is_never_a_success(small_optimum, monkeypatch):
    from scipy.optimize import OptimizeResult

    def broken_minimize(fun, x0, **kwargs):  # an optimiser that walks off to NaN
        x = np.full_like(x0, np.nan)
        return OptimizeResult(x=x, success=True, message="converged", nit=1, njev=1)

    monkeypatch.setattr(estimate, "minimize", broken_minimize)
    res = apt.fit(small_optimum[0])
    assert not res.success
    assert res.message.startswith("non-finite optimum") and "converged" in res.message


def test_peer_estimators_reach_the_same_optimum(small_optimum):
    d, best = small_optimum
    loop = apt.fit_jax_loop(d)
    assert loop.success and loop.neg_loglik == pytest.approx(best, rel=1e-8)
    pandas = apt.fit_pandas(d.__class__(*d[:5], d.draws[:, :2], d.theta_true), gtol=1e-4)
    assert pandas.success and pandas.nfev > 7 * pandas.nit  # finite differences


@pytest.mark.slow
def test_estimates_cover_the_truth_with_many_halton_draws():
    d = apt.simulate(20_000, 5, 200, seed=2024, draws="halton")
    res = apt.fit(d, gradient="autodiff-fused")
    assert res.success, res.message
    se = apt.standard_errors(res.theta, d)
    estimate = se["estimate"].to_numpy().copy()
    estimate[5] = abs(estimate[5])  # sigma and -sigma are the same model
    z = np.abs(estimate - se["true"]) / se["se_hessian"]
    assert np.all(z < 3), z


def test_neg_loglik_on_common_draws_matches_direct_evaluation(data):
    draws = apt.make_draws(300, 40, "halton", seed=5)
    direct = apt.neg_loglik_numpy(apt.THETA_TRUE, data._replace(draws=draws))
    chunked = apt.neg_loglik_on_draws(apt.THETA_TRUE, data, draws, chunk=7)
    assert chunked == pytest.approx(direct, rel=1e-12)


def test_standard_errors_refuse_a_saddle(data):
    with pytest.raises(ValueError, match="not positive definite"):
        apt.standard_errors(np.array([0.0, 0, 0, 0, 0, 0.0]) + [5, -5, 5, -5, 5, 0.0], data)


@pytest.mark.parametrize(
    "theta, err, msg",
    [
        (
            np.array([0.0, 0, 0, 0, 0, np.nan]),
            ValueError,
            r"must be finite, found nan at index \(5,\)",
        ),
        (np.zeros(5), ValueError, r"must have shape \(6,\), got \(5,\)"),
        ("abcdef", TypeError, "must be a numeric array"),
        ([1, 2, "x", 4, 5, 6], TypeError, "must hold real numbers"),
        (np.zeros((2, 6)), ValueError, "must have shape"),
    ],
)
def test_bad_theta_gets_a_clear_error_everywhere(data, theta, err, msg):
    for fn in (
        apt.neg_loglik,
        apt.neg_loglik_numpy,
        apt.grad_analytic,
        apt.value_and_grad_analytic,
        apt.scores_analytic_numpy,
        apt.scores_autodiff,
        apt.standard_errors,
    ):
        with pytest.raises(err, match=msg):
            fn(theta, data)
    with pytest.raises(err, match=msg):
        apt.fit(data, theta)


def test_traced_theta_is_checked_by_shape():
    d = apt.simulate(20, 3, 2)
    with pytest.raises(ValueError, match=r"shape \(6,\), got a traced array of \(5,\)"):
        jax.jit(apt.neg_loglik)(np.zeros(5), d)


def test_fit_options_are_checked_before_any_work(data):
    cases = [
        ({"init": "bhhh", "method": "CG"}, ValueError, "init='bhhh' .* needs method='BFGS'"),
        ({"gradient": "finite-differences", "method": "trust-ncg"}, ValueError, "needs Hessian"),
        ({"gradient": "analytic-numpy", "chunk": 10}, ValueError, "chunk applies to the JAX"),
        ({"jit": "yes"}, TypeError, "jit must be a bool or a pair"),
        ({"gtol": 0.0}, ValueError, "gtol must be a finite number > 0"),
        ({"maxiter": 1.5}, TypeError, "maxiter must be an integer"),
        ({"init": "zeros"}, ValueError, "init must be one of"),
    ]
    for kwargs, err, msg in cases:
        with pytest.raises(err, match=msg):
            apt.fit(data, **kwargs)


FRESH = """
import jax, numpy as np
import mlejax_helpers.apartments as apt
import mlejax_helpers.mixed_logit as ml
d = apt.simulate(2000, 10, 12)
r = apt.fit(d)
assert r.success, r.message
assert apt.neg_loglik(r.theta, d).dtype == np.float64
jax.config.update("jax_enable_x64", False)
for call in (lambda: apt.neg_loglik(r.theta, d), lambda: apt.fit(d),
             lambda: apt.standard_errors(r.theta, d),
             lambda: ml.fit(*apt.to_mixed_logit(d)[:2], n_draws=3, method="device"),
             lambda: apt.neg_loglik_on_draws(r.theta, d, d.draws)):
    try:
        call()
    except RuntimeError as err:
        assert "jax_enable_x64 is off" in str(err), err
    else:
        raise AssertionError("float32 leaked into an estimation path")
print("float64 held")
"""


@pytest.mark.slow
def test_float32_cannot_leak_into_a_fit_in_a_fresh_process():
    out = subprocess.run([sys.executable, "-c", FRESH], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "float64 held" in out.stdout, out.stderr[-2000:]


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
        apt.make_data(**fields)


def test_bad_arguments_are_clear(data):
    with pytest.raises(ValueError, match=r"theta .* must have shape \(6,\)"):
        apt.neg_loglik_numpy(np.zeros(5), data)
    with pytest.raises(ValueError, match="gradient must be one of"):
        apt.fit(data, gradient="symbolic")
    with pytest.raises(ValueError, match="method must be one of"):
        apt.fit(data, method="Nelder-Mead")
    with pytest.raises(TypeError, match="data must be a MixedLogitData"):
        apt.fit({"choice": 1})
    with pytest.raises(TypeError, match=r"got MixedLogitData: .*apartments\.fit\(data\)"):
        ml.fit(data, data)  # chapter 6's data handed to the one estimator
    with pytest.raises(TypeError, match="data must be a MixedLogitData"):
        apt.neg_loglik(apt.THETA_TRUE, {"choice": 1})
    with pytest.raises(ValueError, match="n_options must be >= 1"):
        apt.simulate(10, 0, 5)
    with pytest.raises(TypeError, match="data must be a MixedLogitData"):
        apt.with_draws(data._asdict(), 5)
    with pytest.raises(ValueError, match="n_draws must be >= 1"):
        fit_xlogit(data, n_draws=0)


@pytest.mark.slow
def test_xlogit_long_format_and_fit_from_our_start():
    d = apt.simulate(2000, 5, 50, seed=8, draws="halton")
    X, y, ids, alts = to_xlogit_long(d)
    assert X.shape == (2000 * 6, 5)
    assert np.all(X[alts == 0] == 0)  # outside option: all-zero regressors
    assert np.all(np.bincount(ids, weights=y) == 1)  # one choice per consumer
    res = fit_xlogit(d, theta0=THETA_START, optim_method="L-BFGS-B")
    assert res["convergence"], res["message"]
    ours = apt.fit(d)
    np.testing.assert_allclose(res["theta"][:5], ours.theta[:5], atol=0.15)


def test_chunked_likelihood_and_gradients_match_the_whole(data, rng):
    theta = random_thetas(rng, 1)[0]
    whole = float(apt.neg_loglik(theta, data))
    for chunk in (1, 7, 300, 1000):
        assert float(apt.neg_loglik_chunked(theta, data, chunk)) == pytest.approx(whole, rel=1e-12)
    v, g = apt.value_and_grad_analytic_chunked(theta, data, 64)
    assert float(v) == pytest.approx(whole, rel=1e-12)
    g_auto = jax.grad(apt.neg_loglik_chunked)(theta, data, 64)
    np.testing.assert_allclose(g, apt.grad_analytic(theta, data), rtol=1e-10)
    np.testing.assert_allclose(g_auto, apt.grad_analytic(theta, data), rtol=1e-10)
    np.testing.assert_allclose(
        apt.scores_analytic_chunked(theta, data, 64),
        apt.scores_analytic(theta, data),
        rtol=1e-10,
        atol=1e-12,
    )


def test_fit_with_chunks_reaches_the_same_optimum():
    d = apt.simulate(800, 6, 8, seed=21)
    assert apt.default_chunk(d) is None  # small problems are not chunked
    whole = apt.fit(d, gradient="analytic-fused", init="bhhh", chunk=None)
    for gradient in ("autodiff", "analytic-fused", "finite-differences"):
        chunked = apt.fit(d, gradient=gradient, chunk=100)
        assert chunked.neg_loglik == pytest.approx(whole.neg_loglik, rel=1e-7), gradient
    with pytest.raises(ValueError, match="chunk must be >= 1"):
        apt.fit(d, chunk=0)
