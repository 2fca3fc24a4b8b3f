r"""Simulated log-likelihood of the mixed logit, its analytic scores, in JAX, NumPy and pandas.

The JAX and NumPy versions share one implementation written against an array
module ``xp`` (``jax.numpy`` or ``numpy``), so they cannot drift apart. Every
array they build is at most ``(N, J, R)``; the scores contract over ``j``
before touching the ``K = 6`` parameters, so nothing of shape ``(N, J, R, K)``
is ever formed.

Analytic score of consumer ``i`` (Train 2009, ch. 10): with
:math:`L_{ijr}` the logit probability of ``j`` under draw ``r``,
:math:`d_{ijr} = \partial V_{ijr}/\partial\theta`,
:math:`\bar d_{ir} = \sum_k L_{ikr} d_{ikr}` and posterior draw weights
:math:`\omega_{ir} = L_{i y_i r} / \sum_s L_{i y_i s}`,

.. math::

    s_i = \partial \log \check P_i / \partial\theta
        = \sum_r \omega_{ir}\,(d_{i y_i r} - \bar d_{ir}).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np
import pandas as pd
import scipy.special as sp

from .._validate import as_float_array, positive_int
from ..config import require_x64
from ..derivatives import per_observation_scores
from ..mixed_logit.model import MixedLogit
from ..mixed_logit.panel_data import from_long
from .data import MixedLogitData, check_data, check_theta, theta_arg, weight_arg

_BACKENDS = {"jax": (jnp, jsp.logsumexp), "numpy": (np, sp.logsumexp)}


def _regressors(data):
    """The four ``(N, J)`` regressors besides the constant: log_sqft, bath, bath*fam, outdoor."""
    bath_fam = data.bathrooms * data.family_size[:, None]
    return data.log_sqft, data.bathrooms, bath_fam, data.outdoor


def _of_chosen(a, data, xp):
    """Entry of the chosen option of each ``(N, J)`` row of ``a``, 0 for the outside option."""
    idx = xp.clip(data.choice - 1, 0, a.shape[1] - 1)[:, None]
    return xp.where(data.choice > 0, xp.take_along_axis(a, idx, axis=1)[:, 0], 0.0)


def _chosen_log_probs(theta, data, xp, lse):
    r"""Per-draw log probability of the chosen option ``(N, R)``, with what the scores reuse.

    One ``exp`` per ``(n, j, r)`` element: with :math:`m = \max(0, \max_j V_{njr})`,
    :math:`e = \exp(V - m)` and :math:`D = e^{-m} + \sum_j e` (the outside option has
    :math:`V = 0`), the log-denominator is :math:`m + \log D`, overflow-safe as
    ``logsumexp``, and the inside probabilities are :math:`e / D`. Returns
    ``(log_l, e, denom, taste)`` with ``e`` ``(N, J, R)``, ``denom`` and ``taste`` ``(N, R)``.
    """
    b, mu, sigma = theta[:4], theta[4], theta[5]
    x = _regressors(data)
    xb = b[0] + b[1] * x[0] + b[2] * x[1] + b[3] * x[2]  # (N, J)
    taste = mu + sigma * data.draws  # (N, R)
    v = xb[:, :, None] + data.outdoor[:, :, None] * taste[:, None, :]  # (N, J, R)
    m = xp.maximum(xp.max(v, axis=1), 0.0)  # (N, R)
    e = xp.exp(v - m[:, None, :])
    denom = xp.exp(-m) + xp.sum(e, axis=1)
    v_chosen = _of_chosen(xb, data, xp)[:, None] + _of_chosen(x[3], data, xp)[:, None] * taste
    return v_chosen - (m + xp.log(denom)), e, denom, taste


def _log_p(theta, data, xp, lse):
    log_l = _chosen_log_probs(theta, data, xp, lse)[0]
    return lse(log_l, axis=1) - xp.log(log_l.shape[1])  # (N,)


def _value_and_scores(theta, data, xp, lse):
    r"""``(log P_i, s_i)``: per-consumer log probabilities ``(N,)`` and scores ``(N, 6)``.

    :math:`\bar d_{ir}` is formed from ``e`` and the regressors one ``(N, R)`` sum at a
    time, divided by the denominator once, so neither the probabilities nor an
    ``(N, J, 5)`` feature array is built.
    """
    log_l, e, denom, _ = _chosen_log_probs(theta, data, xp, lse)
    log_sum = lse(log_l, axis=1)  # (N,)
    omega = xp.exp(log_l - log_sum[:, None])  # (N, R), rows sum to 1
    x = _regressors(data)
    sums = [xp.sum(e, axis=1)] + [xp.einsum("njr,nj->nr", e, xk) for xk in x]
    dbar = xp.stack(sums, axis=-1) / denom[:, :, None]  # (N, R, 5)
    inside = (data.choice > 0).astype(dbar.dtype)
    chosen = xp.stack([inside] + [_of_chosen(xk, data, xp) for xk in x], axis=-1)  # (N, 5)
    a = chosen[:, None, :] - dbar  # (N, R, 5)
    s_fixed = xp.einsum("nr,nrk->nk", omega, a)
    s_sigma = xp.einsum("nr,nr->n", omega * data.draws, a[:, :, 4])
    scores = xp.concatenate([s_fixed, s_sigma[:, None]], axis=1)  # (N, 6)
    return log_sum - xp.log(log_l.shape[1]), scores


def _scores(theta, data, xp, lse):
    return _value_and_scores(theta, data, xp, lse)[1]


def _weighted(weight, *per_consumer):
    """Each ``(N, ...)`` array times its consumer's weight (unchanged when ``weight`` is None)."""
    if weight is None:
        return per_consumer
    return tuple(x * weight.reshape((-1,) + (1,) * (x.ndim - 1)) for x in per_consumer)


def neg_loglik(theta, data: MixedLogitData, weight=None):
    """Negative simulated log-likelihood ``-sum_i w_i log P_i`` in ``jax.numpy`` (jit-able).

    ``theta`` has shape ``(6,)``; ``data`` is a :class:`MixedLogitData`;
    ``weight`` ``(N,)`` is optional (1 for every consumer by default; 0 marks the
    padding that :func:`~.placement.shard` adds). Overflow-safe: every
    exponential goes through ``logsumexp``.
    """
    theta, data = theta_arg(theta), check_data(data)
    weight = weight_arg(weight, data.shape[0])
    (log_p,) = _weighted(weight, _log_p(theta, data, *_BACKENDS["jax"]))
    return -jnp.sum(log_p)


def neg_loglik_numpy(theta, data: MixedLogitData) -> float:
    """The same negative simulated log-likelihood in NumPy."""
    theta, data = check_theta(theta), check_data(data)
    return -float(np.sum(_log_p(theta, data, *_BACKENDS["numpy"])))


def scores_analytic(theta, data: MixedLogitData, weight=None):
    """Per-consumer scores ``w_i d log P_i / d theta``, shape ``(N, 6)``, in ``jax.numpy``."""
    theta, data = theta_arg(theta), check_data(data)
    (scores,) = _weighted(
        weight_arg(weight, data.shape[0]), _scores(theta, data, jnp, jsp.logsumexp)
    )
    return scores


def scores_analytic_numpy(theta, data: MixedLogitData) -> np.ndarray:
    """Per-consumer scores, shape ``(N, 6)``, in NumPy."""
    return _scores(check_theta(theta), check_data(data), *_BACKENDS["numpy"])


def grad_analytic(theta, data: MixedLogitData, weight=None):
    """Analytic gradient of :func:`neg_loglik`, shape ``(6,)``, in ``jax.numpy``."""
    return -jnp.sum(scores_analytic(theta, data, weight), axis=0)


def grad_analytic_numpy(theta, data: MixedLogitData) -> np.ndarray:
    """Analytic gradient of :func:`neg_loglik_numpy`, shape ``(6,)``, in NumPy."""
    return -np.sum(scores_analytic_numpy(theta, data), axis=0)


def value_and_grad_analytic(theta, data: MixedLogitData, weight=None):
    """``(neg_loglik, grad_analytic)`` in one ``jax.numpy`` pass: the fused analytic gradient."""
    theta, data = theta_arg(theta), check_data(data)
    weight = weight_arg(weight, data.shape[0])
    log_p, scores = _weighted(weight, *_value_and_scores(theta, data, *_BACKENDS["jax"]))
    return -jnp.sum(log_p), -jnp.sum(scores, axis=0)


CHUNK_ELEMENTS = 2**22  # above about 4 million (consumer, option, draw) elements, chunk
# Elements per chunk on a CPU: about 4 MB of float64 per temporary, so that a chunk stays in
# cache and temporaries are not mapped afresh from the OS on every call. Measured on the
# book's 2-core CPU: at N = 100k, J = 20, R = 12 a value and gradient took about 157 ms in
# chunks of 2^19 elements, 220 ms in chunks of 2^22 and 263 ms unchunked.
CPU_CHUNK_ELEMENTS = 2**19


def _rows(data):
    return (data.log_sqft, data.bathrooms, data.family_size, data.outdoor, data.choice, data.draws)


def _one_consumer(row):
    """A :class:`MixedLogitData` holding the single consumer ``row`` (no leading axis)."""
    log_sqft, bathrooms, family_size, outdoor, choice, draws = row
    return MixedLogitData(
        log_sqft[None],
        bathrooms[None],
        family_size[None],
        outdoor[None],
        choice[None],
        draws[None],
        jnp.zeros(6),
    )


def default_chunk(data, device=None) -> int | None:
    """Consumers per chunk, or ``None`` when the whole ``(N, J, R)`` array holds no more than
    ``CHUNK_ELEMENTS`` elements. A CPU chunk holds about ``CPU_CHUNK_ELEMENTS``.

    On an accelerator that reports its memory (``device``, default the first), the
    threshold is instead a 16th of that memory in float64 elements, so that a GPU
    fits without chunking whatever leaves room for the dozen or so ``(N, J, R)``
    temporaries of a value and gradient, and a chunk holds that many elements.
    """
    n, j, r = data.shape
    device = device or jax.devices()[0]
    stats = device.memory_stats() if device.platform != "cpu" else None
    limit = max(CHUNK_ELEMENTS, (stats or {}).get("bytes_limit", 0) // (8 * 16))
    if n * j * r <= limit:
        return None
    return max(1, (limit if stats else CPU_CHUNK_ELEMENTS) // (j * r))


def neg_loglik_chunked(theta, data, chunk: int):
    """:func:`neg_loglik` computed ``chunk`` consumers at a time (``jax.lax.map``).

    Memory is bounded by ``chunk * J * R`` elements, for the value and, because the
    per-consumer computation is wrapped in ``jax.checkpoint`` (recomputed in the
    backward pass instead of stored), for its reverse-mode gradient too.
    """
    theta, data, chunk = theta_arg(theta), check_data(data), positive_int(chunk, "chunk")
    one = jax.checkpoint(lambda th, row: _log_p(th, _one_consumer(row), jnp, jsp.logsumexp)[0])
    log_p = jax.lax.map(lambda row: one(theta, row), _rows(data), batch_size=chunk)
    return -jnp.sum(log_p)


def _value_and_scores_chunked(theta, data, chunk):
    theta, data, chunk = theta_arg(theta), check_data(data), positive_int(chunk, "chunk")

    def one(row):
        log_p, scores = _value_and_scores(theta, _one_consumer(row), jnp, jsp.logsumexp)
        return log_p[0], scores[0]

    return jax.lax.map(one, _rows(data), batch_size=chunk)


def value_and_grad_analytic_chunked(theta, data, chunk: int):
    """:func:`value_and_grad_analytic` computed ``chunk`` consumers at a time."""
    log_p, scores = _value_and_scores_chunked(theta, data, chunk)
    return -jnp.sum(log_p), -jnp.sum(scores, axis=0)


def scores_analytic_chunked(theta, data, chunk: int):
    """:func:`scores_analytic` (shape ``(N, 6)``) computed ``chunk`` consumers at a time."""
    return _value_and_scores_chunked(theta, data, chunk)[1]


def log_p_and_scores(theta, data: MixedLogitData, chunk: int | None = None, weight=None):
    """Per-consumer ``log P_i`` ``(N,)`` and scores ``d log P_i / d theta`` ``(N, 6)`` in
    ``jax.numpy``, the whole arrays at once or ``chunk`` consumers at a time; each times
    its consumer's ``weight`` ``(N,)`` when one is given."""
    if chunk is None:
        out = _value_and_scores(theta_arg(theta), check_data(data), *_BACKENDS["jax"])
    else:
        out = _value_and_scores_chunked(theta, data, chunk)
    return _weighted(weight_arg(weight, data.shape[0]), *out)


def neg_loglik_on_draws(theta, data: MixedLogitData, draws, chunk: int = 100) -> float:
    """Negative simulated log-likelihood of ``theta`` on other ``draws`` ``(N, R')``.

    Used to compare estimates fairly: every estimate is evaluated on one common
    large-``R'`` draw set. Works through the draws ``chunk`` columns at a time
    (``jax.lax.map`` in one jitted program) so memory stays at ``N * J * chunk`` floats.
    """
    require_x64()  # computed in JAX: refuse to score in float32
    theta, data = check_theta(theta), check_data(data)
    draws = as_float_array(draws, "draws", shape=(data.shape[0], None))
    chunk = min(positive_int(chunk, "chunk"), draws.shape[1])
    blocks = -(-draws.shape[1] // chunk)
    padded = np.pad(draws, ((0, 0), (0, blocks * chunk - draws.shape[1])))
    stacked = padded.reshape(draws.shape[0], blocks, chunk).transpose(1, 0, 2)  # (B, N, chunk)
    log_l = _log_l_blocks(jnp.asarray(theta), data, jnp.asarray(stacked))
    log_l = jnp.transpose(log_l, (1, 0, 2)).reshape(draws.shape[0], -1)[:, : draws.shape[1]]
    log_p = jsp.logsumexp(log_l, axis=1) - jnp.log(draws.shape[1])
    return -float(jnp.sum(log_p))


@jax.jit
def _log_l_blocks(theta, data, stacked):
    """Per-draw log probabilities of the chosen options, ``(B, N, chunk)``, one block of
    draw columns at a time."""

    def block(z):
        return _chosen_log_probs(theta, data._replace(draws=z), jnp, jsp.logsumexp)[0]

    return jax.lax.map(block, stacked)


def to_long_dataframe(data: MixedLogitData) -> pd.DataFrame:
    """One row per (consumer, option), the outside option as option 0 with all-zero attributes."""
    n, j, _ = check_data(data).shape
    zeros = np.zeros((n, 1))
    return pd.DataFrame(
        {
            "id": np.repeat(np.arange(n), j + 1),
            "alt": np.tile(np.arange(j + 1), n),
            "inside": np.tile(np.r_[0.0, np.ones(j)], n),
            "log_sqft": np.hstack([zeros, data.log_sqft]).ravel(),
            "bathrooms": np.hstack([zeros, data.bathrooms]).ravel(),
            "family_size": np.repeat(data.family_size, j + 1),
            "outdoor": np.hstack([zeros, data.outdoor]).ravel(),
            "chosen": (np.arange(j + 1)[None, :] == data.choice[:, None]).astype(float).ravel(),
        }
    )


def neg_loglik_pandas(theta, df: pd.DataFrame, draws) -> float:
    """The negative simulated log-likelihood, written as a first attempt with pandas would be.

    ``df`` comes from :func:`to_long_dataframe`; ``draws`` is ``(N, R)``. Loops
    over draws, computes utilities column by column, and normalises with a
    ``groupby``. Correct, and slow: a teaching foil, never an optimiser's objective.
    """
    b0, b1, b2, b3, mu, sigma = check_theta(theta)
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a DataFrame from to_long_dataframe, got {type(df).__name__}")
    draws = as_float_array(draws, "draws", shape=(int(df["id"].nunique()), None))
    prob_chosen = pd.Series(0.0, index=pd.RangeIndex(draws.shape[0]))
    for r in range(draws.shape[1]):
        df = df.assign(z=df["id"].map(pd.Series(draws[:, r])))
        v = df["inside"] * (
            b0
            + b1 * df["log_sqft"]
            + b2 * df["bathrooms"]
            + b3 * df["bathrooms"] * df["family_size"]
            + (mu + sigma * df["z"]) * df["outdoor"]
        )
        df = df.assign(expv=np.exp(v))
        df = df.assign(prob=df["expv"] / df.groupby("id")["expv"].transform("sum"))
        prob_chosen += df.loc[df["chosen"] == 1].set_index("id")["prob"]
    return -float(np.sum(np.log(prob_chosen / draws.shape[1])))


def _log_p_one(theta, *row):
    """``log P_i`` of a single consumer (one row of each array), for ``vmap``."""
    return _log_p(theta, _one_consumer(row), jnp, jsp.logsumexp)[0]


def scores_autodiff(theta, data: MixedLogitData):
    """Per-consumer scores ``(N, 6)`` by ``vmap`` of ``jax.grad`` over consumers."""
    theta, data = check_theta(theta), check_data(data)
    return per_observation_scores(_log_p_one, theta, *_rows(data))


ATTRIBUTES = ("inside", "log_sqft", "bathrooms", "bath_x_fam", "outdoor")  # the one model's


def to_mixed_logit(data):
    """Chapter 6's apartments (a :class:`~.data.MixedLogitData`) as the one model:
    ``(model, PanelData, draws (N, R, 1))``. The long rows are
    :func:`~.likelihood.to_long_dataframe`'s without option 0, because ``from_long``'s
    ``outside_option=True`` adds it back (utility 0, always available); ``bath_x_fam`` is
    ``bathrooms x family_size``; ``outdoor`` is random normal. Parameters in
    :data:`~.data.PARAM_NAMES`' order; the draws are the ones simulated with ``data``."""
    long = to_long_dataframe(data)
    long = long[long.alt > 0].assign(bath_x_fam=long.bathrooms * long.family_size)
    model = MixedLogit(ATTRIBUTES, {"outdoor": "n"})
    columns = {"person": "id", "situation": "id", "alternative": "alt", "choice": "chosen"}
    panel = from_long(long, model, outside_option=True, **columns)
    return model, panel, np.asarray(data.draws)[:, :, None]
