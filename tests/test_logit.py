import jax
import numpy as np
import pytest
from scipy.optimize import minimize

from mlejax_helpers.logit import (
    check_logit_data,
    logit_nll,
    logit_nll_numpy,
    logit_nll_obs,
    simulate_logit,
)


def test_jax_and_numpy_agree(rng):
    X, y, _ = simulate_logit(200, 4, seed=3)
    b = rng.normal(size=4)
    assert float(logit_nll(b, X, y)) == pytest.approx(logit_nll_numpy(b, X, y), rel=1e-12)
    assert float(np.sum(logit_nll_obs(b, X, y))) == pytest.approx(logit_nll_numpy(b, X, y))


def test_gradient_matches_formula(rng):
    X, y, _ = simulate_logit(100, 3, seed=4)
    b = rng.normal(size=3)
    p = 1 / (1 + np.exp(-X @ b))
    np.testing.assert_allclose(jax.grad(logit_nll)(b, X, y), X.T @ (p - y), rtol=1e-10)


def test_no_overflow_for_large_index():
    X = np.array([[1.0, 800.0]])
    y = np.array([0.0])
    assert np.isfinite(float(logit_nll(np.array([0.0, 1.0]), X, y)))


def test_mle_recovers_truth():
    X, y, beta = simulate_logit(20_000, 3, seed=5)
    fit = minimize(logit_nll, np.zeros(3), args=(X, y), jac=jax.grad(logit_nll))
    se = np.sqrt(np.diag(np.linalg.inv(jax.hessian(logit_nll)(fit.x, X, y))))
    assert np.all(np.abs(fit.x - beta) < 4 * se)


def test_bad_data_is_rejected():
    X, y, _ = simulate_logit(10, 2)
    with pytest.raises(ValueError, match="y must hold only 0 and 1"):
        check_logit_data(X, y + 0.5)
    with pytest.raises(ValueError, match="shape"):
        check_logit_data(X, y[:5])
    with pytest.raises(ValueError, match="n must be >= 1"):
        simulate_logit(0)
