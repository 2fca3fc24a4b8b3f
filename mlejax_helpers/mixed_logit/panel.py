r"""The general panel mixed logit: likelihood, analytic scores, fit, and what follows a fit.

With person ``p``'s draws :math:`\eta_{pr}` ``(K_r,)`` and coefficients
:math:`\beta_{pr}` (:class:`~.panel_data.MixedLogit`), the utility of alternative
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

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from scipy.optimize import minimize

from .._validate import as_float_array, as_vector, positive_int, positive_number
from .data import require_x64
from .diagnostics import convergence, require_optimum
from .estimate import Counted, Remembered, bhhh_start, finite_outcome
from .model import MixedLogit, coefficients, default_start, random_coefficients
from .panel_data import PANEL_DRAW_KINDS, PanelArrays, PanelData, panel_draws
from .results import Result
from .sharding import to_host

# (t, j, r) elements per block of persons: 16 electricity persons at 600 draws, the block
# size measured fastest there on the 2-core CPU, and chapter 6's CPU chunk
BLOCK_ELEMENTS = 2**19


def _check(model, data, draws, theta=None):
    """``(theta, arrays)``: ``theta`` as a float64 vector (when concrete) and the data's
    :class:`PanelArrays`, after checking the model, the data's attribute names and the
    draws' shape. Inside the package's jitted programs ``data`` is already ``PanelArrays``."""
    require_x64()  # a float32 theta or likelihood would stop short of the optimum
    if not isinstance(model, MixedLogit):
        raise TypeError(f"model must be a MixedLogit, got {type(model).__name__}")
    if isinstance(data, PanelData):
        if data.attributes != model.attributes:
            raise ValueError(
                f"data's attributes {data.attributes} are not the model's {model.attributes} "
                "(names and order must match): build data with from_long(df, model, ...)"
            )
        data = data.arrays
    elif not isinstance(data, PanelArrays):
        raise TypeError(
            f"data must be a PanelData (build it with from_long), got {type(data).__name__}"
        )
    kr, n = len(model.random), data.x.shape[0]
    if not hasattr(draws, "shape") or draws.ndim != 3 or draws.shape[::2] != (n, kr):
        got = getattr(draws, "shape", draws)
        raise ValueError(f"draws must have shape (P, R, K_r) = ({n}, R, {kr}), got {got!r:.80}")
    if not isinstance(draws, jax.core.Tracer) and not np.all(np.isfinite(np.asarray(draws))):
        raise ValueError(f"draws must be finite: {np.sum(~np.isfinite(draws))} NaN or inf value(s)")
    if theta is not None and not isinstance(theta, jax.core.Tracer):
        theta = jnp.asarray(as_vector(theta, "theta", len(model.param_names)))
    return theta, data


def _person(theta, model, dx, avail, draws):
    r"""One person: ``dx`` ``(T, J, K)`` attributes less the chosen one's, ``avail`` ``(T, J)``,
    ``draws`` ``(R, K_r)``. Returns :math:`\ell_r = \sum_t \log P_{tr}` ``(R,)``, the
    unnormalised probabilities :math:`e_{tjr} = e^{v_{tjr} - m_{tr}}` ``(T, J, R)``, their
    sums :math:`s_{tr}` (:math:`P_{tjr} = e_{tjr} / s_{tr}`) and ``d_eta``
    (see :func:`random_coefficients`).

    Fixed and random coefficients are apart, as in xlogit: the utility is
    :math:`v_{tjr} = dx_{tj,f}'m_f + dx_{tj,r}'\beta_r`, so a fixed coefficient costs
    ``T J`` and a random one ``T J R``. With ``dx`` relative to the chosen alternative,
    :math:`-\log P_{tr} = \log \sum_j e^{v_{tjr}}`: a log-sum-exp shifted by its largest
    available term :math:`m_{tr} \ge 0` (the chosen one has :math:`v = 0`), so no ``exp``
    overflows at any utility; one ``exp`` per element.
    """
    fixed, rand = np.array(model.fixed_index, int), np.array(model.random_index, int)
    beta_r, d_eta = random_coefficients(theta, model, draws)
    v = (
        jnp.einsum("tjk,rk->tjr", dx[..., rand], beta_r)
        + (dx[..., fixed] @ theta[fixed])[..., None]
    )
    v = jnp.where(avail[..., None] > 0, v, -jnp.inf)  # unavailable: exp(-inf) = 0
    m = jax.lax.stop_gradient(jnp.max(v, axis=1))  # (T, R); the chosen term makes it >= 0
    e = jnp.exp(v - m[:, None, :])
    s = jnp.sum(e, axis=1)  # (T, R), in [1, J]
    return -jnp.sum(m + jnp.log(s), axis=0), e, s, d_eta


def _per_person(fn, theta, model, data, draws):
    """``fn(theta, model, dx, avail, draws)`` for every person, in blocks of about
    :data:`BLOCK_ELEMENTS` ``(t, j, r)`` elements (``lax.map``), so that the temporaries
    stay in cache."""
    t, j, r = data.dx.shape[1], data.dx.shape[2], draws.shape[1]
    block = max(1, min(data.dx.shape[0], BLOCK_ELEMENTS // (t * j * r)))
    rows = (data.dx, data.avail, draws)
    return jax.lax.map(lambda a: fn(theta, model, *a), rows, batch_size=block)


def _person_loglik(theta, model, dx, avail, draws):
    r"""One person's :math:`\log \check L_p` and draw weights :math:`\ell_r` ``(R,)``."""
    ell = _person(theta, model, dx, avail, draws)[0]
    return jax.nn.logsumexp(ell) - jnp.log(ell.shape[0]), ell


def _person_scores(theta, model, dx, avail, draws):
    r"""One person's :math:`\log \check L_p` and score ``(n_theta,)`` (see
    :func:`value_and_scores`)."""
    ell, e, s, d_eta = _person(theta, model, dx, avail, draws)
    q = jax.nn.softmax(ell) / s  # (T, R): the posterior weight of draw r over s_tr
    fixed, rand = np.array(model.fixed_index, int), np.array(model.random_index, int)
    s_fixed = -jnp.einsum("tj,tjk->k", jnp.einsum("tjr,tr->tj", e, q), dx[..., fixed])
    w_r = -jnp.einsum("tjr,tr,tjk->rk", e, q, dx[..., rand]) * d_eta  # (R, K_r)
    s_mean = jnp.zeros(len(model.attributes)).at[fixed].set(s_fixed).at[rand].set(w_r.sum(0))
    s_chol = w_r.T @ draws  # (K_r, K_r): d / d L_kl = sum_r w_rk eta_rl
    kr = len(model.random)
    rows, cols = np.tril_indices(kr) if model.correlated else (np.arange(kr), np.arange(kr))
    log_l = jax.nn.logsumexp(ell) - jnp.log(ell.shape[0])
    return log_l, jnp.concatenate([s_mean, s_chol[rows, cols]])


def log_lik_persons(theta, model, data, draws):
    r""":math:`\log \check L_p` for every person ``(P,)``."""
    theta, data = _check(model, data, draws, theta)
    return _per_person(_person_loglik, theta, model, data, draws)[0]


def neg_loglik(theta, model: MixedLogit, data: PanelData, draws, weight=None):
    r"""The simulated -LL :math:`-\sum_p w_p \log \check L_p` (``weight`` ``(P,)``, default 1)."""
    log_l = log_lik_persons(theta, model, data, draws)
    return -jnp.sum(log_l if weight is None else weight * log_l)


def value_and_scores(theta, model: MixedLogit, data: PanelData, draws):
    r"""``(-LL, S)``: the total -LL and the analytic per-person scores
    :math:`s_p = \partial \log \check L_p / \partial\theta` ``(P, n_theta)``.

    With :math:`\omega_{pr}` the posterior weight of draw ``r`` (softmax over ``r``
    of :math:`\ell_{pr} = \sum_t \log P_{ptr}`),
    :math:`\partial \log \check L_p / \partial \beta_{prk} = \omega_{pr} g_{prk}` (see
    :func:`_person`); the chain rule through :func:`coefficients` gives each
    parameter's score. Computed person by person, inside the blocks.
    """
    theta, data = _check(model, data, draws, theta)
    log_l, scores = _per_person(_person_scores, theta, model, data, draws)
    return -jnp.sum(log_l), scores


def value_and_grad(theta, model: MixedLogit, data: PanelData, draws):
    """``(-LL, gradient)`` from :func:`value_and_scores` (the gradient is minus the scores' sum)."""
    value, scores = value_and_scores(theta, model, data, draws)
    return value, -scores.sum(axis=0)


def mnl_start(model: MixedLogit, data: PanelData) -> np.ndarray:
    """xlogit's default start: the multinomial logit estimate (every coefficient fixed,
    fitted with the same code and one empty draw) for the means, and 0.1 for every
    standard deviation (Cholesky diagonal)."""
    fixed = MixedLogit(model.attributes)
    mnl = fit(fixed, data, draws=np.zeros((data.n_persons, 1, 0)), se=False)
    if not mnl.success:
        raise RuntimeError(f"the multinomial logit start did not converge: {mnl.message}")
    return np.r_[mnl.theta, default_start(model)[len(model.attributes) :]]


def _draws(model, data, n_draws, draws, seed):
    """``(draws array, specification)`` for :func:`fit`."""
    if isinstance(draws, str):
        if draws not in PANEL_DRAW_KINDS:
            raise ValueError(f"draws must be one of {PANEL_DRAW_KINDS} or an array, got {draws!r}")
        if n_draws is None:
            raise ValueError(f"n_draws is needed with draws={draws!r}: how many per person?")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        array = panel_draws(data.n_persons, n_draws, len(model.random), draws, seed)
        return array, {"kind": draws, "n_draws": int(n_draws), "seed": int(seed)}
    array = as_float_array(draws, "draws", ndim=3)
    if array.shape[1] < 1:
        raise ValueError(f"draws must hold at least one draw per person, got shape {array.shape}")
    if n_draws is not None and array.shape[1] != n_draws:
        raise ValueError(f"n_draws={n_draws} but the draws given have {array.shape[1]} per person")
    return array, {"kind": "array", "n_draws": int(array.shape[1]), "seed": None}


def _start(model, data, start):
    """The start vector: ``None`` (default), ``"mnl"``, a vector in ``param_names`` order,
    or a dict or Series keyed by parameter name (reordered, every name needed)."""
    names = model.param_names
    if start is None:
        return default_start(model)
    if isinstance(start, str):
        if start != "mnl":
            raise ValueError(f"start must be a vector, None or 'mnl', got {start!r}")
        return mnl_start(model, data)
    if isinstance(start, (dict, pd.Series)):
        keys = set(dict(start))
        if keys != set(names):
            raise ValueError(
                f"start names {sorted(keys - set(names))} unknown, {sorted(set(names) - keys)} "
                f"missing: a start by name needs exactly the model's {names}"
            )
        start = [dict(start)[n] for n in names]
    return as_vector(start, "start", len(names))


def _gradient(theta, model, data, draws):
    return value_and_grad(theta, model, data, draws)[1]


# compiled once per model and data shapes, whichever fit asks (module level: jit's cache)
_value_and_scores = jax.jit(value_and_scores, static_argnums=1)
_value_and_grad_ad = jax.jit(jax.value_and_grad(neg_loglik), static_argnums=1)
# the exact Hessian: forward mode over the analytic gradient (twice as fast to compile and
# run as jax.hessian's forward-over-reverse through the blocks of persons)
_hessian = jax.jit(jax.jacfwd(_gradient), static_argnums=1)


def _objective(model, arrays, draws, gradient):
    """``(fun, scores)``: scipy's ``fun(theta) -> (-LL, gradient)`` and ``scores(theta) ->
    (-LL, S)``, the per-person scores from one compiled program (remembered for the last
    point, so the BHHH start and the convergence test reuse scipy's evaluations)."""
    dev = jax.device_put((arrays, draws))
    scores = Remembered(lambda th: tuple(to_host(x) for x in _value_and_scores(th, model, *dev)))
    if gradient == "analytic":
        return lambda th: (float(scores(th)[0]), -scores(th)[1].sum(axis=0)), scores
    return lambda th: tuple(to_host(x) for x in _value_and_grad_ad(th, model, *dev)), scores


def fit(
    model: MixedLogit,
    data: PanelData,
    *,
    n_draws=None,
    draws="halton",
    seed=0,
    start=None,
    method="L-BFGS-B",
    gradient="analytic",
    gtol=1e-6,
    ftol=1e-10,
    maxiter=2000,
    se=True,
) -> Result:
    """Fit ``model`` to ``data`` by simulated maximum likelihood; returns a :class:`Result`.

    ``draws``: ``"halton"`` (scrambled, the default for research), ``"pseudo"`` or
    ``"xlogit-halton"`` (xlogit's own sequence, for comparisons), ``n_draws`` per person
    and ``seed``; or an array ``(P, R, K_r)`` of standard normal draws. ``start``: a
    vector in ``model.param_names`` order, ``None`` (zero means, 0.1 standard
    deviations) or ``"mnl"`` (xlogit's default: the multinomial logit estimate).
    ``method``: ``"L-BFGS-B"`` (xlogit's stopping rule: ``ftol`` 1e-10, ``gtol`` 1e-6 on
    the total gradient) or ``"BFGS"`` (from the inverse BHHH matrix at the start).
    ``gradient``: ``"analytic"`` (the per-person scores, one program with the value) or
    ``"autodiff"``. ``se``: compute the Hessian and the BHHH matrix for standard errors
    (timed apart, ``se_s``) when the fit converged.
    """
    require_x64()
    for value, name, allowed in (
        (method, "method", ("L-BFGS-B", "BFGS")),
        (gradient, "gradient", ("analytic", "autodiff")),
    ):
        if value not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    gtol, ftol = positive_number(gtol, "gtol"), positive_number(ftol, "ftol")
    maxiter = positive_int(maxiter, "maxiter")
    if not isinstance(data, PanelData):
        raise TypeError(f"data must be a PanelData (build it with from_long), got {data!r:.60}")
    draws, spec = _draws(model, data, n_draws, draws, seed)
    theta0, arrays = _check(model, data, draws, _start(model, data, start))
    theta0 = np.asarray(theta0, dtype=float)
    t0 = time.perf_counter()
    fun, scores = _objective(model, arrays, draws, gradient)
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
    grad, bhhh = -s_hat.sum(axis=0), s_hat.T @ s_hat
    success, message, crit = convergence(grad, bhhh, model.param_names, res.message)
    success, message = finite_outcome(success, message, res.x, float(value))
    t0 = time.perf_counter()
    curvature = _curvature(model, arrays, draws, res.x, grad, bhhh, success, message, se)
    return Result(
        model, np.asarray(res.x, float), success, message, -float(value), data.n_situations,
        data.n_persons, int(res.nit), counted.calls, crit, compile_s, run_s,
        time.perf_counter() - t0, method, spec, *curvature, data.fingerprint,
        data.persons_fingerprint,
    )  # fmt: skip


def _curvature(model, arrays, draws, theta, grad, bhhh, success, message, se):
    """``(hessian, bhhh, cov_error)`` at the estimate: the matrices for standard errors, or
    ``None`` and the reason there are none (see :func:`~.diagnostics.require_optimum`)."""
    if not se:
        return None, None, "not computed (se=False)"
    if not success:
        return None, None, f"the fit did not converge ({message})"
    h = np.asarray(_hessian(theta, model, arrays, draws))
    h = 0.5 * (h + h.T)
    try:
        require_optimum(grad, h, model.param_names)
    except ValueError as exc:
        return None, None, str(exc)
    return h, bhhh, None


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


def willingness_to_pay(result: Result, attribute: str, price: str, cov="robust"):
    r"""``(value, se)`` of :math:`-m_{\mathrm{attribute}} / m_{\mathrm{price}}`, the ratio of
    mean coefficients, with its delta-method standard error from ``result.cov(cov)``.

    Refused for a lognormal coefficient: its ``m`` is the mean of the *log*
    coefficient, so the ratio would not be a willingness to pay. With a random price
    coefficient this is a ratio of means, not the mean of the ratio."""
    if not isinstance(result, Result):
        raise TypeError(f"result must be a Result (from fit), got {type(result).__name__}")
    model = result.model
    if attribute == price:
        raise ValueError(f"attribute and price must differ, got {attribute!r} for both")
    for arg, name in (("attribute", attribute), ("price", price)):
        if name not in model.attributes:
            raise ValueError(f"{arg} {name!r} is not one of the model's {model.attributes}")
        if dict(model.random).get(name) == "ln":
            raise ValueError(
                f"{arg} {name!r} has a lognormal coefficient: -m_a / m_price is a ratio of means "
                "only for normal or fixed coefficients; use the coefficients' moments instead"
            )
    a, b = model.attributes.index(attribute), model.attributes.index(price)
    covariance = result.cov(cov, name="cov")
    return delta_method(lambda theta: -theta[a] / theta[b], result.theta, covariance)


def fit_draws(result: Result, data: PanelData, draws=None, need_success=False):
    """``draws`` if given, else the fit's draws made again from ``result.draws`` for
    ``data``'s persons (refused when the fit was given its draws as an array, or for other
    persons); with ``need_success``, refused for a fit that did not converge."""
    if not isinstance(result, Result):
        raise TypeError(f"result must be a Result (from fit), got {type(result).__name__}")
    if need_success and not result.success:
        raise ValueError(
            f"the fit did not converge, so its estimate is no optimum: {result.message}"
        )
    if not isinstance(data, PanelData):
        raise TypeError(f"data must be a PanelData (build it with from_long), got {data!r:.60}")
    if draws is not None:
        return draws
    spec = result.draws
    if spec["kind"] == "array":
        raise ValueError("this fit was given its draws as an array: pass them as draws=")
    if data.persons_fingerprint != result.persons_fingerprint:
        raise ValueError(
            "data has other persons than the fit's (or in another order), so the fit's draws "
            "cannot be made again for them: pass draws= for these persons"
        )
    kr = len(result.model.random)
    return panel_draws(data.n_persons, spec["n_draws"], kr, spec["kind"], spec["seed"])


def conditional_means(result: Result, data: PanelData, draws=None) -> pd.DataFrame:
    r"""Each person's expected random coefficients given their choices (Train 2009, ch. 11):
    :math:`\bar\beta_p = \sum_r \omega_{pr} \beta_{pr}`, with :math:`\omega_{pr}` the
    likelihood weight of draw ``r`` in person ``p``'s choices. A DataFrame indexed by
    person id, one column per random coefficient. ``draws``: those of the fit, made again
    from ``result.draws`` unless the fit was given an array (then pass it here)."""
    draws = fit_draws(result, data, draws, need_success=True)
    model = result.model
    theta, arrays = _check(model, data, draws, result.theta)
    ell = _per_person(_person_loglik, theta, model, arrays, draws)[1]
    omega = jax.nn.softmax(ell, axis=1)
    beta_r = coefficients(theta, model, draws)[0][..., jnp.array(model.random_index, int)]
    means = np.asarray(jnp.einsum("pr,prk->pk", omega, beta_r))
    names = [name for name, _ in model.random]
    return pd.DataFrame(means, index=pd.Index(data.persons, name="person"), columns=names)
