"""The same mixed logit in xlogit (Arteaga et al., 2022), for comparison.

xlogit wants long data: one row per (consumer, alternative). Our model maps to
it as follows:

* the outside option is an explicit alternative 0 whose regressors are all zero
  (its utility is then exactly 0, as in our model);
* ``b0`` is a column ``const`` equal to 1 for apartments and 0 for the outside
  option; xlogit's ``fit_intercept=True`` would instead add alternative-specific
  constants, a different model;
* ``bath_x_fam = bathrooms * family_size`` is precomputed;
* ``outdoor`` has a normally distributed coefficient (``randvars={"outdoor": "n"}``);
  xlogit reports its standard deviation as ``sd.outdoor``, which may come out
  negative (``sigma`` and ``-sigma`` are the same model).

xlogit draws its own simulation draws (Halton by default) and cannot take ours,
so its simulated log-likelihood is a *different function* from ours; compare
estimates on common draws with :func:`neg_loglik_on_draws`.
"""

from __future__ import annotations

import time

import numpy as np

from .._validate import positive_int
from .data import MixedLogitData, check_data, check_theta

VARNAMES = ["const", "log_sqft", "bathrooms", "bath_x_fam", "outdoor"]


def to_xlogit_long(data: MixedLogitData):
    """Return ``X (N*(J+1), 5), y (N*(J+1),), ids, alts`` in xlogit's long format."""
    n, j, _ = check_data(data).shape
    zeros = np.zeros((n, 1))
    inside = np.hstack([zeros, np.ones((n, j))])
    bath = np.hstack([zeros, data.bathrooms])
    cols = [
        inside,
        np.hstack([zeros, data.log_sqft]),
        bath,
        bath * data.family_size[:, None],
        np.hstack([zeros, data.outdoor]),
    ]
    X = np.stack([c.ravel() for c in cols], axis=1)
    y = (np.arange(j + 1)[None, :] == data.choice[:, None]).ravel().astype(int)
    ids = np.repeat(np.arange(n), j + 1)
    alts = np.tile(np.arange(j + 1), n)
    return X, y, ids, alts


def fit_xlogit(
    data: MixedLogitData,
    theta0=None,
    *,
    n_draws=None,
    optim_method="BFGS",
    halton=True,
    random_state=0,
    maxiter=2000,
    skip_std_errs=False,
) -> dict:
    """Fit the model with ``xlogit.MixedLogit`` and return a flat dict of what it reports.

    ``theta0=None`` uses xlogit's default start (a multinomial logit fit, plus 0.1
    for every standard deviation); otherwise ``theta0`` (our order) is passed as
    ``init_coeff``. ``n_draws`` defaults to our data's ``R``. The dict holds
    ``theta`` (our order), ``neg_loglik`` (xlogit's own, on its draws),
    ``convergence``, ``message``, ``nit``, ``nfev``, ``fit_s``, ``stderr``, the
    number of floating-point ``overflow_warnings`` xlogit raised, and the fitted
    ``model`` itself (whose ``grad_n`` and ``hess_inv`` are public).
    ``skip_std_errs=True`` (xlogit's own option) leaves the standard errors out of
    the fit, so that a timed fit times the optimisation alone (``stderr`` is NaN).
    """
    import warnings

    from xlogit import MixedLogit

    X, y, ids, alts = to_xlogit_long(data)
    kwargs = {}
    if theta0 is not None:
        kwargs["init_coeff"] = check_theta(theta0)
    model = MixedLogit()
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        model.fit(
            X,
            y,
            varnames=VARNAMES,
            alts=alts,
            ids=ids,
            randvars={"outdoor": "n"},
            n_draws=data.shape[2] if n_draws is None else positive_int(n_draws, "n_draws"),
            halton=halton,
            random_state=random_state,
            optim_method=optim_method,
            maxiter=maxiter,
            skip_std_errs=bool(skip_std_errs),
            verbose=0,
            **kwargs,
        )
    fit_s = time.perf_counter() - t0
    names = list(model.coeff_names)
    order = [names.index(v) for v in VARNAMES] + [names.index("sd.outdoor")]
    return {
        "theta": np.asarray(model.coeff_, dtype=float)[order],
        "stderr": np.full(len(order), np.nan)  # xlogit fills ones when it skips them
        if skip_std_errs
        else np.asarray(model.stderr, dtype=float)[order],
        "neg_loglik": -float(model.loglikelihood),
        "convergence": bool(model.convergence),
        "message": str(model.estimation_message),
        "nit": int(model.total_iter),
        "nfev": int(model.total_fun_eval),
        "fit_s": fit_s,
        "optim_method": optim_method,
        "start": "xlogit default (MNL + 0.1)" if theta0 is None else "ours",
        "overflow_warnings": sum(issubclass(w.category, RuntimeWarning) for w in caught),
        "model": model,
    }
