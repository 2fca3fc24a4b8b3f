import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlejax_helpers import autodiff as ad
from mlejax_helpers.findiff import default_step, derivative, gradient


def f_seed(x1, x2):
    return x1 * x2 + ad.sin(x1)


def f_seed_jax(x):
    return x[0] * x[1] + jnp.sin(x[0])


def random_logit(rng, n=25, k=3):
    X = np.column_stack([np.ones(n), rng.normal(size=(n, k - 1))])
    y = (rng.uniform(size=n) < 0.5).astype(float)
    return X, y


def logit_nll_scalar(X, y):
    """The logistic negative log-likelihood as a function of k scalars, built from ad ops."""

    def f(*beta):
        total = 0.0
        for xi, yi in zip(X, y, strict=True):
            z = sum(float(xij) * bj for xij, bj in zip(xi, beta, strict=True))
            total = total + ad.log(1.0 + ad.exp(z)) - float(yi) * z
        return total

    return f


def logit_nll_jax(beta, X, y):
    z = X @ beta
    return jnp.sum(jnp.log1p(jnp.exp(z)) - y * z)


@pytest.mark.parametrize("mode", [ad.forward_grad, ad.reverse_grad])
def test_modes_match_jax_on_the_seed_function(rng, mode):
    for x in rng.normal(scale=3, size=(50, 2)):
        np.testing.assert_allclose(mode(f_seed, x), jax.grad(f_seed_jax)(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", [ad.forward_grad, ad.reverse_grad])
def test_modes_match_jax_on_logit_nll(rng, mode):
    X, y = random_logit(rng)
    f = logit_nll_scalar(X, y)
    for beta in rng.normal(size=(5, 3)):
        expected = jax.grad(logit_nll_jax)(beta, X, y)
        np.testing.assert_allclose(mode(f, beta), expected, rtol=1e-12, atol=1e-12)


def test_jvp_matches_jax(rng):
    x, v = rng.normal(size=(2, 2))
    _, expected = jax.jvp(f_seed_jax, (jnp.asarray(x),), (jnp.asarray(v),))
    assert ad.forward_jvp(f_seed, x, v) == pytest.approx(float(expected), rel=1e-12)


def test_all_operations_against_jax(rng):
    def g(a, b):
        return a**3 / b - 2.0 * ad.exp(-a) + ad.log(b) * ad.cos(a) - 1.0 / a + 3.0 - b + (-a)

    def gj(x):
        a, b = x
        return a**3 / b - 2.0 * jnp.exp(-a) + jnp.log(b) * jnp.cos(a) - 1.0 / a + 3.0 - b + (-a)

    x = np.array([0.7, 1.9])
    for mode in (ad.forward_grad, ad.reverse_grad):
        np.testing.assert_allclose(mode(g, x), jax.grad(gj)(x), rtol=1e-12)


def test_variable_used_twice_accumulates_adjoints():
    tape = ad.Tape()
    x = tape.var(3.0)
    y = x * x + x  # x is used three times
    assert tape.backward(y)[x.index] == pytest.approx(2 * 3.0 + 1)


def test_dual_numbers_work_on_arrays():
    x = ad.Dual(np.array([0.0, 1.0]), np.array([1.0, 1.0]))
    y = ad.sin(x) * x
    np.testing.assert_allclose(y.dot, np.cos(x.val) * x.val + np.sin(x.val))


def test_constant_function_has_zero_gradient():
    np.testing.assert_array_equal(ad.reverse_grad(lambda a, b: 2.0, [1.0, 2.0]), [0.0, 0.0])
    np.testing.assert_array_equal(ad.forward_grad(lambda a, b: 2.0, [1.0, 2.0]), [0.0, 0.0])


def test_unsupported_operations_raise_clear_errors():
    with pytest.raises(TypeError, match="constant real exponents"):
        ad.forward_grad(lambda a, b: a**b, [1.0, 2.0])
    with pytest.raises(TypeError, match="ufunc"):
        ad.reverse_grad(lambda a, b: np.sin(a), [1.0, 2.0])
    with pytest.raises(ValueError, match="log is undefined"):
        ad.reverse_grad(lambda a, b: ad.log(a), [-1.0, 2.0])
    with pytest.raises(TypeError, match="unsupported operand"):
        ad.forward_grad(lambda a, b: a + "1", [1.0, 2.0])
    with pytest.raises(TypeError, match="f must return a scalar"):
        ad.reverse_grad(lambda a, b: [a, b], [1.0, 2.0])
    with pytest.raises(ValueError, match="x must be finite"):
        ad.reverse_grad(f_seed, [np.nan, 1.0])


def test_tapes_cannot_be_mixed():
    t1, t2 = ad.Tape(), ad.Tape()
    with pytest.raises(ValueError, match="different tapes"):
        t1.var(1.0) + t2.var(2.0)


def exact(x):
    return np.array([x[1] + np.cos(x[0]), x[0]])


def f_np(x):
    return x[0] * x[1] + np.sin(x[0])


def test_finite_differences_have_their_order():
    x = np.array([0.8, -0.4])
    for scheme, order in (("forward", 1), ("central", 2)):
        errs = [
            np.abs(gradient(f_np, x, h=h, scheme=scheme) - exact(x)).max() for h in (1e-2, 1e-3)
        ]
        slope = np.log10(errs[0] / errs[1])
        assert slope == pytest.approx(order, abs=0.15), (scheme, errs)


def test_default_steps_are_accurate():
    x = np.array([0.8, -0.4])
    assert np.abs(gradient(f_np, x, scheme="forward") - exact(x)).max() < 1e-7
    assert np.abs(gradient(f_np, x, scheme="central") - exact(x)).max() < 1e-9
    assert np.abs(gradient(f_np, x, scheme="complex") - exact(x)).max() < 1e-14
    assert default_step([10.0], "central")[0] == pytest.approx(10 * np.finfo(float).eps ** (1 / 3))


def test_derivative_and_bad_input():
    assert derivative(np.exp, 0.0, 1e-5) == pytest.approx(1.0, rel=1e-9)
    with pytest.raises(ValueError, match="scheme must be one of"):
        gradient(f_np, [0.0, 0.0], scheme="backward")
    with pytest.raises(ValueError, match="h must be a finite number > 0"):
        gradient(f_np, [0.0, 0.0], h=0.0)


def test_nested_duals_give_second_derivatives():
    x = ad.Dual(ad.Dual(0.7, 1.0), ad.Dual(1.0, 0.0))
    y = x * ad.sin(x) + ad.exp(x) * ad.cos(x) + ad.log(x)
    expected = jax.grad(jax.grad(lambda t: t * jnp.sin(t) + jnp.exp(t) * jnp.cos(t) + jnp.log(t)))
    assert y.dot.dot == pytest.approx(float(expected(0.7)), rel=1e-12)
