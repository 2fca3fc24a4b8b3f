import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlejax_helpers.convex import rosenbrock
from mlejax_helpers.derivatives import hvp, per_observation_scores
from mlejax_helpers.logit import logit_nll, simulate_logit


def test_hvp_matches_full_hessian(rng):
    def f(x):
        return jnp.sum(jnp.sin(x) * x**2) + rosenbrock(x[:2])

    for _ in range(5):
        x, v = rng.normal(size=(2, 6))
        np.testing.assert_allclose(hvp(f, x, v), jax.hessian(f)(x) @ v, rtol=1e-10, atol=1e-10)


def test_hvp_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="v must have the shape of x"):
        hvp(rosenbrock, np.zeros(2), np.zeros(3))


def test_scores_sum_to_gradient_and_equal_jacrev(rng):
    X, y, _ = simulate_logit(50, 3, seed=2)
    b = rng.normal(size=3)

    def nll_i(beta, x_i, y_i):
        z = x_i @ beta
        return jnp.logaddexp(0.0, z) - y_i * z

    s = per_observation_scores(nll_i, b, X, y)
    assert s.shape == (50, 3)
    np.testing.assert_allclose(s.sum(axis=0), jax.grad(logit_nll)(b, X, y), rtol=1e-10)
    p = 1 / (1 + np.exp(-X @ b))
    np.testing.assert_allclose(s, X * (p - y)[:, None], rtol=1e-10, atol=1e-12)


def test_scores_reject_ragged_data():
    with pytest.raises(ValueError, match="same number of rows"):
        per_observation_scores(lambda b, x, y: b @ x, np.zeros(2), np.ones((3, 2)), np.ones(4))
