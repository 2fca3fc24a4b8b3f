r"""The general panel mixed logit: likelihood, analytic scores, fit, and what follows a fit.

With person ``p``'s draws :math:`\eta_{pr}` ``(K_r,)`` and coefficients
:math:`\beta_{pr}` (:class:`~.panel_data.PanelModel`), the utility of alternative
``j`` in situation ``t`` is :math:`V_{ptjr} = x_{ptj}'\beta_{pr}`, and

.. math::

    \log \check L_p = \log \frac1R \sum_r \exp\Big(\sum_t \log P_{ptr}\Big),
    \qquad \log P_{ptr} = V_{pt c_{pt} r} - \log \sum_{j\ \mathrm{available}} e^{V_{ptjr}}:

the situations of one person share that person's draws (a product of
probabilities inside the average over draws). The objective is
:math:`-\sum_p \log \check L_p`. Work is ``O(P T J R K_r)`` with one ``exp``
per ``(p, t, j, r)`` element; the analytic score reuses the probabilities.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from scipy.optimize import minimize

from .._validate import as_vector, positive_int, positive_number
from .data import require_x64
from .diagnostics import convergence, require_optimum
from .estimate import Counted, Remembered, bhhh_start, covariances, finite_outcome
from .panel_data import PanelData, PanelModel
from .sharding import to_host

BLOCK = 16  # persons per block: measured fastest on the electricity data (2-core CPU)


def _check(model, data, draws, theta=None):
    require_x64()  # a float32 theta or likelihood would stop short of the optimum
    if not isinstance(model, PanelModel):
        raise TypeError(f"model must be a PanelModel, got {type(model).__name__}")
    if not isinstance(data, PanelData):
        raise TypeError(
            f"data must be a PanelData (build it with from_long), got {type(data).__name__}"
        )
    kr = len(model.random)
    if not hasattr(draws, "shape") or draws.ndim != 3:
        raise ValueError(f"draws must be an array of shape (P, R, K_r), got {draws!r:.80}")
    if tuple(data.attributes) != model.attributes:
        raise ValueError(
            f"data's attributes {tuple(data.attributes)} are not the model's {model.attributes} "
            "(names and order must match): build data with "
            "from_long(..., attributes=model.attributes)"
        )
    if draws.shape != (data.x.shape[0], draws.shape[1], kr):
        raise ValueError(
            f"draws must have shape (P, R, K_r) = ({data.x.shape[0]}, R, {kr}), got {draws.shape}"
        )
    if not isinstance(draws, jax.core.Tracer) and not np.all(np.isfinite(np.asarray(draws))):
        raise ValueError(f"draws must be finite: {np.sum(~np.isfinite(draws))} NaN or inf value(s)")
    if theta is not None and not isinstance(theta, jax.core.Tracer):
        return jnp.asarray(as_vector(theta, "theta", len(model.param_names)))
    return theta


def coefficients(theta, model: PanelModel, draws):
    r"""``(beta, d_eta)`` for draws ``(..., K_r)``, e.g. ``(P, R, K_r)``.

    ``beta`` ``(..., K)``: every coefficient per draw (fixed ones repeated);
    ``d_eta`` ``(..., K_r)``: each random coefficient's derivative with respect to its
    exponent :math:`m_k + (L\eta)_k` (1 for normal, ``beta`` for lognormal).
    """
    k, kr, idx = len(model.attributes), len(model.random), jnp.array(model.random_index, int)
    mean = theta[:k]
    if model.correlated:
        rows, cols = np.tril_indices(kr)
        chol = jnp.zeros((kr, kr)).at[rows, cols].set(theta[k:])
    else:
        chol = jnp.diag(theta[k:])
    expo = mean[idx] + draws @ chol.T
    ln = jnp.asarray(model.lognormal)
    beta_r = jnp.where(ln, jnp.exp(jnp.where(ln, expo, 0.0)), expo)
    beta = jnp.broadcast_to(mean, (*draws.shape[:-1], k)).at[..., idx].set(beta_r)
    return beta, jnp.where(ln, beta_r, 1.0)


def _person(dx, avail, beta):
    r"""One person: ``dx`` ``(T, J, K)`` attributes less the chosen one's, ``avail`` ``(T, J)``,
    ``beta`` ``(R, K)``. Returns :math:`\ell_r = \sum_t \log P_{tr}` ``(R,)`` and
    :math:`g_{rk} = \partial \ell_r / \partial \beta_{rk} = -\sum_{t,j} P_{tjr}\, dx_{tjk}`
    ``(R, K)``. With ``dx`` relative to the chosen alternative,
    :math:`-\log P_{tr} = \log \sum_j e^{v_{tjr}}`, :math:`v = dx'\beta_r`: a log-sum-exp
    shifted by its largest available term :math:`m_{tr} \ge 0` (the chosen one has
    :math:`v = 0`), so no ``exp`` overflows at any utility; one ``exp`` per element.
    """
    v = jnp.einsum("tjk,rk->tjr", dx, beta)
    v = jnp.where(avail[..., None] > 0, v, -jnp.inf)  # unavailable: exp(-inf) = 0
    m = jax.lax.stop_gradient(jnp.max(v, axis=1))  # (T, R); the chosen term makes it >= 0
    e = jnp.exp(v - m[:, None, :])
    s = jnp.sum(e, axis=1)  # (T, R), in [1, J]
    return -jnp.sum(m + jnp.log(s), axis=0), -jnp.einsum("tjr,tjk->rk", e / s[:, None, :], dx)


def _per_person(fn, theta, model, data, draws, block):
    """``fn(theta, model, dx, avail, draws)`` for every person, ``block`` persons at a time
    (``lax.map``), so the ``(block, T, J, R)`` temporaries stay in cache."""
    rows = (data.dx, data.avail, draws)
    return jax.lax.map(lambda a: fn(theta, model, *a), rows, batch_size=block)


def _person_loglik(theta, model, dx, avail, draws):
    r"""One person's :math:`\log \check L_p` and draw weights :math:`\ell_r` ``(R,)``."""
    ell = _person(dx, avail, coefficients(theta, model, draws)[0])[0]
    return jax.nn.logsumexp(ell) - jnp.log(ell.shape[0]), ell


def _person_scores(theta, model, dx, avail, draws):
    r"""One person's :math:`\log \check L_p` and score ``(n_theta,)`` (see
    :func:`value_and_scores`)."""
    beta, d_eta = coefficients(theta, model, draws)
    ell, g = _person(dx, avail, beta)
    w = jax.nn.softmax(ell)[:, None] * g  # d log L_p / d beta_rk   (R, K)
    idx = jnp.array(model.random_index, int)
    w_r = w[:, idx] * d_eta  # through the exponent of each random coefficient
    s_mean = w.sum(axis=0).at[idx].set(w_r.sum(axis=0))
    s_chol = w_r.T @ draws  # (K_r, K_r): d / d L_kl = sum_r w_rk eta_rl
    kr = len(model.random)
    rows, cols = np.tril_indices(kr) if model.correlated else (np.arange(kr), np.arange(kr))
    log_l = jax.nn.logsumexp(ell) - jnp.log(ell.shape[0])
    return log_l, jnp.concatenate([s_mean, s_chol[rows, cols]])


def log_lik_persons(theta, model, data, draws):
    r""":math:`\log \check L_p` for every person ``(P,)``."""
    theta = _check(model, data, draws, theta)
    return _per_person(_person_loglik, theta, model, data, draws, BLOCK)[0]


def neg_loglik(theta, model: PanelModel, data: PanelData, draws, weight=None):
    r"""The simulated -LL :math:`-\sum_p w_p \log \check L_p` (``weight`` ``(P,)``, default 1)."""
    log_l = log_lik_persons(theta, model, data, draws)
    return -jnp.sum(log_l if weight is None else weight * log_l)


def value_and_scores(theta, model: PanelModel, data: PanelData, draws):
    r"""``(-LL, S)``: the total -LL and the analytic per-person scores
    :math:`s_p = \partial \log \check L_p / \partial\theta` ``(P, n_theta)``.

    With :math:`\omega_{pr}` the posterior weight of draw ``r`` (softmax over ``r``
    of :math:`\ell_{pr} = \sum_t \log P_{ptr}`),
    :math:`\partial \log \check L_p / \partial \beta_{prk} = \omega_{pr} g_{prk}` (see
    :func:`_person`); the chain rule through :func:`coefficients` gives each
    parameter's score. Computed person by person, inside the blocks.
    """
    theta = _check(model, data, draws, theta)
    log_l, scores = _per_person(_person_scores, theta, model, data, draws, BLOCK)
    return -jnp.sum(log_l), scores


def value_and_grad(theta, model: PanelModel, data: PanelData, draws):
    """``(-LL, gradient)`` from :func:`value_and_scores` (the gradient is minus the scores' sum)."""
    value, scores = value_and_scores(theta, model, data, draws)
    return value, -scores.sum(axis=0)


@dataclass(frozen=True)
class PanelFit:
    """What :func:`fit_panel` returns; ``compile_s`` is the warm-up (tracing and compiling),
    ``run_s`` the optimisation alone. ``success`` is the convergence test of
    :func:`~.diagnostics.convergence` (every parameter identified and the scaled gradient
    ``g'B^-1 g`` at most ``GRAD_TOL``, ``scaled_gradient``), never scipy's flag alone;
    ``message`` says which test decided and what scipy said."""

    theta: np.ndarray
    names: tuple
    neg_loglik: float
    nit: int
    nfev: int
    success: bool
    message: str
    compile_s: float
    run_s: float
    scaled_gradient: float = float("nan")


def default_start(model: PanelModel) -> np.ndarray:
    """Zero means and 0.1 for every standard deviation (Cholesky diagonal)."""
    k, kr = len(model.attributes), len(model.random)
    rest = np.eye(kr)[np.tril_indices(kr)] if model.correlated else np.ones(kr)
    return np.r_[np.zeros(k), 0.1 * rest]


def mnl_start(model: PanelModel, data: PanelData) -> np.ndarray:
    """xlogit's default start: the multinomial logit estimate (every coefficient fixed,
    fitted with the same code and one empty draw) for the means, and 0.1 for every
    standard deviation (Cholesky diagonal)."""
    fixed = PanelModel(model.attributes)
    mnl = fit_panel(fixed, data, np.zeros((data.x.shape[0], 1, 0)))
    if not mnl.success:
        raise RuntimeError(f"the multinomial logit start did not converge: {mnl.message}")
    return np.r_[mnl.theta, default_start(model)[len(model.attributes) :]]


def fit_panel(
    model,
    data,
    draws,
    theta0=None,
    *,
    method="L-BFGS-B",
    gradient="analytic",
    gtol=1e-6,
    ftol=1e-10,
    maxiter=2000,
) -> PanelFit:
    """Minimise the total -LL from ``theta0`` (default :func:`default_start`) with scipy,
    one jitted value-and-gradient call per iteration.

    ``method``: ``"L-BFGS-B"`` (the default, with xlogit's stopping rule: ``ftol``
    1e-10, ``gtol`` 1e-6 on the total gradient) or ``"BFGS"`` (started from the
    inverse BHHH matrix at ``theta0``; stops at ``gtol``). ``gradient``:
    ``"analytic"`` (:func:`value_and_grad`) or ``"autodiff"`` (``jax.value_and_grad``
    of :func:`neg_loglik`). A mixed logit's simulated likelihood can have several
    local optima; chapter 8 shows two methods reaching different ones.
    """
    require_x64()
    theta0 = default_start(model) if theta0 is None else theta0
    theta0 = np.array(_check(model, data, draws, theta0), dtype=float)
    for value, name, allowed in (
        (method, "method", ("L-BFGS-B", "BFGS")),
        (gradient, "gradient", ("analytic", "autodiff")),
    ):
        if value not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    gtol, ftol = positive_number(gtol, "gtol"), positive_number(ftol, "ftol")
    maxiter = positive_int(maxiter, "maxiter")
    t0 = time.perf_counter()
    dev = jax.device_put((data, draws))
    vs = jax.jit(value_and_scores, static_argnums=1)
    # -LL and the per-person scores S from one program; the gradient is -sum(S)
    scores = Remembered(lambda th: tuple(to_host(x) for x in vs(th, model, *dev)))
    if gradient == "analytic":
        fun = lambda th: (float(scores(th)[0]), -scores(th)[1].sum(axis=0))  # noqa: E731
    else:
        vg = jax.jit(jax.value_and_grad(neg_loglik), static_argnums=1)
        fun = lambda th: tuple(to_host(x) for x in vg(th, model, *dev))  # noqa: E731
    fun(theta0)
    options = {"gtol": gtol, "maxiter": maxiter}
    if method == "BFGS":
        s0 = scores(theta0)[1]
        options["hess_inv0"] = bhhh_start(s0.T @ s0, model.param_names)
    else:
        options["ftol"] = ftol
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    counted = Counted(fun)
    res = minimize(counted, theta0, jac=True, method=method, options=options)
    run_s = time.perf_counter() - t0
    value, s_hat = scores(res.x)  # scipy's last evaluation is usually at res.x: remembered
    success, message, crit = convergence(
        -s_hat.sum(axis=0), s_hat.T @ s_hat, model.param_names, res.message
    )
    success, message = finite_outcome(success, message, res.x, float(value))
    return PanelFit(
        res.x,
        model.param_names,
        float(value),
        int(res.nit),
        counted.calls,
        success,
        message,
        compile_s,
        run_s,
        crit,
    )


def coefficient_table(theta, model: PanelModel, data: PanelData, draws) -> pd.DataFrame:
    """Estimates with Hessian, BHHH and robust (sandwich) standard errors, one row per
    parameter, and the covariances in ``.attrs["cov"]``.

    Refused (``ValueError``, see :func:`~.diagnostics.require_optimum`) where they mean
    nothing: a parameter that is not identified (named), a Hessian that is not positive
    definite, or a point that fails the convergence test."""
    theta = np.asarray(_check(model, data, draws, theta), dtype=float)
    dev = jax.device_put((data, draws))
    h = np.asarray(jax.jit(jax.hessian(neg_loglik), static_argnums=1)(theta, model, *dev))
    s = np.asarray(jax.jit(value_and_scores, static_argnums=1)(theta, model, *dev)[1])
    require_optimum(-s.sum(axis=0), h, model.param_names)
    cov = covariances(h, s)
    table = pd.DataFrame(
        {"estimate": theta, **{f"se_{k}": np.sqrt(np.diag(v)) for k, v in cov.items()}},
        index=list(model.param_names),
    )
    table.attrs["cov"] = cov
    return table


def delta_method(fn, theta, cov) -> tuple[float, float]:
    r"""``(g(theta), se)`` for a scalar function ``fn`` of the parameters, with
    :math:`\mathrm{se}^2 = \nabla g' \,\Sigma\, \nabla g` (gradient by ``jax.jacobian``),
    in float64 (refused when float64 is off)."""
    require_x64()
    theta = jnp.asarray(as_vector(theta, "theta"), dtype=jnp.float64)
    cov = np.asarray(cov, dtype=float)
    if cov.shape != (theta.size, theta.size):
        raise ValueError(f"cov must have shape {(theta.size, theta.size)}, got {cov.shape}")
    grad = np.asarray(jax.jacobian(fn)(theta))
    if grad.shape != (theta.size,):
        raise ValueError(f"fn must return a scalar, got an array of shape {grad.shape[:-1]}")
    return float(fn(theta)), float(np.sqrt(grad @ cov @ grad))


def willingness_to_pay(model: PanelModel, attribute: str, price: str):
    r"""The function :math:`\theta \mapsto -m_{\mathrm{attribute}} / m_{\mathrm{price}}`
    (ratio of mean coefficients of normal or fixed ones), for :func:`delta_method`.

    Refused for a lognormal coefficient: its ``m`` is the mean of the *log*
    coefficient, so the ratio would not be a willingness to pay."""
    for arg, name in (("attribute", attribute), ("price", price)):
        if name not in model.attributes:
            raise ValueError(f"{arg} {name!r} is not one of the model's {model.attributes}")
        if dict(model.random).get(name) == "ln":
            raise ValueError(
                f"{arg} {name!r} has a lognormal coefficient: -m_a / m_price is a ratio of means "
                "only for normal or fixed coefficients; use the coefficients' moments instead"
            )
    a, b = model.attributes.index(attribute), model.attributes.index(price)
    return lambda theta: -theta[a] / theta[b]


def conditional_means(theta, model: PanelModel, data: PanelData, draws) -> np.ndarray:
    r"""Each person's expected random coefficients given their choices (Train 2009, ch. 11):
    :math:`\bar\beta_p = \sum_r \omega_{pr} \beta_{pr}` ``(P, K_r)``, with :math:`\omega_{pr}`
    the likelihood weight of draw ``r`` in person ``p``'s choices."""
    theta = _check(model, data, draws, theta)
    ell = _per_person(_person_loglik, theta, model, data, draws, BLOCK)[1]
    omega = jax.nn.softmax(ell, axis=1)
    beta_r = coefficients(theta, model, draws)[0][..., jnp.array(model.random_index, int)]
    return np.asarray(jnp.einsum("pr,prk->pk", omega, beta_r))
