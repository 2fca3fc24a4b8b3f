r"""The estimated distribution of the random coefficients, with delta-method standard errors.

For a normal coefficient :math:`\beta \sim N(m, \sigma^2)`: mean and median :math:`m`,
standard deviation :math:`\sigma`, and the share of people with a positive coefficient
:math:`\Phi(m/\sigma)`. For a lognormal one, :math:`\beta = e^{m + \sigma\eta}`: mean
:math:`e^{m + \sigma^2/2}`, median :math:`e^m` and standard deviation
:math:`e^{m + \sigma^2/2}\sqrt{e^{\sigma^2} - 1}` (every coefficient positive). With
correlated coefficients :math:`\sigma_k^2` is the diagonal of :math:`\Sigma = LL'`, whose
correlations :func:`correlations` gives. Each standard error is the delta method's,
:math:`\nabla g'\,V\,\nabla g`, with the gradient from ``jax.jacobian``.
"""

from __future__ import annotations

import jax.numpy as jnp
import jax.scipy.stats as jstats
import numpy as np
import pandas as pd

from .model import cholesky
from .panel import delta_method
from .results import Result


def _cov_matrix(theta, model):
    """:math:`\\Sigma = LL'` of the random coefficients' exponents ``(K_r, K_r)``."""
    chol = cholesky(theta, model)
    return chol @ chol.T


def _moments(theta, model, i):
    """``{name: function of theta}`` for random coefficient ``i`` (position among random)."""
    name, dist = model.random[i]
    k = model.attributes.index(name)

    def sd(t):
        return jnp.sqrt(_cov_matrix(t, model)[i, i])

    if dist == "n":
        return {
            "mean": lambda t: t[k],
            "median": lambda t: t[k],
            "sd": sd,
            "share > 0": lambda t: jstats.norm.cdf(t[k] / sd(t)),
        }
    return {
        "mean": lambda t: jnp.exp(t[k] + sd(t) ** 2 / 2),
        "median": lambda t: jnp.exp(t[k]),
        "sd": lambda t: jnp.exp(t[k] + sd(t) ** 2 / 2) * jnp.sqrt(jnp.expm1(sd(t) ** 2)),
        "share > 0": lambda t: jnp.ones(()),
    }


def moments(result: Result, cov: str = "robust") -> pd.DataFrame:
    """Mean, median, standard deviation and the share with a positive coefficient of every
    random coefficient, each with its delta-method standard error (``cov``: which of the
    fit's covariances); one row per random coefficient and its distribution."""
    if not isinstance(result, Result):
        raise TypeError(f"result must be a Result (from fit), got {type(result).__name__}")
    v, model, rows = result.cov(cov, name="cov"), result.model, {}
    for i, (name, dist) in enumerate(model.random):
        row = {}
        for stat, fn in _moments(result.theta, model, i).items():
            row[stat], row[f"se({stat})"] = delta_method(fn, result.theta, v)
        rows[(name, {"n": "normal", "ln": "lognormal"}[dist])] = row
    return pd.DataFrame(rows).T.rename_axis(["coefficient", "distribution"])


def _implied(result: Result, cov: str, entry) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(value, se)``: ``entry(theta, a, b)`` for every pair of random coefficients, and
    its delta-method standard error, as symmetric ``(K_r, K_r)`` DataFrames."""
    if not isinstance(result, Result):
        raise TypeError(f"result must be a Result (from fit), got {type(result).__name__}")
    model, v = result.model, result.cov(cov, name="cov")
    kr, names = len(model.random), [name for name, _ in model.random]
    value, se = np.zeros((kr, kr)), np.zeros((kr, kr))
    for a in range(kr):
        for b in range(a + 1):
            fn = lambda t: entry(t, a, b)  # noqa: B023, E731
            value[a, b], se[a, b] = delta_method(fn, result.theta, v)
            value[b, a], se[b, a] = value[a, b], se[a, b]
    frame = lambda x: pd.DataFrame(x, index=names, columns=names)  # noqa: E731
    return frame(value), frame(se)


def covariances(result: Result, cov: str = "robust") -> tuple[pd.DataFrame, pd.DataFrame]:
    r"""``(covariance, se)``: :math:`\Sigma = LL'`, the covariance matrix of the random
    coefficients (of their exponents, for lognormal ones) implied by the fitted Cholesky
    factor, and the delta-method standard error of each entry (``cov``: which of the
    fit's covariances). An uncorrelated model has zeros off the diagonal, with SE 0."""
    model = getattr(result, "model", None)
    return _implied(result, cov, lambda t, a, b: _cov_matrix(t, model)[a, b])


def correlations(result: Result, cov: str = "robust") -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(correlation, se)``: the correlation matrix of the random coefficients' exponents
    implied by the Cholesky factor, and the delta-method standard error of each entry
    (ones with SE 0 on the diagonal, set, not computed: a zero sd would give 0/0; zero
    off it for an uncorrelated model)."""
    model = getattr(result, "model", None)

    def corr(t, a, b):
        s = _cov_matrix(t, model)
        return s[a, b] / jnp.sqrt(s[a, a] * s[b, b])

    value, se = _implied(result, cov, corr)
    eye = np.eye(len(value), dtype=bool)
    return value.mask(eye, 1.0), se.mask(eye, 0.0)  # exactly, even where an sd is 0
