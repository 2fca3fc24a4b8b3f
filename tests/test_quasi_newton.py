import jax
import numpy as np
import pytest

from mlejax_helpers.convex import himmelblau, quadratic, rosenbrock
from mlejax_helpers.quasi_newton import (
    bfgs,
    bfgs_update_hessian,
    bfgs_update_inverse,
    curvature_ok,
    gradient_descent,
    newton,
    sr1_update,
    wolfe_line_search,
)


def random_spd(rng, n):
    a = rng.normal(size=(n, n))
    return a @ a.T + n * np.eye(n)


def random_pair(rng, n, curvature=True):
    s = rng.normal(size=n)
    y = rng.normal(size=n)
    if curvature and s @ y <= 0:
        y = -y
    return s, y


@pytest.mark.parametrize("n", [2, 5, 10])
def test_bfgs_updates_satisfy_secant_equation(rng, n):
    for _ in range(20):
        h = random_spd(rng, n)
        s, y = random_pair(rng, n)
        np.testing.assert_allclose(bfgs_update_inverse(h, s, y) @ y, s, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(bfgs_update_hessian(h, s, y) @ s, y, rtol=1e-9, atol=1e-9)


def test_bfgs_inverse_and_direct_forms_agree(rng):
    b = random_spd(rng, 4)
    s, y = random_pair(rng, 4)
    np.testing.assert_allclose(
        np.linalg.inv(bfgs_update_hessian(b, s, y)),
        bfgs_update_inverse(np.linalg.inv(b), s, y),
        rtol=1e-8,
        atol=1e-10,
    )


def test_bfgs_keeps_positive_definiteness_under_curvature(rng):
    h = np.eye(6)
    for _ in range(50):
        s = rng.normal(size=6)
        y = random_spd(rng, 6) @ s  # y = M s with M SPD, so y's > 0
        assert s @ y > 0
        h = bfgs_update_inverse(h, s, y)  # not symmetrised here: the update must keep symmetry
        np.testing.assert_allclose(h, h.T, atol=1e-10 * np.abs(h).max())
        assert np.linalg.eigvalsh(h)[0] > 0


def test_bfgs_refuses_negative_curvature(rng):
    s = np.array([1.0, 0.0])
    with pytest.raises(ValueError, match="curvature condition fails"):
        bfgs_update_inverse(np.eye(2), s, -s)
    with pytest.raises(ValueError, match="curvature condition fails"):
        bfgs_update_hessian(np.eye(2), s, -s)


def test_sr1_secant_and_skip(rng):
    b = random_spd(rng, 3)
    s, y = random_pair(rng, 3, curvature=False)
    b_new, skipped = sr1_update(b, s, y)
    assert not skipped
    np.testing.assert_allclose(b_new @ s, y, rtol=1e-9, atol=1e-9)
    # y - B s orthogonal to s: the SR1 denominator is zero, so the update is skipped
    v = np.cross(s, rng.normal(size=3))
    b_same, skipped = sr1_update(b, s, b @ s + v)
    assert skipped
    np.testing.assert_array_equal(b_same, b)


def test_sr1_recovers_a_quadratic_hessian(rng):
    a = np.array([[3.0, 1.0, 0.0], [1.0, -2.0, 0.5], [0.0, 0.5, 1.0]])  # indefinite
    b = np.eye(3)
    for s in np.eye(3):
        b, _ = sr1_update(b, s, a @ s)
    np.testing.assert_allclose(b, a, atol=1e-12)


@pytest.mark.parametrize(
    "args, err, msg",
    [
        ((np.ones((2, 3)), np.ones(2), np.ones(2)), ValueError, "square"),
        ((np.eye(2), np.ones(3), np.ones(2)), ValueError, "s must have shape"),
        ((np.eye(2), np.ones(2), np.array([1.0, np.nan])), ValueError, "y must be finite"),
        ((np.eye(2), "s", np.ones(2)), TypeError, "s must be"),
    ],
)
def test_updates_reject_bad_input(args, err, msg):
    for update in (bfgs_update_inverse, bfgs_update_hessian, sr1_update):
        with pytest.raises(err, match=msg):
            update(*args)


rosen = jax.jit(rosenbrock)
rosen_grad = jax.jit(jax.grad(rosenbrock))


def test_teaching_bfgs_solves_rosenbrock():
    res = bfgs(rosen, rosen_grad, [-1.2, 1.0])
    assert res.success
    np.testing.assert_allclose(res.x, [1.0, 1.0], atol=1e-6)
    assert res.path.shape == (res.nit + 1, 2)
    assert np.all(np.diff(res.values) <= 1e-12)  # Wolfe steps always decrease f


def test_wolfe_step_satisfies_both_conditions():
    x = np.array([-1.2, 1.0])
    g = np.asarray(rosen_grad(x))
    d = -g / np.linalg.norm(g)

    def phi(a):
        return float(rosen(x + a * d))

    def dphi(a):
        return float(np.asarray(rosen_grad(x + a * d)) @ d)

    a = wolfe_line_search(phi, dphi, phi(0.0), dphi(0.0))
    assert phi(a) <= phi(0.0) + 1e-4 * a * dphi(0.0)
    assert abs(dphi(a)) <= 0.9 * abs(dphi(0.0))
    with pytest.raises(ValueError, match="descent direction"):
        wolfe_line_search(phi, dphi, phi(0.0), 1.0)


def test_gradient_descent_step_size_decides_convergence():
    grad = jax.grad(quadratic)  # Hessian diag(1, 10): stable iff step < 2/10
    ok = gradient_descent(grad, [2.0, 1.0], step=0.15, maxiter=500)
    bad = gradient_descent(grad, [2.0, 1.0], step=0.21, maxiter=500)
    assert ok.success and np.allclose(ok.x, 0, atol=1e-7)
    assert not bad.success and "diverged" in bad.message


def test_newton_converges_quadratically():
    res = newton(rosen_grad, jax.hessian(rosenbrock), [-1.2, 1.0], f=rosen)
    err = np.linalg.norm(res.path - 1.0, axis=1)
    err = err[err > 1e-14]
    assert res.success
    ratios = err[-3:][1:] / err[-3:][:-1] ** 2
    assert np.all(ratios < 10)  # e_{k+1} <= C e_k^2


def test_newton_walks_to_a_maximum_of_a_nonconvex_function():
    res = newton(jax.grad(himmelblau), jax.hessian(himmelblau), [-0.3, -0.9])
    np.testing.assert_allclose(res.x, [-0.270845, -0.923039], atol=1e-5)
    assert "not positive definite" in res.message


def test_optimisers_reject_bad_input():
    with pytest.raises(TypeError, match="grad must be callable"):
        gradient_descent(None, [1.0], step=0.1)
    with pytest.raises(ValueError, match="step must be a finite number > 0"):
        gradient_descent(rosen_grad, [1.0, 1.0], step=-1.0)
    with pytest.raises(ValueError, match="x0 must be finite"):
        bfgs(rosen, rosen_grad, [np.nan, 1.0])


def test_newton_stops_with_a_message_on_a_singular_hessian():
    def f(x):
        return x[0] ** 4 + x[1] ** 2  # Hessian diag(12 x0^2, 2): singular where x0 = 0

    res = newton(jax.grad(f), jax.hessian(f), [0.0, 1.0], f=f)
    assert not res.success and "singular Hessian" in res.message
    assert res.nit == 0


def test_bfgs_skips_exactly_the_pairs_the_update_refuses(rng):
    s = np.array([1.0, 0.0])
    for y in (np.array([1e-14, 1.0]), np.array([-1.0, 0.0]), np.array([1.0, 1.0])):
        if curvature_ok(s, y):
            bfgs_update_inverse(np.eye(2), s, y)  # accepted pairs never raise
        else:
            with pytest.raises(ValueError, match="curvature condition fails"):
                bfgs_update_inverse(np.eye(2), s, y)
    assert not curvature_ok(s, np.array([1e-14, 1.0]))  # positive, but below the margin
