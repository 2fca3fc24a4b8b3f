r"""BFGS from the BHHH start with the whole loop on the device: one compiled program.

With ``method="BFGS"``, :func:`~.fitting.fit` lets scipy drive: every iteration returns
to Python. ``method="device"`` compiles one program, :func:`solve`, that holds the
whole optimisation. Each pass of its ``lax.while_loop`` evaluates the value, the
gradient and the BHHH matrix :math:`B = S'S` once (the one program of
:func:`~.fitting.fit`, any :class:`~.model.MixedLogit`, any mesh), at a trial point
:math:`x + a d`, and then either

* **accepts** it when the Armijo condition
  :math:`f(x + a d) \le f(x) + c_1 a \nabla f(x)^\top d` holds: the inverse
  Hessian :math:`H` gets the BFGS update (skipped unless :math:`s^\top y > 0`), the
  new direction is :math:`d = -H \nabla f`, and the step :math:`a` goes back to 1; or
* **halves** :math:`a` (backtracking).

The first pass evaluates :math:`\theta_0` itself and sets :math:`H_0 = (B/P)^{-1}`,
the BHHH start, from the same evaluation (:math:`f` is the -LL per person, ``P``
persons). The loop stops on the convergence test of :mod:`.diagnostics` itself,
the scaled gradient :math:`g'B^{-1}g \le` :data:`~.diagnostics.GRAD_TOL` on the
totals, so the test that decides ``success`` afterwards is the loop's own. Only the
line search differs from scipy's BFGS, which uses a Wolfe search.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..quasi_newton import inverse_update
from .diagnostics import GRAD_TOL

C1 = 1e-4  # Armijo's sufficient-decrease constant
MIN_STEP = 2.0**-40  # a line search that halves the step below this has failed


class LoopState(NamedTuple):
    """What one pass of the loop carries: iterate ``x`` ``(k,)``, the -LL per person ``f``
    and its gradient ``g`` ``(k,)`` there, inverse Hessian ``h`` ``(k, k)``, direction ``d``
    and step ``a``, the counts of accepted steps (``nit``) and evaluations (``nfev``), and
    the BHHH matrix per person ``b`` ``(k, k)`` at ``x``."""

    x: jax.Array
    f: jax.Array
    g: jax.Array
    h: jax.Array
    d: jax.Array
    a: jax.Array
    nit: jax.Array
    nfev: jax.Array
    b: jax.Array


def _pass(state: LoopState, evaluate, n) -> LoopState:
    """One evaluation at ``x + a d``, then accept (BFGS update) or halve the step."""
    trial = state.x + state.a * state.d
    value, grad, opg = evaluate(trial)
    f, g, b = value / n, grad / n, opg / n
    first = state.nfev == 0
    armijo = f <= state.f + C1 * state.a * (state.g @ state.d)  # False for NaN
    s, y = trial - state.x, g - state.g
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


def scaled_gradient(state: LoopState, n):
    """:math:`g'B^{-1}g` on the totals (``n`` times the per-person one); NaN if singular."""
    return n * state.g @ jnp.linalg.solve(state.b, state.g)


def solve(program, placed, theta0, n: int, maxiter: int):
    """``(state, compile_s, run_s)``: BFGS from the BHHH start, the loop compiled ahead of
    time (``lower().compile()``) and run once. ``program(theta, *placed)`` returns the
    totals ``(-LL, gradient, S'S)``; ``n`` is the number of persons. Stops when the
    scaled gradient is at most :data:`GRAD_TOL`, after ``maxiter`` accepted steps, or
    when the step falls below :data:`MIN_STEP`."""

    def loop(theta0, placed):
        k = theta0.shape[0]
        zero, eye, count = jnp.zeros(k), jnp.eye(k), jnp.asarray(0)
        start = LoopState(theta0, jnp.asarray(jnp.inf), zero, eye, zero, 0.0, count, count, eye)

        def going(state):
            small = scaled_gradient(state, n) <= GRAD_TOL  # False for NaN: keep going
            return (state.nfev == 0) | (~small & (state.nit < maxiter) & (state.a >= MIN_STEP))

        def one(state):
            return _pass(state, lambda t: program(t, *placed), n)

        return jax.lax.while_loop(going, one, start)

    t0 = time.perf_counter()
    compiled = jax.jit(loop).lower(jnp.asarray(theta0), placed).compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    state = jax.block_until_ready(compiled(jnp.asarray(theta0), placed))
    return state, compile_s, time.perf_counter() - t0


def outcome(state: LoopState, n, maxiter) -> str:
    """Why the loop stopped (the convergence test after it decides ``success``)."""
    if float(scaled_gradient(state, n)) <= GRAD_TOL:
        return f"scaled gradient <= {GRAD_TOL:g}"
    if int(state.nit) >= maxiter:
        return f"maximum number of iterations ({maxiter}) reached"
    return "line search failed: step halved below 2**-40 without sufficient decrease"


def totals(state: LoopState, n):
    """``(theta, -LL, gradient, S'S)`` at the loop's last accepted point, as totals."""
    return np.asarray(state.x), float(state.f) * n, n * np.asarray(state.g), n * np.asarray(state.b)
