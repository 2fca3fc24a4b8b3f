r"""BFGS from the BHHH start with the whole loop on the device: one compiled program.

:func:`~.estimate.fit` lets scipy drive: every iteration returns to Python, and
two programs are compiled (the value and gradient, and the scores for the BHHH
start). :func:`fit_on_device` compiles one program that holds the whole
optimisation. Each pass of its ``lax.while_loop`` evaluates the value and the
per-consumer scores :math:`s_i` (shape ``(N, 6)``) once, at a trial point
:math:`x + a d`, and then either

* **accepts** it when the Armijo condition
  :math:`f(x + a d) \le f(x) + c_1 a \nabla f(x)^\top d` holds: the inverse
  Hessian :math:`H` gets the BFGS update (skipped unless :math:`s^\top y > 0`), the
  new direction is :math:`d = -H \nabla f`, and the step :math:`a` goes back to 1; or
* **halves** :math:`a` (backtracking).

The first pass evaluates :math:`\theta_0` itself and sets
:math:`H_0 = (\frac1N \sum_i s_i s_i^\top)^{-1}`, the BHHH start, from the same
scores. The objective is the *average* negative log-likelihood and the loop stops
when :math:`\max_k |\nabla_k f| \le` ``gtol``, the rule :func:`~.estimate.fit`
gives scipy's BFGS. Only the line search differs: scipy's BFGS uses a Wolfe search.
"""

from __future__ import annotations

import time
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..quasi_newton import inverse_update
from .data import check_data, check_theta, require_x64
from .estimate import THETA_START, FitResult, check_fit_options, checked
from .likelihood import log_p_and_scores

C1 = 1e-4  # Armijo's sufficient-decrease constant
MIN_STEP = 2.0**-40  # a line search that halves the step below this has failed


class LoopState(NamedTuple):
    """What one pass of the loop carries: iterate ``x`` ``(6,)``, average value ``f`` and
    gradient ``g`` ``(6,)`` there, inverse Hessian ``h`` ``(6, 6)``, direction ``d`` and
    step ``a``, the counts of accepted steps (``nit``) and evaluations (``nfev``), and the
    average BHHH matrix ``b`` ``(6, 6)`` at ``x`` (for the convergence test after the loop)."""

    x: jax.Array
    f: jax.Array
    g: jax.Array
    h: jax.Array
    d: jax.Array
    a: jax.Array
    nit: jax.Array
    nfev: jax.Array
    b: jax.Array


def _pass(state: LoopState, data, chunk, n) -> LoopState:
    """One evaluation at ``x + a d``, then accept (BFGS update) or halve the step."""
    trial = state.x + state.a * state.d
    log_p, scores = log_p_and_scores(trial, data, chunk)
    f, g = -jnp.sum(log_p) / n, -jnp.sum(scores, axis=0) / n
    first = state.nfev == 0
    armijo = f <= state.f + C1 * state.a * (state.g @ state.d)  # False for NaN
    s, y = trial - state.x, g - state.g
    b = scores.T @ scores / n
    bhhh = jnp.linalg.inv(b)
    updated = jnp.where(s @ y > 0, inverse_update(state.h, s, y, jnp), state.h)
    h = jnp.where(first, (bhhh + bhhh.T) / 2, updated)
    accept = first | armijo
    keep = lambda new, old: jnp.where(accept, new, old)  # noqa: E731
    return LoopState(
        x=keep(trial, state.x),
        f=keep(f, state.f),
        g=keep(g, state.g),
        h=keep(h, state.h),
        d=keep(-h @ g, state.d),
        a=keep(1.0, state.a / 2),
        nit=state.nit + (accept & ~first).astype(state.nit.dtype),
        nfev=state.nfev + 1,
        b=keep(b, state.b),
    )


@partial(jax.jit, static_argnames="chunk")
def _solve(theta0, data, gtol, maxiter, chunk):
    """The whole loop: passes of :func:`_pass` until the gradient test, ``maxiter`` accepted
    steps, or a step below :data:`MIN_STEP`."""
    n = data.shape[0]
    zero = jnp.zeros_like(theta0)
    f, a, count = jnp.asarray(jnp.inf), jnp.asarray(0.0), jnp.asarray(0)
    eye = jnp.eye(theta0.shape[0])
    start = LoopState(theta0, f, zero, eye, zero, a, count, count, eye)

    def going(state):
        return (state.nfev == 0) | (
            (jnp.max(jnp.abs(state.g)) > gtol) & (state.nit < maxiter) & (state.a >= MIN_STEP)
        )

    return jax.lax.while_loop(going, lambda state: _pass(state, data, chunk, n), start)


def _outcome(state: LoopState, gtol, maxiter) -> str:
    """Why the loop stopped (the convergence test after it decides ``success``)."""
    if np.max(np.abs(np.asarray(state.g))) <= gtol:
        return "max |average gradient| <= gtol"
    if int(state.nit) >= maxiter:
        return f"maximum number of iterations ({maxiter}) reached"
    return "line search failed: step halved below 2**-40 without sufficient decrease"


def fit_on_device(data, theta0=None, *, gtol=1e-6, maxiter=1000, chunk="auto") -> FitResult:
    """Estimate ``theta`` by BFGS from the BHHH start, the whole loop one jitted program.

    Same arguments and stopping rule as :func:`~.estimate.fit` with its defaults;
    ``compile_s`` is tracing and compiling the program (and moving the data to the
    device), ``run_s`` running it once. ``nfev`` counts evaluations, trial points the
    line search rejected included; ``message`` says why the loop stopped.
    """
    data = check_data(data)
    require_x64()
    theta0 = jnp.asarray(THETA_START if theta0 is None else check_theta(theta0))
    opts = check_fit_options(data, "analytic-fused", True, "BFGS", gtol, maxiter, "bhhh", chunk)
    t0 = time.perf_counter()
    dev = jax.device_put(data)
    args = (theta0, dev, opts.gtol, opts.maxiter)
    program = _solve.lower(*args, chunk=opts.chunk).compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    state = jax.block_until_ready(program(*args))
    run_s = time.perf_counter() - t0
    theta, total = np.asarray(state.x), float(state.f) * data.shape[0]
    n = data.shape[0]
    grad, opg = n * np.asarray(state.g), n * np.asarray(state.b)  # totals, for the test
    success, message = checked(theta, total, grad, opg, _outcome(state, opts.gtol, opts.maxiter))
    nfev = int(state.nfev)
    return FitResult(
        theta, total, int(state.nit), nfev, nfev, success, message, compile_s, run_s,
        "analytic-fused", (True, True), "BFGS-device", "bhhh",
    )  # fmt: skip
