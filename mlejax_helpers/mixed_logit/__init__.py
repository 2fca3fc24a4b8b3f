r"""The mixed logit estimated by simulated maximum likelihood: one estimator for every model.

Any attributes, normal or lognormal coefficients, optionally correlated, panels,
availability and an outside option, from a long DataFrame in three lines::

    model = ml.MixedLogit(attributes, random={"pf": "n", "tod": "ln"})
    data = ml.from_long(df, model, person="id", situation="chid", alternative="alt",
                        choice="choice")
    res = ml.fit(model, data, n_draws=600)      # a Result; res.summary() is the table

Modules: :mod:`.model` (:class:`MixedLogit`), :mod:`.panel_data` (:func:`from_long`,
:func:`load_electricity`, :func:`load_mode_canada`, :func:`panel_draws`,
:func:`simulate_panel`), :mod:`.panel` (likelihood, analytic scores, WTP, conditional
means), :mod:`.fitting` (:func:`fit`, on one device or a mesh of them),
:mod:`.device_loop` (``fit(..., method="device")``: BFGS with the whole loop one
compiled program), :mod:`.predict` (probabilities, elasticities), :mod:`.distribution`
(the random coefficients' moments, covariances and correlations, with standard errors),
:mod:`.results` (:class:`Result`, :func:`lr_test`), :mod:`.diagnostics` (the convergence
and identification tests behind ``success``) and :mod:`.sharding` (meshes and processes).
The same fits in xlogit and jaxlogit are :mod:`mlejax_helpers.peers`. Chapter 6's
apartment model, the paper's, with its specialised kernel and the variants the benchmark
times, is :mod:`mlejax_helpers.apartments`.

**float64.** Importing this package switches JAX to float64
(``jax_enable_x64``) for the whole process, because maximum likelihood in
float32 stops short of the optimum (chapter 3 shows it). Every estimation
function also checks that float64 is still on when it runs, and raises a
``RuntimeError`` that says how to switch it back on if it is not.
"""

from ..config import enable_x64
from . import panel_data
from .distribution import correlations, covariances, moments
from .fitting import fit, mnl_start, refit_sign_flips
from .model import MixedLogit
from .panel import conditional_means, delta_method, willingness_to_pay
from .panel_data import (
    PanelData,
    from_long,
    load_electricity,
    load_mode_canada,
    panel_draws,
    simulate_panel,
)
from .predict import elasticities, predict
from .results import Result, lr_test

enable_x64()  # see "float64" above: every estimation path computes in float64

__all__ = [
    "MixedLogit",
    "PanelData",
    "Result",
    "conditional_means",
    "correlations",
    "covariances",
    "delta_method",
    "elasticities",
    "fit",
    "from_long",
    "load_electricity",
    "load_mode_canada",
    "lr_test",
    "mnl_start",
    "moments",
    "panel_data",
    "panel_draws",
    "predict",
    "refit_sign_flips",
    "simulate_panel",
    "willingness_to_pay",
]
