"""Data for the mixed logit: simulation, validation and simulation draws.

Data-generating choices (see :func:`simulate`):

* ``log_sqft``: log floor area in thousands of square feet, ``log(U(0.5, 2.5))``;
* ``bathrooms``: 1, 2 or 3 with equal probability;
* ``family_size``: 1 to 5 with equal probability;
* ``outdoor``: outdoor area, continuous ``U(0, 3)``. A continuous regressor with
  ``sigma = 1.5`` keeps the estimate of ``sigma`` away from 0 even with only
  ``R = 12`` draws; a binary outdoor dummy often lets it collapse to 0;
* true ``theta = (b0, b1, b2, b3, mu, sigma) = (-2.5, 1.0, 0.5, -0.1, 0.3, 1.5)``:
  about a fifth of consumers choose the outside option when ``J = 20``.

Choices are drawn from the *exact* model: a fresh taste ``mu + sigma * z_i``
per consumer and extreme-value errors. The estimation draws stored in
``draws`` are independent of those.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy.stats import norm, qmc

from .._validate import as_float_array, as_vector, positive_int
from ..config import require_x64
from ..mixed_logit.panel_data import XLOGIT_HALTON_DROP, radical_inverse

PARAM_NAMES = ("b0", "b1", "b2", "b3", "mu", "sigma")
THETA_TRUE = np.array([-2.5, 1.0, 0.5, -0.1, 0.3, 1.5])
DRAW_KINDS = ("pseudo", "halton", "xlogit-halton")


class MixedLogitData(NamedTuple):
    """Arrays of one data set; a JAX pytree, so it can be passed to jitted functions.

    Shapes: ``log_sqft``, ``bathrooms``, ``outdoor`` ``(N, J)``; ``family_size``
    ``(N,)``; ``choice`` ``(N,)`` integers, 0 = outside option, 1..J = apartment;
    ``draws`` ``(N, R)`` standard normal; ``theta_true`` ``(6,)`` (NaN if unknown).
    Build with :func:`make_data` or :func:`simulate`, which validate.
    """

    log_sqft: np.ndarray
    bathrooms: np.ndarray
    family_size: np.ndarray
    outdoor: np.ndarray
    choice: np.ndarray
    draws: np.ndarray
    theta_true: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(N, J, R)``: consumers, apartments, draws."""
        return (self.log_sqft.shape[0], self.log_sqft.shape[1], self.draws.shape[1])


def make_data(log_sqft, bathrooms, family_size, outdoor, choice, draws, theta_true=None):
    """Validate arrays and return a :class:`MixedLogitData` (float64, ``choice`` int64).

    Raises ``ValueError`` naming the field for a wrong shape, a non-finite
    value or a choice outside ``0..J``, and ``TypeError`` for non-numeric input.
    """
    log_sqft = as_float_array(log_sqft, "log_sqft", ndim=2)
    n, j = log_sqft.shape
    bathrooms = as_float_array(bathrooms, "bathrooms", shape=(n, j))
    outdoor = as_float_array(outdoor, "outdoor", shape=(n, j))
    family_size = as_float_array(family_size, "family_size", shape=(n,))
    draws = as_float_array(draws, "draws", shape=(n, None))
    if draws.shape[1] < 1:
        raise ValueError("draws must have at least one column (R >= 1)")
    raw = np.asarray(choice)
    if raw.shape != (n,):
        raise ValueError(f"choice must have shape ({n},), got {raw.shape}")
    if not np.issubdtype(raw.dtype, np.integer):
        if not np.issubdtype(raw.dtype, np.floating) or np.any(raw != np.round(raw)):
            raise TypeError(f"choice must hold integers 0..{j}, got dtype {raw.dtype}")
    choice = raw.astype(np.int64)
    if choice.min() < 0 or choice.max() > j:
        bad = choice[(choice < 0) | (choice > j)][0]
        raise ValueError(f"choice must be in 0..{j} (0 = outside option), found {bad}")
    theta_true = np.full(6, np.nan) if theta_true is None else check_theta(theta_true)
    return MixedLogitData(log_sqft, bathrooms, family_size, outdoor, choice, draws, theta_true)


THETA_ARG = "theta (b0, b1, b2, b3, mu, sigma)"


def check_theta(theta) -> np.ndarray:
    """Return ``theta`` as a finite float64 vector of length 6, or raise naming the problem."""
    return as_vector(theta, THETA_ARG, 6)


def theta_arg(theta):
    """``theta`` for a JAX likelihood: checked in full when concrete, by shape and dtype when
    traced (inside ``jit`` or ``grad`` the values are not known yet)."""
    require_x64()
    if not isinstance(theta, jax.core.Tracer):
        return jnp.asarray(check_theta(theta))
    if theta.shape != (6,):
        raise ValueError(f"{THETA_ARG} must have shape (6,), got a traced array of {theta.shape}")
    if theta.dtype != jnp.float64:
        raise TypeError(f"{THETA_ARG} must be float64, got a traced array of dtype {theta.dtype}")
    return theta


def weight_arg(weight, n: int):
    """``None``, or consumer weights of shape ``(n,)``: NumPy-like input is checked in full
    (finite, >= 0); a JAX array (traced, or placed on a mesh by ``shard``) by shape, and left
    where it is."""
    if weight is None:
        return None
    if isinstance(weight, (jax.core.Tracer, jax.Array)):
        if weight.shape != (n,):
            raise ValueError(f"weight must have shape ({n},), got {weight.shape}")
        return weight
    w = as_float_array(weight, "weight", shape=(n,))
    if np.any(w < 0):
        raise ValueError(f"weight must be >= 0, found {w[w < 0][0]}")
    return jnp.asarray(w)


def check_data(data) -> MixedLogitData:
    """Return ``data`` if it is a :class:`MixedLogitData`, else raise a ``TypeError``."""
    if not isinstance(data, MixedLogitData):
        raise TypeError(
            "data must be a MixedLogitData (build it with make_data or simulate), "
            f"got {type(data).__name__}"
        )
    return data


def make_draws(n_consumers: int, n_draws: int, kind: str = "pseudo", seed: int = 0):
    """Standard normal simulation draws of shape ``(n_consumers, n_draws)``.

    ``kind="pseudo"``: NumPy's generator. ``kind="halton"``: a scrambled
    one-dimensional Halton sequence (base 2) of length ``N * R``, consumer
    ``i`` taking elements ``i*R .. i*R + R - 1``, mapped through the normal
    quantile function. Halton points cover (0, 1) more evenly than random
    points, which lowers the simulation error for a given ``R``.
    ``kind="xlogit-halton"``: exactly the draws xlogit 0.2.7 uses for the first
    random coefficient (unscrambled base-2 Halton points ``100, 101, ...``,
    consumer ``i`` taking ``i*R .. i*R + R - 1``; ``seed`` is not used), so that
    both tools can be run on identical draws.
    """
    n_consumers = positive_int(n_consumers, "n_consumers")
    n_draws = positive_int(n_draws, "n_draws")
    if kind == "pseudo":
        return np.random.default_rng(seed).standard_normal((n_consumers, n_draws))
    if kind == "halton":
        u = qmc.Halton(d=1, scramble=True, seed=seed).random(n_consumers * n_draws)[:, 0]
        u = np.clip(u, 1e-12, 1 - 1e-12)
        return norm.ppf(u).reshape(n_consumers, n_draws)
    if kind == "xlogit-halton":
        k = XLOGIT_HALTON_DROP + np.arange(n_consumers * n_draws)
        return norm.ppf(radical_inverse(k, 2)).reshape(n_consumers, n_draws)
    raise ValueError(f"draws must be one of {DRAW_KINDS}, got {kind!r}")


def simulate(
    n_consumers: int, n_options: int, n_draws: int, seed: int = 0, draws="pseudo", theta=None
) -> MixedLogitData:
    """Simulate a data set of ``n_consumers`` choosing among ``n_options`` apartments.

    ``n_draws`` estimation draws of kind ``draws`` ("pseudo" or "halton") are
    stored with the data. ``theta`` defaults to :data:`THETA_TRUE`.
    """
    n = positive_int(n_consumers, "n_consumers")
    j = positive_int(n_options, "n_options")
    theta = THETA_TRUE if theta is None else check_theta(theta)
    rng = np.random.default_rng(seed)
    log_sqft = np.log(rng.uniform(0.5, 2.5, size=(n, j)))
    bathrooms = rng.integers(1, 4, size=(n, j)).astype(float)
    family_size = rng.integers(1, 6, size=n).astype(float)
    outdoor = rng.uniform(0.0, 3.0, size=(n, j))
    b0, b1, b2, b3, mu, sigma = theta
    taste = mu + sigma * rng.standard_normal(n)
    v = b0 + b1 * log_sqft + b2 * bathrooms + b3 * bathrooms * family_size[:, None]
    v = v + taste[:, None] * outdoor
    u = np.column_stack([np.zeros(n), v]) + rng.gumbel(size=(n, j + 1))
    choice = np.argmax(u, axis=1)
    z = make_draws(n, n_draws, draws, seed=seed + 1)
    return make_data(log_sqft, bathrooms, family_size, outdoor, choice, z, theta)


def with_draws(data: MixedLogitData, n_draws: int, kind: str = "pseudo", seed: int = 0):
    """The same data with new estimation draws of shape ``(N, n_draws)``."""
    return check_data(data)._replace(draws=make_draws(data.shape[0], n_draws, kind, seed))
