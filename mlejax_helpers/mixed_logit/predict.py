r"""After a fit: predicted choice probabilities and elasticities (Train 2009, ch. 6).

The probability that person ``p`` chooses ``j`` in situation ``t`` is simulated with
the fit's draws, unconditionally on that person's choices:
:math:`\check P_{ptj} = \frac1R \sum_r P_{ptjr}`, where :math:`P_{ptjr}` is the logit
probability under draw ``r``. Market shares are their averages over situations; a
counterfactual is a prediction on changed data (build it with ``from_long`` from an
edited DataFrame). The elasticity of :math:`\check P_{pti}` with respect to attribute
``k`` of alternative ``j`` is

.. math::

    E_{pt,ij} = \frac{x_{ptjk}}{\check P_{pti}}\,\frac1R \sum_r
    P_{ptir}\,(\delta_{ij} - P_{ptjr})\,\beta_{prk}:

own elasticities on the diagonal, cross elasticities off it; :func:`elasticities`
averages them over the situations in which both alternatives are available.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pandas as pd

from .model import coefficients
from .panel import _check, _per_person, _person, fit_draws
from .panel_data import PanelData
from .results import Result


def _person_probabilities(theta, model, dx, avail, draws):
    """One person's simulated probabilities ``(T, J)`` and per-draw ones ``(T, J, R)``."""
    _, e, s, _ = _person(theta, model, dx, avail, draws)
    p = e / s[:, None, :]
    return jnp.mean(p, axis=-1), p


def predict(result: Result, data: PanelData, draws=None) -> pd.DataFrame:
    r"""Simulated choice probabilities :math:`\check P_{ptj}`, one row per available
    alternative of every situation: columns ``person``, ``situation``, ``alternative``
    and ``probability`` (they sum to 1 within each situation). ``data`` may differ from
    the fit's (a counterfactual) but must have the fit's persons, in its order, when the
    draws are made again from ``result.draws`` (else pass ``draws``)."""
    draws = fit_draws(result, data, draws, need_success=True)
    theta, arrays = _check(result.model, data, draws, result.theta)
    prob = np.asarray(_per_person(_person_probabilities, theta, result.model, arrays, draws)[0])
    p, t, j = np.nonzero((np.asarray(arrays.avail) > 0) & _real(data)[:, :, None])
    return pd.DataFrame(
        {
            "person": data.persons[p],
            "situation": data.situations[p, t],
            "alternative": np.asarray(data.alternatives, dtype=object)[j],
            "probability": prob[p, t, j],
        }
    )


def _real(data: PanelData) -> np.ndarray:
    """``(P, T)`` True for a real situation, False for padding."""
    return np.asarray([[s is not None for s in row] for row in data.situations], dtype=bool)


def elasticities(result: Result, data: PanelData, attribute: str, draws=None) -> pd.DataFrame:
    r"""Own and cross elasticities of the choice probabilities with respect to
    ``attribute``, averaged over the situations in which both alternatives are
    available: row ``i``, column ``j`` is the mean of :math:`E_{pt,ij}`, the percentage
    change of :math:`\check P_{pti}` for one percent more ``attribute`` in alternative ``j``."""
    draws = fit_draws(result, data, draws, need_success=True)
    model = result.model
    if attribute not in model.attributes:
        raise ValueError(f"attribute {attribute!r} is not one of the model's {model.attributes}")
    k = model.attributes.index(attribute)
    theta, arrays = _check(model, data, draws, result.theta)
    beta_k = coefficients(theta, model, draws)[0][..., k]  # (P, R)

    def person(th, m, dx, avail, dr_and_beta):
        dr, b = dr_and_beta[..., :-1], dr_and_beta[..., -1]
        mean, p = _person_probabilities(th, m, dx, avail, dr)
        eye = jnp.eye(p.shape[1])[None, :, :, None]
        d = jnp.mean(p[:, :, None, :] * (eye - p[:, None, :, :]) * b, axis=-1)  # (T, J, J)
        return d / jnp.where(mean > 0, mean, 1.0)[:, :, None]

    packed = jnp.concatenate([jnp.asarray(draws), beta_k[..., None]], axis=-1)
    d = np.asarray(_per_person(person, theta, model, arrays, packed))  # (P, T, J, J)
    e = d * np.asarray(arrays.x)[:, :, None, :, k]  # times x_j
    avail = (np.asarray(arrays.avail) > 0) & _real(data)[:, :, None]
    both = avail[:, :, :, None] & avail[:, :, None, :]
    mean = np.where(both, e, 0.0).sum(axis=(0, 1)) / np.maximum(both.sum(axis=(0, 1)), 1)
    return pd.DataFrame(
        np.where(both.any(axis=(0, 1)), mean, np.nan),
        index=pd.Index(data.alternatives, name="probability of"),
        columns=pd.Index(data.alternatives, name=f"{attribute} of"),
    )
