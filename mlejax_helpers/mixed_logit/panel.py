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

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from .._validate import as_vector
from ..config import require_x64
from .model import MixedLogit, coefficients, random_coefficients
from .panel_data import PanelArrays, PanelData, panel_draws
from .results import Result

# (t, j, r) elements per block of persons: 18 electricity persons at 600 draws, and about
# chapter 6's CPU chunk. Swept on the 2-core CPU (median ms of one value and scores):
# electricity at 600 draws 2^15 61, 2^17 55, 2^18 50, 2^19 37, 2^20 65, 2^22 90; chapter 6's
# apartments at N = 10k (100k) 2^15 30 (312), 2^17 19 (218), 2^19 17 (187), 2^21 28 (215)
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


def block_size(p: int, t: int, j: int, r: int) -> int:
    """Persons per block: about :data:`BLOCK_ELEMENTS` ``(t, j, r)`` elements, evened out over
    the blocks that ``p`` persons need (so a ``p`` padded to ``blocks x block`` persons, as
    :func:`~.fitting.fit` pads, has no remainder for ``lax.map`` to compile a second body for)."""
    most = max(1, min(p, BLOCK_ELEMENTS // (t * j * r)))
    blocks = -(-p // most)
    return -(-p // blocks)


def _per_person(fn, theta, model, data, draws):
    """``fn(theta, model, dx, avail, draws)`` for every person, in blocks of about
    :data:`BLOCK_ELEMENTS` ``(t, j, r)`` elements (``lax.map``), so that the temporaries
    stay in cache."""
    block = block_size(data.dx.shape[0], *data.dx.shape[1:3], draws.shape[1])
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
