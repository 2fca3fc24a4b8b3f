r"""The plain binary logit (logistic regression): data and negative log-likelihood.

The model: :math:`P(y_i = 1 \mid x_i) = 1 / (1 + e^{-x_i'\beta})`. Its negative
log-likelihood

.. math:: \ell(\beta) = \sum_i \left[\log(1 + e^{x_i'\beta}) - y_i x_i'\beta\right]

is convex in :math:`\beta` (its Hessian is :math:`X' W X` with
:math:`W = \mathrm{diag}(p_i(1-p_i))`), which makes it the book's standard
well-behaved example.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ._validate import as_float_array, positive_int


def simulate_logit(n: int, k: int = 3, seed: int = 0):
    """Simulate ``n`` observations of a binary logit with ``k`` regressors.

    The first column of ``X`` (shape ``(n, k)``) is a constant, the others are
    standard normal. Returns ``(X, y, beta_true)`` with ``y`` of shape ``(n,)``
    holding 0/1 as float64 and ``beta_true = linspace(0.5, -0.5, k)``.
    """
    n = positive_int(n, "n")
    k = positive_int(k, "k")
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.standard_normal((n, k - 1))])
    beta = np.linspace(0.5, -0.5, k)
    p = 1.0 / (1.0 + np.exp(-X @ beta))
    y = (rng.uniform(size=n) < p).astype(np.float64)
    return X, y, beta


def check_logit_data(X, y):
    """Validate ``X`` of shape ``(n, k)`` and ``y`` of shape ``(n,)`` with values in {0, 1}."""
    X = as_float_array(X, "X", ndim=2)
    y = as_float_array(y, "y", shape=(X.shape[0],))
    if not np.all((y == 0) | (y == 1)):
        bad = y[(y != 0) & (y != 1)][0]
        raise ValueError(f"y must hold only 0 and 1, found {bad}")
    return X, y


def logit_nll(beta, X, y):
    """Negative log-likelihood of the binary logit, in ``jax.numpy``.

    ``beta`` has shape ``(k,)``, ``X`` ``(n, k)``, ``y`` ``(n,)``. Written with
    ``logaddexp(0, z) = log(1 + e^z)`` so that large ``|z|`` cannot overflow.
    Pure and jit-able; validate data once with :func:`check_logit_data`.
    """
    z = X @ beta
    return jnp.sum(jnp.logaddexp(0.0, z) - y * z)


def logit_nll_numpy(beta, X, y):
    """The same negative log-likelihood in NumPy."""
    z = X @ beta
    return float(np.sum(np.logaddexp(0.0, z) - y * z))


def logit_nll_obs(beta, X, y):
    """Per-observation negative log-likelihood contributions, shape ``(n,)``."""
    z = X @ beta
    return jnp.logaddexp(0.0, z) - y * z
