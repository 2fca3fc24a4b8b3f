"""Data for the general panel mixed logit: the model's specification, long data in, draws.

A *person* ``p = 1..P`` faces up to ``T`` choice *situations*, each among up to
``J`` alternatives described by ``K`` attributes. :func:`from_long` turns the
long layout xlogit and mlogit users already have (one row per situation and
alternative) into padded arrays :class:`PanelData`; :func:`panel_draws` makes the
standard normal draws ``(P, R, K_r)``, one set per person shared by all that
person's situations (the panel).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.special import ndtri  # the standard normal quantile; scipy.stats loads slowly

from .._validate import as_vector, positive_int
from .model import MixedLogit, coefficients

PANEL_DRAW_KINDS = ("pseudo", "halton", "xlogit-halton")
XLOGIT_HALTON_DROP = 100  # xlogit 0.2.7 drops the first 100 points of each sequence
# xlogit 0.2.7's primes, one per random coefficient, in order (67 is not among them)
ELECTRICITY_ATTRIBUTES = ("pf", "cl", "loc", "wk", "tod", "seas")
ELECTRICITY_COLUMNS = {
    "person": "id",
    "situation": "chid",
    "alternative": "alt",
    "choice": "choice",
}
XLOGIT_PRIMES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 71, 73)


class PanelArrays(NamedTuple):
    """The padded arrays of a panel, what the likelihood reads (a JAX pytree). ``P`` persons,
    ``T`` situations each at most, ``J`` alternatives, ``K`` attributes.

    ``x`` ``(P, T, J, K)``; ``dx`` ``(P, T, J, K)``, each alternative's attributes
    less the chosen one's (precomputed once: utilities relative to the chosen
    alternative are all the likelihood needs); ``avail`` ``(P, T, J)``, 1.0 where
    available, else 0.0; ``chosen`` ``(P, T)`` index of the chosen alternative. A
    padded situation (a person with fewer than ``T``) has zero attributes and only
    alternative 0 available and chosen, so its log-probability is exactly 0.
    """

    x: np.ndarray
    dx: np.ndarray
    avail: np.ndarray
    chosen: np.ndarray


@dataclass(frozen=True, eq=False)
class PanelData:
    """A panel from :func:`from_long`: its :class:`PanelArrays` and what their axes are.

    ``attributes`` (axis 3) are the model's names, checked by every likelihood so that
    a coefficient is never reported under another's name; ``persons`` the sorted person
    ids (axis 0); ``situations`` ``(P, T)`` the situation ids (None where padded);
    ``alternatives`` (axis 2; the outside option is ``None``); ``n_situations`` the
    number of real choice situations (the ``n`` of BIC).
    """

    arrays: PanelArrays
    attributes: tuple
    persons: np.ndarray
    situations: np.ndarray
    alternatives: tuple
    n_situations: int

    @functools.cached_property
    def fingerprint(self) -> str:
        """A hash of the arrays and the person ids: equal for the same data."""
        return _digest(self.persons_fingerprint, *self.arrays)

    @functools.cached_property
    def choices_fingerprint(self) -> str:
        """A hash of the choices alone (persons, situations, availability, what was chosen):
        equal for data built from one DataFrame for models with other attributes."""
        situations = np.asarray(self.situations).astype(str)
        return _digest(self.persons_fingerprint, situations, self.arrays.avail, self.arrays.chosen)

    @functools.cached_property
    def attribute_fingerprints(self) -> dict:
        """``{attribute: hash of its column}``, to check that two fits share a column."""
        x = np.asarray(self.arrays.x)
        return {a: _digest(x[..., k]) for k, a in enumerate(self.attributes)}

    @functools.cached_property
    def persons_fingerprint(self) -> str:
        """A hash of the person ids, in order (which person gets which draws)."""
        return _digest(np.asarray(self.persons).astype(str))

    x = property(lambda self: self.arrays.x)
    dx = property(lambda self: self.arrays.dx)
    avail = property(lambda self: self.arrays.avail)
    chosen = property(lambda self: self.arrays.chosen)

    @property
    def n_persons(self) -> int:
        return self.arrays.x.shape[0]


def _digest(*parts) -> str:
    h = hashlib.blake2b(digest_size=12)
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else np.ascontiguousarray(part).tobytes())
    return h.hexdigest()


def _show(value) -> str:
    """``repr`` of an id, as a plain Python value (``5``, not ``np.int64(5)``)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _require(df, columns):
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"df has no column(s) {missing}; it has {list(df.columns)}")


def _numeric(df, attributes) -> np.ndarray:
    for a in attributes:
        if not (pd.api.types.is_numeric_dtype(df[a]) or pd.api.types.is_bool_dtype(df[a])):
            raise TypeError(f"attribute column {a!r} must be numeric, got dtype {df[a].dtype}")
    x = df[list(attributes)].to_numpy(dtype=float)
    bad = ~np.isfinite(x)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(
            f"attribute {attributes[col]!r} must be finite: {bad.sum()} NaN or inf value(s), "
            f"the first in row {_show(df.index[row])}"
        )
    return x


def _flags(series, name) -> np.ndarray:
    values = pd.unique(series)
    if not set(values.tolist()) <= {0, 1}:  # True == 1 and False == 0
        raise ValueError(
            f"column {name!r} must hold 0/1 or booleans, got values {list(values[:5])}"
        )
    return series.to_numpy().astype(bool)


def from_long(
    df,
    model: MixedLogit,
    *,
    person,
    situation,
    alternative,
    choice,
    availability=None,
    outside_option=False,
) -> PanelData:
    """Padded :class:`PanelData` from a long DataFrame (one row per situation x alternative),
    with one column per attribute of ``model``, in the model's order.

    Persons are numbered in the sorted order of their ids (xlogit's convention,
    which decides which draws each person gets); a person's rows need *not* be
    contiguous, and situations keep the order of their first row. Each situation
    must belong to one person and have exactly one chosen alternative, or, with
    ``outside_option=True``, at most one: a situation with none chose the
    outside option, an extra alternative of utility 0 (always available). Rows
    with ``availability`` 0 are unavailable alternatives and may not be chosen;
    alternatives missing from a situation are unavailable too.
    """
    if not isinstance(model, MixedLogit):
        raise TypeError(f"model must be a MixedLogit, got {type(model).__name__}")
    if not isinstance(outside_option, (bool, np.bool_)):
        raise TypeError(f"outside_option must be True or False, got {outside_option!r}")
    for arg, col in (
        ("person", person),
        ("situation", situation),
        ("alternative", alternative),
        ("choice", choice),
    ):
        if not isinstance(col, str):
            raise TypeError(f"{arg} must be a column name (a string), got {col!r}")
    attributes = model.attributes
    cols = [person, situation, alternative, choice, *attributes]
    _require(df, cols + ([availability] if availability else []))
    if len(df) == 0:
        raise ValueError("df has no rows: from_long needs one row per situation and alternative")
    for col in (person, situation, alternative):
        kind = pd.api.types.infer_dtype(df[col], skipna=True)
        if kind.startswith("mixed"):
            kinds = sorted({type(v).__name__ for v in df[col].tolist()})
            raise TypeError(
                f"column {col!r} mixes types {kinds}: ids must be all numbers or all strings"
            )
    x = _numeric(df, attributes)
    chosen = _flags(df[choice], choice)
    avail = _flags(df[availability], availability) if availability else np.ones(len(df), bool)
    if (chosen & ~avail).any():
        raise ValueError(
            f"a chosen alternative is unavailable ({availability!r} = 0) in row(s) "
            f"{list(df.index[chosen & ~avail][:5])}"
        )
    if df[cols[:3]].isna().any().any():
        raise ValueError(f"columns {cols[:3]} must have no missing values")
    persons, p = np.unique(df[person].to_numpy(), return_inverse=True)
    alts, j = np.unique(df[alternative].to_numpy(), return_inverse=True)
    s, sit_ids = pd.factorize(df[situation])  # first-appearance order
    owners = pd.Series(p).groupby(s).nunique()
    if (owners > 1).any():
        raise ValueError(f"situation {_show(sit_ids[owners.idxmax()])} has rows of several persons")
    if pd.Series(s * len(alts) + j).duplicated().any():
        raise ValueError(f"some situation lists one {alternative!r} twice")
    n_chosen = np.bincount(s, weights=chosen, minlength=len(sit_ids))
    wrong = (n_chosen > 1) | ((n_chosen == 0) & (not outside_option))
    if wrong.any():
        k = int(np.argmax(wrong))
        raise ValueError(
            f"situation {_show(sit_ids[k])} has {int(n_chosen[k])} chosen alternatives; each needs "
            f"exactly one{' (or none, for the outside option)' if outside_option else ''}"
        )
    sit_person = np.zeros(len(sit_ids), int)
    sit_person[s] = p
    t_of = pd.Series(sit_person).groupby(sit_person).cumcount().to_numpy()
    P, T, J = len(persons), int(t_of.max()) + 1, len(alts) + bool(outside_option)
    X = np.zeros((P, T, J, len(attributes)))
    A = np.zeros((P, T, J), bool)
    A[:, :, 0] = True  # padded situations: only alternative 0, chosen, utility 0
    A[sit_person, t_of] = False
    A[sit_person, t_of, -1] = outside_option
    C = np.zeros((P, T), int)
    C[sit_person, t_of] = len(alts)  # the outside option where none is chosen
    X[p, t_of[s], j], A[p, t_of[s], j] = x, avail
    C[p[chosen], t_of[s[chosen]]] = j[chosen]
    situations = np.full((P, T), None, object)
    situations[sit_person, t_of] = np.asarray(sit_ids, object)
    dx = X - np.take_along_axis(X, C[:, :, None, None], 2)
    arrays = PanelArrays(X, dx, A.astype(float), C)
    alternatives = (*alts.tolist(),) + (None,) * outside_option
    return PanelData(arrays, attributes, persons, situations, alternatives, len(sit_ids))


def radical_inverse(k, base: int) -> np.ndarray:
    r"""The van der Corput radical inverse :math:`\phi_b(k)` of integers ``k`` in ``base``:
    the base-``b`` digits of ``k`` mirrored about the radix point (``phi_2(6) = 0.011_2``)."""
    k = np.asarray(k, dtype=np.int64).copy()
    out, t = np.zeros(k.shape), 1
    while np.any(k > 0):
        k, digit = np.divmod(k, base)
        out += digit * (1.0 / base**t)  # 1 / b^t rounded once, as xlogit computes it
        t += 1
    return out


def _packaged(filename: str) -> pd.DataFrame:
    """A data set shipped in the package's ``data`` folder (see its ``README.md``)."""
    path = resources.files("mlejax_helpers") / "data" / filename
    with resources.as_file(path) as f:
        return pd.read_csv(f)


def load_electricity() -> pd.DataFrame:
    """Train's electricity-supplier panel in long layout (17,232 rows; see the package's
    ``data/README.md`` for its provenance): ``id`` (person), ``chid`` (situation),
    ``alt`` (1-4), ``choice`` (bool) and the attributes ``pf``, ``cl``, ``loc``,
    ``wk``, ``tod``, ``seas``."""
    return _packaged("electricity.csv.gz")


def electricity() -> tuple[MixedLogit, PanelData]:
    """Chapter 8's model on Train's electricity panel: ``(model, data)``, every attribute's
    coefficient an independent normal, the data built by :func:`from_long` from
    :func:`load_electricity`."""
    model = MixedLogit(ELECTRICITY_ATTRIBUTES, {a: "n" for a in ELECTRICITY_ATTRIBUTES})
    return model, from_long(load_electricity(), model, **ELECTRICITY_COLUMNS)


def load_mode_canada() -> pd.DataFrame:
    """Forinash and Koppelman's intercity mode choice (VIA Rail, 1989) in long layout,
    one row per *available* mode (15,520 rows, 4,324 travellers; provenance in the
    package's ``data/README.md``): ``case``, ``alt`` (train, car, bus, air), ``choice``
    (0/1), ``dist``, ``cost``, ``ivt``, ``ovt``, ``freq``, ``income``, ``urban``,
    ``noalt``. Choice sets are unequal: a mode without a row was not available."""
    return _packaged("mode_canada.csv.gz").drop(columns="Unnamed: 0")


def panel_draws(n_persons: int, n_draws: int, n_random: int, kind="halton", seed=0):
    """Standard normal draws ``(P, R, K_r)``: person ``p``'s draws, shared by all its situations.

    ``"pseudo"``: NumPy's generator. ``"halton"``: scrambled Halton points, one
    prime per random coefficient (scipy's ``qmc.Halton``), person ``p`` taking
    points ``p*R .. p*R + R - 1``. ``"xlogit-halton"``: exactly xlogit 0.2.7's
    draws (unscrambled, the first 100 points dropped, primes
    :data:`XLOGIT_PRIMES`; ``seed`` unused), so both tools fit the same objective: column
    ``k`` is the model's ``k``-th random coefficient in attribute order (the order
    :class:`MixedLogit` keeps), which gets xlogit's ``k``-th prime as in xlogit.
    ``n_random`` may be 0 (every coefficient fixed): draws of shape ``(P, R, 0)``.
    """
    P, R = positive_int(n_persons, "n_persons"), positive_int(n_draws, "n_draws")
    if isinstance(n_random, bool) or not isinstance(n_random, (int, np.integer)) or n_random < 0:
        raise ValueError(f"n_random must be an integer >= 0, got {n_random!r}")
    k = int(n_random)
    if kind not in PANEL_DRAW_KINDS:
        raise ValueError(f"kind must be one of {PANEL_DRAW_KINDS}, got {kind!r}")
    if k == 0:  # every coefficient fixed: one empty draw set per person
        return np.zeros((P, R, 0))
    if kind == "pseudo":
        return np.random.default_rng(seed).standard_normal((P, R, k))
    if kind == "halton":
        from scipy.stats import qmc  # imported here: scipy.stats takes about 0.5 s to load

        u = qmc.Halton(d=max(k, 1), scramble=True, seed=seed).random(P * R)[:, :k]
        return ndtri(np.clip(u, 1e-12, 1 - 1e-12)).reshape(P, R, k)
    if k > len(XLOGIT_PRIMES):  # xlogit-halton
        raise ValueError(f"xlogit-halton supports {len(XLOGIT_PRIMES)} random coefficients")
    i = XLOGIT_HALTON_DROP + np.arange(P * R)
    u = [radical_inverse(i, b) for b in XLOGIT_PRIMES[:k]]
    return ndtri(np.stack(u, axis=-1)).reshape(P, R, k)


def simulate_panel(model: MixedLogit, theta, n_persons, n_situations, n_alts, seed=0):
    """A long DataFrame of choices made by the exact model with parameters ``theta`` (the
    layout of :func:`from_long`: ``person``, ``situation``, ``alt``, ``choice`` and one
    standard normal column per attribute); each person draws one taste vector, kept for
    all of their ``n_situations`` situations, and extreme-value errors per alternative."""
    P, T = positive_int(n_persons, "n_persons"), positive_int(n_situations, "n_situations")
    J, K = positive_int(n_alts, "n_alts"), len(model.attributes)
    rng = np.random.default_rng(seed)
    eta = rng.standard_normal((P, 1, len(model.random)))
    theta = as_vector(theta, "theta", len(model.param_names))
    beta = np.asarray(coefficients(theta, model, eta)[0])[:, 0]  # (P, K)
    x = rng.standard_normal((P, T, J, K))
    u = np.einsum("ptjk,pk->ptj", x, beta) + rng.gumbel(size=(P, T, J))
    chosen = u.argmax(axis=2)[..., None] == np.arange(J)
    p, t, j = np.meshgrid(np.arange(P), np.arange(T), np.arange(J), indexing="ij")
    cols = {"person": p, "situation": p * T + t, "alt": j, "choice": chosen}
    frame = {k: v.ravel() for k, v in cols.items()}
    frame.update({a: x[..., i].ravel() for i, a in enumerate(model.attributes)})
    return pd.DataFrame(frame)
