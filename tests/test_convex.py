import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlejax_helpers.convex import (
    check_optimality,
    check_psd,
    himmelblau,
    quadratic,
    rosenbrock,
)


def test_known_minima_are_zero():
    assert float(rosenbrock(jnp.array([1.0, 1.0]))) == 0.0
    assert float(himmelblau(jnp.array([3.0, 2.0]))) == 0.0
    assert float(quadratic(jnp.array([0.0, 0.0]))) == 0.0


def test_functions_work_on_grids():
    grid = np.zeros((2, 4, 5))
    assert np.asarray(rosenbrock(grid)).shape == (4, 5)


def test_quadratic_hessian_is_diagonal():
    h = jax.hessian(quadratic)(jnp.array([0.3, -0.2]))
    np.testing.assert_allclose(h, np.diag([1.0, 10.0]))


def test_check_psd_accepts_and_rejects():
    assert check_psd(np.eye(3)).ok
    assert "positive definite" in check_psd(np.eye(3)).reason
    singular = check_psd(np.diag([1.0, 0.0]))
    assert singular.ok and "singular" in singular.reason
    bad = check_psd(np.diag([1.0, -2.0]))
    assert not bad.ok and "-2" in bad.reason and "direction" in bad.reason


def test_check_psd_rejects_asymmetric():
    res = check_psd(np.array([[1.0, 2.0], [0.0, 1.0]]))
    assert not res.ok and "symmetric" in res.reason


@pytest.mark.parametrize(
    "bad, err, msg",
    [
        (np.ones((2, 3)), ValueError, "square"),
        (np.ones(3), ValueError, "2-D"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), ValueError, "finite"),
        ("eye", TypeError, "numeric"),
    ],
)
def test_check_psd_bad_input(bad, err, msg):
    with pytest.raises(err, match=msg):
        check_psd(bad)


def test_check_optimality_classifies_points():
    assert "strict" in check_optimality(rosenbrock, [1.0, 1.0]).verdict
    assert "not stationary" in check_optimality(rosenbrock, [0.0, 0.0]).verdict
    saddle = check_optimality(lambda x: x[0] ** 2 - x[1] ** 2, [0.0, 0.0])
    assert saddle.is_stationary and not saddle.hessian.ok
    assert "inconclusive" in check_optimality(lambda x: x[0] ** 4, [0.0]).verdict


def test_psd_and_optimality_checks_agree_on_definiteness():
    def f(x):
        return 0.5 * (x[0] ** 2 + 1e-9 * x[1] ** 2)  # smallest eigenvalue 1e-9

    res = check_optimality(f, [0.0, 0.0])
    assert res.hessian.definite == check_psd(np.diag([1.0, 1e-9])).definite
    assert ("strict" in res.verdict) == res.hessian.definite
