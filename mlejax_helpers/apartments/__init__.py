r"""Chapter 6's apartment model, the paper's: its data, its likelihoods and its fits.

Consumer :math:`i = 1..N` chooses one of :math:`J` apartments or the outside
option :math:`j = 0` (utility 0). With standard normal draws :math:`z_{ir}`,
:math:`r = 1..R`,

.. math::

    V_{ijr} = b_0 + b_1\,\mathrm{log\_sqft}_{ij} + b_2\,\mathrm{bath}_{ij}
              + b_3\,\mathrm{bath}_{ij}\,\mathrm{fam}_i
              + (\mu + \sigma z_{ir})\,\mathrm{outdoor}_{ij},

the simulated choice probability is
:math:`\check P_i = \frac1R \sum_r e^{V_{i y_i r}} / (1 + \sum_k e^{V_{ikr}})`, and the
objective is :math:`-\sum_i \log \check P_i`. Parameters
:math:`\theta = (b_0, b_1, b_2, b_3, \mu, \sigma)`, in that order.

Modules: :mod:`.data` (simulation, validation, draws), :mod:`.likelihood`
(JAX, NumPy and pandas likelihoods, analytic scores, :func:`to_mixed_logit`),
:mod:`.estimate` (``fit`` with every gradient method and scipy solver of the paper's
Tables 1-4, the pandas and whole-loop-jitted baselines, standard errors),
:mod:`.placement` (consumers on a mesh) and :mod:`.xlogit_bridge` (the same model in
xlogit). This is the benchmark's subject and baselines and chapter 6's machinery in
the open; the one estimator of :mod:`mlejax_helpers.mixed_logit` fits the same model
(:func:`to_mixed_logit` builds it) and every other.
"""

from ..config import enable_x64
from . import likelihood
from .data import (
    PARAM_NAMES,
    THETA_TRUE,
    MixedLogitData,
    check_theta,
    make_data,
    make_draws,
    simulate,
    with_draws,
)
from .estimate import (
    GRADIENTS,
    METHODS,
    THETA_START,
    FitResult,
    fit,
    fit_jax_loop,
    fit_pandas,
    standard_errors,
)
from .likelihood import (
    default_chunk,
    grad_analytic,
    grad_analytic_numpy,
    neg_loglik,
    neg_loglik_chunked,
    neg_loglik_numpy,
    neg_loglik_on_draws,
    neg_loglik_pandas,
    scores_analytic,
    scores_analytic_chunked,
    scores_analytic_numpy,
    scores_autodiff,
    to_long_dataframe,
    to_mixed_logit,
    value_and_grad_analytic,
    value_and_grad_analytic_chunked,
)
from .placement import shard

enable_x64()  # float64 on every estimation path, as in mlejax_helpers.mixed_logit

__all__ = [
    "GRADIENTS",
    "METHODS",
    "PARAM_NAMES",
    "THETA_START",
    "THETA_TRUE",
    "FitResult",
    "MixedLogitData",
    "check_theta",
    "default_chunk",
    "fit",
    "fit_jax_loop",
    "fit_pandas",
    "grad_analytic",
    "grad_analytic_numpy",
    "likelihood",
    "make_data",
    "make_draws",
    "neg_loglik",
    "neg_loglik_chunked",
    "neg_loglik_numpy",
    "neg_loglik_on_draws",
    "neg_loglik_pandas",
    "scores_analytic",
    "scores_analytic_chunked",
    "scores_analytic_numpy",
    "scores_autodiff",
    "shard",
    "simulate",
    "standard_errors",
    "to_long_dataframe",
    "to_mixed_logit",
    "value_and_grad_analytic",
    "value_and_grad_analytic_chunked",
    "with_draws",
]
