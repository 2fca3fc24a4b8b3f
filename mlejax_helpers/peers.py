"""The one estimator's panel mixed logit fitted by its peers, xlogit 0.2.7 and jaxlogit 1.0.0.

Both take the long DataFrame itself. Each fit is timed end to end (the peer's
own set-up, draws and optimisation), standard errors skipped (``skip_std_errs``)
so that every side times estimation alone. Both peers use xlogit's Halton draws,
which :func:`~.mixed_logit.panel_data.panel_draws` reproduces (``kind="xlogit-halton"``), so
all three tools can optimise the same objective from the same start.

jaxlogit keeps standard deviations positive through ``softplus``: its ``sd``
parameters are ``softplus^{-1}(sd)``; our start is translated into that scale,
and its estimate back.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd

from .mixed_logit.model import MixedLogit


def to_peer(theta, model: MixedLogit) -> np.ndarray:
    """``theta`` (our order) in the peers' order (:func:`_xlogit_names`)."""
    if model.correlated:
        raise ValueError("the xlogit and jaxlogit bridges take independent coefficients only")
    ours = list(model.param_names)
    return np.asarray(theta, float)[[ours.index(n) for n in _xlogit_names(model)]]


def from_peer(values, names, model: MixedLogit) -> np.ndarray:
    """A peer's estimate ``values``, in its ``names`` order, in our order."""
    return np.asarray(values, float)[[list(names).index(n) for n in model.param_names]]


def with_every_alternative(df, *, situation, alternative, choice, availability="avail"):
    """``df`` with a row for every alternative in every situation, as xlogit's long format
    needs. A row added for an alternative the situation did not offer has ``choice`` 0,
    ``availability`` 0 (the others 1), the situation's values in the columns that are
    constant within every situation (person-level ones such as income), and 0 elsewhere;
    unavailable, it leaves the likelihood unchanged. The original rows are kept as they
    are."""
    alts = sorted(df[alternative].unique())
    situations = df[situation].unique()
    full = pd.MultiIndex.from_product([situations, alts], names=[situation, alternative])
    out = df.assign(**{availability: 1}).set_index([situation, alternative]).reindex(full)
    missing = out[availability].isna()
    others = [c for c in df.columns if c not in (situation, alternative)]
    constant = df.groupby(situation)[others].nunique().max() <= 1
    per_situation = list(constant[constant].index)
    out[per_situation] = out.groupby(level=0)[per_situation].transform("first")
    out.loc[missing] = out.loc[missing].fillna(0)  # only the added rows
    out = out.reset_index()
    out.loc[missing.to_numpy(), [choice, availability]] = 0
    return out


def _long(df, model, choice):
    attrs = list(model.attributes)
    return df[attrs], df[choice].astype(int), attrs, dict(model.random)


def fit_xlogit_panel(
    df,
    model: MixedLogit,
    theta0,
    *,
    person,
    situation,
    alternative,
    choice,
    n_draws,
    optim_method="L-BFGS-B",
    availability=None,
) -> dict:
    """xlogit's ``MixedLogit.fit`` on the long DataFrame ``df`` from ``theta0`` (our order), or
    from xlogit's default start (a multinomial logit fit, 0.1 standard deviations) if None.
    ``availability``: the column of 0/1 availability (every situation must list every
    alternative: :func:`with_every_alternative`)."""
    from xlogit import MixedLogit

    x, y, attrs, rand = _long(df, model, choice)
    t0 = time.perf_counter()
    fitted = MixedLogit()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fitted.fit(
            X=x,
            y=y,
            varnames=attrs,
            alts=df[alternative],
            ids=df[situation],
            panels=df[person],
            randvars=rand,
            n_draws=n_draws,
            halton=True,
            init_coeff=None if theta0 is None else to_peer(theta0, model),
            optim_method=optim_method,
            avail=None if availability is None else df[availability],
            skip_std_errs=True,
            verbose=0,
        )
    seconds = time.perf_counter() - t0
    theta = from_peer(fitted.coeff_, fitted.coeff_names, model)
    return {
        "tool": f"xlogit ({optim_method})",
        "theta": theta,
        "neg_loglik": -float(fitted.loglikelihood),
        "success": bool(fitted.convergence),
        "message": str(fitted.estimation_message),
        "nit": int(fitted.total_iter),
        "end_to_end_s": seconds,
    }


def _xlogit_names(model):
    """xlogit's parameter order: every attribute, then ``sd.<name>`` in attribute order."""
    rand = dict(model.random)
    return list(model.attributes) + [f"sd.{a}" for a in model.attributes if a in rand]


def fit_jaxlogit_panel(
    df,
    model: MixedLogit,
    theta0,
    *,
    person,
    situation,
    alternative,
    choice,
    n_draws,
    optim_method="L-BFGS-scipy",
) -> dict:
    """jaxlogit's ``MixedLogit.fit`` on ``df`` from ``theta0`` (our order, sds translated)."""
    from jaxlogit.mixed_logit import ConfigData, MixedLogit

    x, y, attrs, rand = _long(df, model, choice)
    k = len(model.attributes)
    start = to_peer(theta0, model)
    start[k:] = np.log(np.expm1(np.abs(start[k:])))  # softplus^{-1}
    config = ConfigData(
        panels=df[person],
        n_draws=n_draws,
        skip_std_errs=True,
        optim_method=optim_method,
        init_coeff=start,
    )
    t0 = time.perf_counter()
    fitted = MixedLogit()
    fitted.fit(
        X=x,
        y=y,
        varnames=attrs,
        ids=df[situation],
        alts=df[alternative],
        randvars=rand,
        config=config,
    )
    seconds = time.perf_counter() - t0
    theta = from_peer(fitted.coeff_, fitted.coeff_names, model)
    theta[k:] = np.log1p(np.exp(theta[k:]))  # softplus: back to standard deviations
    return {
        "tool": f"jaxlogit ({optim_method})",
        "theta": theta,
        "neg_loglik": -float(fitted.loglikelihood),
        "success": bool(fitted.convergence),
        "message": str(getattr(fitted, "estimation_message", "")),
        "nit": int(getattr(fitted, "total_iter", -1)),
        "end_to_end_s": seconds,
    }
