r"""The mixed logit model estimated by simulated maximum likelihood.

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
(JAX, NumPy and pandas likelihoods, analytic scores), :mod:`.estimate`
(``fit`` and standard errors), :mod:`.device_loop` (``fit(..., method="device")``: BFGS with
the whole loop in one compiled program), :mod:`.xlogit_bridge` (the same model in xlogit).

**The one estimator** (any attributes, normal or lognormal coefficients, optionally
correlated, panels, availability, an outside option), from a long DataFrame in three
lines::

    model = ml.MixedLogit(attributes, random={"pf": "n", "tod": "ln"})
    data = ml.from_long(df, model, person="id", situation="chid", alternative="alt",
                        choice="choice")
    res = ml.fit(model, data, n_draws=600)      # a Result; res.summary() is the table

:mod:`.model` (:class:`MixedLogit`), :mod:`.panel_data` (:func:`from_long`,
:func:`load_electricity`, :func:`panel_draws`, :func:`simulate_panel`), :mod:`.panel`
(likelihood, analytic scores, WTP, conditional means), :mod:`.fitting` (:func:`fit`, on
one device or a mesh of them), :mod:`.predict` (probabilities, elasticities),
:mod:`.distribution` (the random coefficients' moments and correlations, with
standard errors), :mod:`.results`
(:class:`Result`, :func:`lr_test`), :mod:`.diagnostics` (the convergence and
identification tests behind ``success``) and :mod:`.panel_peers` (the same fits in
xlogit and jaxlogit). Chapter 6's model above is its special case with one random
coefficient and one situation per person; its specialised kernel (``fit(data)`` on a
:class:`MixedLogitData`) stays until the benchmark's kernel comparison retires it.

**float64.** Importing this package switches JAX to float64
(``jax_enable_x64``) for the whole process, because maximum likelihood in
float32 stops short of the optimum (chapter 3 shows it). Every estimation
function also checks that float64 is still on when it runs, and raises a
``RuntimeError`` that says how to switch it back on if it is not.
"""

from ..config import enable_x64
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
from .distribution import correlations, covariances, moments
from .estimate import (
    GRADIENTS,
    METHODS,
    THETA_START,
    FitResult,
    fit_jax_loop,
    fit_pandas,
    standard_errors,
)
from .estimate import fit as _fit_apartments
from .fitting import fit as _fit_model
from .fitting import mnl_start
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
    value_and_grad_analytic,
    value_and_grad_analytic_chunked,
)
from .model import MixedLogit
from .panel import conditional_means, delta_method, willingness_to_pay
from .panel_data import (
    PanelData,
    apartments,
    from_long,
    load_electricity,
    panel_draws,
    simulate_panel,
)
from .predict import elasticities, predict
from .results import Result, lr_test

enable_x64()  # see "float64" above: every estimation path computes in float64


def fit(model, *args, **options):
    """``fit(model, data, n_draws=..., ...)``: the one estimator, :func:`.fitting.fit`, which
    returns a :class:`Result`. Given chapter 6's :class:`MixedLogitData` instead of a model,
    ``fit(data, theta0, ...)`` is :func:`.estimate.fit` on its specialised kernel, kept until
    the benchmark's kernel comparison retires it."""
    if isinstance(model, MixedLogit):
        return _fit_model(model, *args, **options)
    if isinstance(model, MixedLogitData):
        return _fit_apartments(model, *args, **options)
    raise TypeError(
        f"model must be a MixedLogit (or chapter 6's MixedLogitData), got {type(model).__name__}"
    )


__all__ = [
    "MixedLogit",
    "apartments",
    "PanelData",
    "Result",
    "conditional_means",
    "correlations",
    "covariances",
    "delta_method",
    "elasticities",
    "from_long",
    "lr_test",
    "mnl_start",
    "moments",
    "predict",
    "load_electricity",
    "panel_draws",
    "simulate_panel",
    "willingness_to_pay",
    "GRADIENTS",
    "METHODS",
    "THETA_START",
    "fit_jax_loop",
    "fit_pandas",
    "default_chunk",
    "neg_loglik_chunked",
    "value_and_grad_analytic_chunked",
    "PARAM_NAMES",
    "THETA_TRUE",
    "FitResult",
    "MixedLogitData",
    "check_theta",
    "fit",
    "grad_analytic",
    "grad_analytic_numpy",
    "make_data",
    "make_draws",
    "neg_loglik",
    "neg_loglik_numpy",
    "neg_loglik_on_draws",
    "neg_loglik_pandas",
    "scores_analytic",
    "scores_analytic_chunked",
    "scores_analytic_numpy",
    "scores_autodiff",
    "simulate",
    "standard_errors",
    "to_long_dataframe",
    "value_and_grad_analytic",
    "with_draws",
]
