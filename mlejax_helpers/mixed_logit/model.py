r"""The mixed logit model: which coefficients are random and how, and the map from the
parameters :math:`\theta` to every person's coefficients (one model for every chapter)."""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

DISTRIBUTIONS = ("n", "ln")


def _names(value, name) -> tuple:
    """``value`` as a tuple of strings; a single string is refused (it is not a list of names)."""
    if isinstance(value, str):
        raise TypeError(
            f"{name} must be a list or tuple of names, got the string {value!r} "
            f"(for one name write ({value!r},))"
        )
    try:
        out = tuple(value)
    except TypeError:
        raise TypeError(f"{name} must be a list or tuple of names, got {value!r}") from None
    if not all(isinstance(v, str) for v in out):
        raise TypeError(f"{name} must hold strings, got {out!r}")
    return out


@dataclass(frozen=True)
class MixedLogit:
    r"""Which coefficients are random, and how. Hashable: a static argument of ``jax.jit``.

    ``attributes``: the ``K`` attribute names, in the order of ``PanelData.x``.
    ``random``: ``{name: "n" | "ln"}`` for the random coefficients. They are kept in the
    order of ``attributes`` whatever the dict's order (xlogit's order: the draws' columns,
    the ``sd.``/``chol.`` parameters and xlogit's Halton primes all follow it).
    A normal coefficient is :math:`\beta = m + (L\eta)_k`; a lognormal one is
    :math:`\beta = \exp(m + (L\eta)_k)`, always *positive*: for a price, whose
    coefficient should be negative, enter the negated price (as xlogit and
    Train do). ``L`` is diagonal (the standard deviations) unless
    ``correlated``, when it is the lower-triangular Cholesky factor of the
    random coefficients' covariance (of their logs, for lognormal ones).

    Parameters, in order: one ``m`` per attribute, then ``sd.<name>`` per random
    coefficient, or, when correlated, ``chol.<row>.<col>`` row by row.

    Chapter 6's apartments are the special case of one random coefficient, one
    situation per person and an outside option; chapter 8's electricity model has six.
    """

    attributes: tuple
    random: tuple = ()
    correlated: bool = False

    def __post_init__(self):
        attrs = _names(self.attributes, "attributes")
        if not attrs or len(set(attrs)) != len(attrs):
            raise ValueError(f"attributes must be distinct names, got {attrs!r}")
        pairs = self.random.items() if isinstance(self.random, dict) else self.random
        if isinstance(pairs, str) or not all(
            isinstance(p, (tuple, list)) and len(p) == 2 for p in pairs
        ):
            raise TypeError(f"random must be a dict {{name: 'n' | 'ln'}}, got {self.random!r}")
        names = [name for name, _ in pairs]
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"random names {twice} more than once; each coefficient once")
        for name, dist in pairs:
            if name not in attrs:
                raise ValueError(f"random coefficient {name!r} is not one of attributes {attrs}")
            if dist not in DISTRIBUTIONS:
                raise ValueError(f"random[{name!r}] must be one of {DISTRIBUTIONS}, got {dist!r}")
        # attribute order, whatever the dict's: xlogit's order, so its draws match (see panel_draws)
        rand = tuple(sorted(((n, d) for n, d in pairs), key=lambda p: attrs.index(p[0])))
        object.__setattr__(self, "attributes", attrs)
        object.__setattr__(self, "random", rand)
        if not isinstance(self.correlated, (bool, np.bool_)):
            raise TypeError(f"correlated must be True or False, got {self.correlated!r}")
        object.__setattr__(self, "correlated", bool(self.correlated))
        params = self.param_names
        if len(set(params)) != len(params):
            twice = sorted({n for n in params if params.count(n) > 1})
            raise ValueError(
                f"parameter name(s) {twice} would appear twice: an attribute may not be named "
                "like a standard deviation ('sd.<name>') or a Cholesky entry ('chol.<a>.<b>')"
            )

    @property
    def random_index(self) -> tuple:
        """Positions in ``attributes`` of the random coefficients, in draw order."""
        return tuple(self.attributes.index(name) for name, _ in self.random)

    @property
    def fixed_index(self) -> tuple:
        """Positions in ``attributes`` of the fixed coefficients."""
        return tuple(k for k in range(len(self.attributes)) if k not in self.random_index)

    @property
    def lognormal(self) -> np.ndarray:
        """``(K_r,)`` booleans: which random coefficients are lognormal."""
        return np.array([dist == "ln" for _, dist in self.random], dtype=bool)

    @property
    def param_names(self) -> tuple:
        names = [r[0] for r in self.random]
        if self.correlated:
            rest = [f"chol.{names[i]}.{names[j]}" for i in range(len(names)) for j in range(i + 1)]
        else:
            rest = [f"sd.{n}" for n in names]
        return self.attributes + tuple(rest)


def cholesky(theta, model: MixedLogit):
    r"""``L`` ``(K_r, K_r)``: the random coefficients' exponents are :math:`m + L\eta`, with
    covariance :math:`LL'` (diagonal, the standard deviations, unless ``correlated``)."""
    k, kr = len(model.attributes), len(model.random)
    if model.correlated:
        rows, cols = np.tril_indices(kr)
        return jnp.zeros((kr, kr)).at[rows, cols].set(theta[k:])
    return jnp.diag(theta[k:])


def random_coefficients(theta, model: MixedLogit, draws):
    r"""``(beta_r, d_eta)`` ``(..., K_r)`` for draws ``(..., K_r)``, e.g. ``(P, R, K_r)``: the
    random coefficients per draw, :math:`m_k + (L\eta)_k` or its exponential, and each
    one's derivative with respect to that exponent (1 for normal, ``beta`` for lognormal)."""
    idx = jnp.array(model.random_index, int)
    expo = theta[idx] + draws @ cholesky(theta, model).T
    ln = jnp.asarray(model.lognormal)
    beta_r = jnp.where(ln, jnp.exp(jnp.where(ln, expo, 0.0)), expo)
    return beta_r, jnp.where(ln, beta_r, 1.0)


def coefficients(theta, model: MixedLogit, draws):
    r"""``(beta, d_eta)`` for draws ``(..., K_r)``: ``beta`` ``(..., K)`` every coefficient
    per draw (fixed ones repeated), ``d_eta`` as in :func:`random_coefficients`."""
    beta_r, d_eta = random_coefficients(theta, model, draws)
    k, idx = len(model.attributes), jnp.array(model.random_index, int)
    beta = jnp.broadcast_to(theta[:k], (*draws.shape[:-1], k)).at[..., idx].set(beta_r)
    return beta, d_eta


def default_start(model: MixedLogit) -> np.ndarray:
    """Zero means and 0.1 for every standard deviation (Cholesky diagonal)."""
    k, kr = len(model.attributes), len(model.random)
    rest = np.eye(kr)[np.tril_indices(kr)] if model.correlated else np.ones(kr)
    return np.r_[np.zeros(k), 0.1 * rest]
