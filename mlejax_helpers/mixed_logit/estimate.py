"""Estimation of the mixed logit: one ``fit`` entry point and three kinds of standard errors."""

from __future__ import annotations

import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np
import pandas as pd
from scipy.optimize import minimize

from .._validate import positive_int, positive_number
from ..derivatives import hvp, per_observation_scores
from .data import PARAM_NAMES, MixedLogitData, check_theta
from .likelihood import (
    _log_p,
    _one_consumer,
    default_chunk,
    grad_analytic,
    grad_analytic_numpy,
    neg_loglik,
    neg_loglik_chunked,
    neg_loglik_numpy,
    scores_analytic,
    scores_analytic_chunked,
    value_and_grad_analytic,
    value_and_grad_analytic_chunked,
)

GRADIENTS = (
    "finite-differences",
    "analytic",
    "analytic-numpy",
    "analytic-fused",
    "autodiff",
    "autodiff-fused",
)
INITS = ("identity", "bhhh")
SECOND_ORDER = ("Newton-CG", "trust-krylov", "trust-ncg", "trust-exact")
THETA_START = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 1.0])


@dataclass(frozen=True)
class FitResult:
    """What :func:`fit` returns. ``neg_loglik`` is the total ``-sum_i log P_i`` at ``theta``.

    ``compile_s`` is the wall time of the warm-up calls (tracing, compiling and
    one evaluation of each function handed to scipy); ``run_s`` the wall time of
    ``scipy.optimize.minimize`` alone. ``nfev`` counts every evaluation of the
    objective during the run, those made for finite-difference gradients included;
    ``njev`` is scipy's count of gradient calls.
    """

    theta: np.ndarray
    neg_loglik: float
    nit: int
    nfev: int
    njev: int
    success: bool
    message: str
    compile_s: float
    run_s: float
    gradient: str
    jit: tuple[bool, bool]
    method: str
    init: str = "identity"

    def as_dict(self) -> dict:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "theta"}
        out.update({name: float(v) for name, v in zip(PARAM_NAMES, self.theta, strict=True)})
        return out


def _check_data(data):
    if not isinstance(data, MixedLogitData):
        raise TypeError(f"data must be a MixedLogitData (see simulate), got {type(data).__name__}")
    return data


def _options(method, gtol, maxiter):
    if method in ("BFGS", "CG", "trust-krylov", "trust-ncg", "trust-exact"):
        return {"gtol": gtol, "maxiter": maxiter}
    if method == "L-BFGS-B":
        return {"gtol": gtol, "ftol": 1e-15, "maxiter": maxiter}
    if method == "TNC":
        return {"gtol": gtol, "ftol": 0.0, "xtol": 0.0, "maxfun": 20 * maxiter}
    if method == "Newton-CG":
        return {"xtol": 1e-10, "maxiter": maxiter}
    if method == "SLSQP":
        return {"ftol": 1e-14, "maxiter": maxiter}
    raise ValueError(
        "method must be one of BFGS, CG, L-BFGS-B, TNC, SLSQP, Newton-CG, trust-krylov, "
        f"trust-ncg, trust-exact; got {method!r}"
    )


def fit(
    data,
    theta0=None,
    *,
    gradient="autodiff",
    jit=True,
    method="BFGS",
    gtol=1e-6,
    maxiter=1000,
    init="identity",
    chunk="auto",
) -> FitResult:
    """Estimate ``theta`` by ``scipy.optimize.minimize`` on the *average* negative log-likelihood.

    ``gradient``: ``"finite-differences"`` (scipy's forward differences),
    ``"analytic"`` (:func:`grad_analytic`, JAX), ``"analytic-numpy"``
    (NumPy function and gradient; ``jit`` is ignored), ``"analytic-fused"``
    (:func:`value_and_grad_analytic`, value and gradient in one call),
    ``"autodiff"`` (``jax.grad``) or ``"autodiff-fused"`` (one
    ``jax.value_and_grad`` call per iteration, ``jac=True``). ``jit`` is a
    bool or a pair ``(jit_loglik, jit_grad)``.

    ``init="bhhh"`` (BFGS only) starts BFGS from the inverse of the BHHH matrix
    at ``theta0`` (outer product of the per-consumer scores, as xlogit does)
    instead of the identity; computing it is part of the timed run.

    ``chunk`` (JAX paths only): consumers per chunk for large problems, so that
    memory stays bounded by ``chunk * J * R`` elements (see
    :func:`neg_loglik_chunked`); ``"auto"`` chunks only when ``N * J * R``
    exceeds ``CHUNK_ELEMENTS``, ``None`` never chunks.
    Second-order methods (Newton-CG, trust-*) also get exact Hessian-vector
    products from :func:`mlejax_helpers.derivatives.hvp`.

    The objective is divided by ``N`` so that ``gtol`` means the same thing for
    any sample size: ``max|grad| <= gtol`` per consumer.
    """
    data = _check_data(data)
    theta0 = THETA_START.copy() if theta0 is None else check_theta(theta0)
    if gradient not in GRADIENTS:
        raise ValueError(f"gradient must be one of {GRADIENTS}, got {gradient!r}")
    jit_f, jit_g = (jit, jit) if isinstance(jit, bool) else tuple(jit)
    if gradient == "analytic-numpy":
        jit_f = jit_g = False
    gtol = positive_number(gtol, "gtol")
    maxiter = positive_int(maxiter, "maxiter")
    options = _options(method, gtol, maxiter)
    scale = 1.0 / data.shape[0]

    def maybe_jit(fn, flag):
        return jax.jit(fn) if flag else fn

    chunk = default_chunk(data) if chunk == "auto" else chunk
    if gradient == "analytic-numpy":
        dev, nll, chunk = data, neg_loglik, None

        def fun(th):
            return neg_loglik_numpy(th, dev) * scale

        def jac(th):
            return grad_analytic_numpy(th, dev) * scale

    else:
        dev = jax.device_put(data)
        if chunk is None:
            nll, vg_analytic = neg_loglik, value_and_grad_analytic
        else:
            chunk = positive_int(chunk, "chunk")

            def nll(th, d):
                return neg_loglik_chunked(th, d, chunk)

            def vg_analytic(th, d):
                return value_and_grad_analytic_chunked(th, d, chunk)

        f_j = maybe_jit(nll, jit_f)

        def fun(th):
            return float(f_j(th, dev)) * scale

        jac = None
        if gradient in ("analytic", "autodiff"):
            if gradient == "analytic":
                raw = grad_analytic if chunk is None else (lambda th, d: vg_analytic(th, d)[1])
            else:
                raw = jax.grad(nll)
            g_j = maybe_jit(raw, jit_g)

            def jac(th):
                return np.asarray(g_j(th, dev)) * scale

        elif gradient in ("autodiff-fused", "analytic-fused"):
            raw = vg_analytic if gradient == "analytic-fused" else jax.value_and_grad(nll)
            vg_j = maybe_jit(raw, jit_f or jit_g)

            def fun(th):
                v, g = vg_j(th, dev)
                return float(v) * scale, np.asarray(g) * scale

            jac = True

    if gradient == "finite-differences" and method in SECOND_ORDER:
        from scipy.optimize import approx_fprime

        def jac(th):  # Newton-type solvers insist on a callable gradient
            return approx_fprime(th, fun)

    calls = {"fun": 0}
    inner_fun = fun

    def fun(th):  # count every evaluation, finite-difference ones included
        calls["fun"] += 1
        return inner_fun(th)

    hessp = None
    if method in SECOND_ORDER and gradient != "finite-differences":
        hvp_j = jax.jit(lambda th, p, d: hvp(lambda t: nll(t, d), th, p))

        def hessp(th, p):
            return np.asarray(hvp_j(th, p, dev)) * scale

    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    if init == "bhhh" and method != "BFGS":
        raise ValueError(f"init='bhhh' needs method='BFGS', got {method!r}")
    scores_j = None
    if init == "bhhh":
        scores_j = jax.jit(
            scores_analytic
            if chunk is None
            else lambda th, d: scores_analytic_chunked(th, d, chunk)
        )
        dev = jax.device_put(data)

    t0 = time.perf_counter()  # warm-up: compile and run each function once
    fun(theta0)
    if callable(jac):
        jac(theta0)
    if hessp is not None:
        hessp(theta0, np.ones(6))
    if scores_j is not None:
        scores_j(theta0, dev)
    compile_s = time.perf_counter() - t0
    calls["fun"] = 0
    t0 = time.perf_counter()
    kwargs = {"hessp": hessp} if hessp is not None else {}
    if scores_j is not None:
        options["hess_inv0"] = bhhh_inverse(np.asarray(scores_j(theta0, dev)))
    res = minimize(fun, theta0, jac=jac, method=method, options=options, **kwargs)
    run_s = time.perf_counter() - t0
    theta_hat = np.asarray(res.x, dtype=float)
    if gradient == "analytic-numpy":
        total = neg_loglik_numpy(theta_hat, data)
    else:  # the (possibly chunked) JAX objective: no full-size NumPy arrays at the end
        total = float(f_j(theta_hat, dev))
    return FitResult(
        theta=theta_hat,
        neg_loglik=total,
        nit=int(res.get("nit", -1)),
        nfev=calls["fun"],
        njev=int(res.get("njev", -1)),
        success=bool(res.success),
        message=str(res.message),
        compile_s=compile_s,
        run_s=run_s,
        gradient=gradient,
        jit=(bool(jit_f), bool(jit_g)),
        method=method,
        init=init,
    )


def bhhh_inverse(scores) -> np.ndarray:
    """Inverse of the average outer product of scores ``(N, K)``: a start for BFGS's ``H_0``.

    For the *average* negative log-likelihood the BHHH approximation of the
    Hessian is ``S'S / N``; its inverse is returned symmetrised, so scipy's
    positive-definiteness check accepts it.
    """
    s = np.asarray(scores, dtype=float)
    h = np.linalg.inv(s.T @ s / s.shape[0])
    return 0.5 * (h + h.T)


def _log_p_one(theta, *row):
    """``log P_i`` of a single consumer (one row of each array), for ``vmap``."""
    return _log_p(theta, _one_consumer(row), jnp, jsp.logsumexp)[0]


def scores_autodiff(theta, data: MixedLogitData):
    """Per-consumer scores ``(N, 6)`` by ``vmap`` of ``jax.grad`` over consumers."""
    data = _check_data(data)
    return per_observation_scores(
        _log_p_one,
        check_theta(theta),
        data.log_sqft,
        data.bathrooms,
        data.family_size,
        data.outdoor,
        data.choice,
        data.draws,
    )


def standard_errors(theta, data: MixedLogitData) -> pd.DataFrame:
    r"""Standard errors of ``theta`` three ways, beside the estimate and the truth.

    * Hessian: :math:`\sqrt{\mathrm{diag}(H^{-1})}`, ``H = jax.hessian`` of the total -LL;
    * BHHH / outer product of gradients: :math:`\sqrt{\mathrm{diag}(B^{-1})}`,
      :math:`B = \sum_i s_i s_i'` with analytic per-consumer scores;
    * sandwich (robust): :math:`\sqrt{\mathrm{diag}(H^{-1} B H^{-1})}`.

    The Hessian must be positive definite at ``theta`` (a local minimum);
    otherwise ``ValueError`` says so.
    """
    data = _check_data(data)
    theta = check_theta(theta)
    dev = jax.device_put(data)
    h = np.asarray(jax.jit(jax.hessian(neg_loglik))(theta, dev))
    eig = np.linalg.eigvalsh(h)
    if eig[0] <= 0:
        raise ValueError(
            f"the Hessian at theta is not positive definite (smallest eigenvalue {eig[0]:.3g}): "
            "theta is not a local minimum, so Hessian-based standard errors are meaningless"
        )
    s = np.asarray(jax.jit(scores_analytic)(theta, dev))
    b = s.T @ s
    h_inv = np.linalg.inv(h)
    return pd.DataFrame(
        {
            "estimate": theta,
            "true": data.theta_true,
            "se_hessian": np.sqrt(np.diag(h_inv)),
            "se_bhhh": np.sqrt(np.diag(np.linalg.inv(b))),
            "se_sandwich": np.sqrt(np.diag(h_inv @ b @ h_inv)),
        },
        index=list(PARAM_NAMES),
    )
