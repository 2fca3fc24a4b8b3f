r"""Small derivative tools built on JAX's transformations.

* :func:`hvp`: Hessian-vector product :math:`\nabla^2 f(x)\,v` without forming the Hessian
  (forward-over-reverse: a JVP of the gradient), at the cost of a few gradients.
* :func:`per_observation_scores`: the ``(N, K)`` matrix of per-observation
  gradients of a log-likelihood written as a sum, via ``jax.vmap``; its outer
  product gives BHHH standard errors.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ._validate import as_vector, check_callable


def hvp(f, x, v):
    r"""Return :math:`\nabla^2 f(x)\, v` for scalar ``f`` and ``x``, ``v`` of shape ``(n,)``.

    Computed as ``jax.jvp(jax.grad(f), (x,), (v,))[1]``: one forward-mode pass
    through the reverse-mode gradient. Memory and time are a small multiple of
    one gradient, whatever ``n`` is, while ``jax.hessian`` costs ``n`` of them.
    """
    check_callable(f, "f")
    x = jnp.asarray(x)
    v = jnp.asarray(v)
    if x.shape != v.shape:
        raise ValueError(f"v must have the shape of x, {x.shape}, got {v.shape}")
    return jax.jvp(jax.grad(f), (x,), (v,))[1]


def per_observation_scores(loglik_obs, theta, *data):
    r"""Per-observation scores :math:`s_i = \partial \ell_i / \partial \theta`, shape ``(N, K)``.

    ``loglik_obs(theta, *row)`` returns the contribution of one observation,
    where ``row`` holds the ``i``-th slice (along axis 0) of each array in
    ``data``. ``jax.vmap`` maps ``jax.grad`` over observations, so no Python
    loop runs and the result equals ``jax.jacrev`` of the vector of
    contributions.
    """
    check_callable(loglik_obs, "loglik_obs")
    theta = jnp.asarray(as_vector(theta, "theta"))
    if not data:
        raise ValueError("data must hold at least one array with observations on axis 0")
    n = {int(jnp.shape(d)[0]) for d in data}
    if len(n) != 1:
        raise ValueError(f"every data array needs the same number of rows, got {sorted(n)}")
    one = jax.grad(loglik_obs)
    return jax.vmap(one, in_axes=(None,) + (0,) * len(data))(theta, *data)
