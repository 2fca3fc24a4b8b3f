"""Estimation of the mixed logit: ``fit`` and its peers, and three kinds of standard errors.

:func:`fit` reads in four steps: check every option before any work
(:func:`check_fit_options`), build the objective scipy will see, one small
builder per kind of gradient (:func:`objective`), warm it up (compilation),
then run ``scipy.optimize.minimize`` and report (:class:`FitResult`).
:func:`fit_pandas` and :func:`fit_jax_loop` are the two estimators the
benchmark times beside it: the pandas first attempt and the whole BFGS loop
compiled by JAX.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.optimize
import numpy as np
import pandas as pd
from jax.sharding import Mesh
from scipy.optimize import minimize

from .._validate import positive_int, positive_number
from ..config import require_x64
from ..derivatives import hvp
from ..mixed_logit.diagnostics import convergence, require_optimum
from ..mixed_logit.fitting import Counted, Remembered, bhhh_start, finite_outcome
from ..mixed_logit.sharding import consumer_mesh, to_host
from .data import PARAM_NAMES, MixedLogitData, check_data, check_theta
from .likelihood import (
    default_chunk,
    grad_analytic,
    grad_analytic_numpy,
    log_p_and_scores,
    neg_loglik,
    neg_loglik_chunked,
    neg_loglik_numpy,
    neg_loglik_pandas,
    scores_analytic,
    scores_analytic_numpy,
    to_long_dataframe,
    value_and_grad_analytic_chunked,
)
from .placement import shard

GRADIENTS = (
    "finite-differences",
    "analytic",
    "analytic-numpy",
    "analytic-fused",
    "autodiff",
    "autodiff-fused",
)
METHODS = (
    "BFGS",
    "CG",
    "L-BFGS-B",
    "TNC",
    "SLSQP",
    "Newton-CG",
    "trust-krylov",
    "trust-ncg",
    "trust-exact",
)
SECOND_ORDER = ("Newton-CG", "trust-krylov", "trust-ncg", "trust-exact")
INITS = ("auto", "identity", "bhhh")
THETA_START = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 1.0])


@dataclass(frozen=True)
class FitResult:
    """What :func:`fit` returns. ``neg_loglik`` is the total ``-sum_i log P_i`` at ``theta``.

    ``compile_s`` is the wall time of the warm-up calls (tracing, compiling and
    one evaluation of each function handed to scipy); ``run_s`` the wall time of
    the optimisation alone. ``nfev`` counts every evaluation of the objective
    during the run, those made for finite-difference gradients included;
    ``njev`` is scipy's count of gradient calls. ``success`` is never true for a
    non-finite optimum.
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


class FitOptions(NamedTuple):
    """The checked options of one fit (see :func:`check_fit_options`)."""

    gradient: str
    jit: tuple[bool, bool]
    method: str
    gtol: float
    maxiter: int
    init: str
    chunk: int | None
    mesh: Mesh


def _one_of(value, name, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def _jit_flags(jit) -> tuple[bool, bool]:
    if isinstance(jit, bool):
        return jit, jit
    if isinstance(jit, (tuple, list)) and len(jit) == 2 and all(isinstance(f, bool) for f in jit):
        return tuple(jit)
    raise TypeError(f"jit must be a bool or a pair (jit_loglik, jit_grad) of bools, got {jit!r}")


def check_fit_options(data, gradient, jit, method, gtol, maxiter, init, chunk, mesh=None):
    """Check every option of :func:`fit` before any work; reject combinations that cannot work.

    Returns a :class:`FitOptions`; ``mesh=None`` becomes the mesh of one (the first) device.
    """
    _one_of(gradient, "gradient", GRADIENTS)
    _one_of(method, "method", METHODS)
    _one_of(init, "init", INITS)
    jit = _jit_flags(jit)
    if init == "auto":
        init = "bhhh" if method == "BFGS" else "identity"
    if init == "bhhh" and method != "BFGS":
        raise ValueError(
            f"init='bhhh' sets BFGS's first inverse Hessian: needs method='BFGS', got {method!r}"
        )
    if gradient == "finite-differences" and method in SECOND_ORDER:
        raise ValueError(
            f"method={method!r} needs Hessian(-vector) products; with finite differences they "
            "would be differences of a differenced gradient, too inaccurate for Newton steps: "
            "use gradient='autodiff' or 'analytic'"
        )
    if mesh is None:
        mesh = consumer_mesh(jax.devices()[:1])
    elif not isinstance(mesh, Mesh):
        raise TypeError(f"mesh must be a jax.sharding.Mesh (see consumer_mesh), got {mesh!r}")
    if gradient == "analytic-numpy" and mesh.size > 1:
        raise ValueError("gradient='analytic-numpy' runs on the host: it takes no mesh")
    if mesh.size > 1 and chunk not in ("auto", None):
        raise ValueError(
            f"chunk applies to one device only; with {mesh.size} devices each holds "
            f"N / {mesh.size} consumers: pass chunk=None, got {chunk!r}"
        )
    if gradient == "analytic-numpy":
        if chunk not in ("auto", None):
            raise ValueError(
                f"chunk applies to the JAX paths only; gradient='analytic-numpy' "
                f"needs chunk='auto' or None, got {chunk!r}"
            )
        if method in SECOND_ORDER:
            raise ValueError(
                f"method={method!r} needs Hessian-vector products from JAX; "
                "gradient='analytic-numpy' has none: use 'analytic' instead"
            )
        jit, chunk = (False, False), None
    elif chunk == "auto":
        chunk = default_chunk(data) if mesh.size == 1 else None
    elif chunk is not None:
        chunk = positive_int(chunk, "chunk")
    gtol, maxiter = positive_number(gtol, "gtol"), positive_int(maxiter, "maxiter")
    return FitOptions(gradient, jit, method, gtol, maxiter, init, chunk, mesh)


class Objective(NamedTuple):
    r"""What scipy is handed, each a function of ``theta`` only, on the *average* -LL.

    ``fun`` returns the value, or ``(value, gradient)`` when ``jac is True``;
    ``jac`` is a gradient function, ``True`` or ``None`` (scipy's forward
    differences). ``hessp``/``hess`` are set for second-order methods only.
    ``opg`` gives the ``(6, 6)`` outer product of the per-consumer scores
    :math:`\sum_i s_i s_i'` (for BHHH), ``total`` the total -LL, ``n`` the number of
    consumers. ``forget`` drops a remembered evaluation (see :class:`Remembered`);
    ``check`` gives ``(total gradient, S'S)`` for the convergence test after the fit.
    """

    fun: Callable
    jac: Callable | bool | None
    hessp: Callable | None
    hess: Callable | None
    opg: Callable
    total: Callable
    n: int
    forget: Callable = lambda: None
    check: Callable | None = None


def _numpy_objective(data, opts, scale) -> Objective:
    def total(th):
        return neg_loglik_numpy(th, data)

    def jac(th):
        return grad_analytic_numpy(th, data) * scale

    def opg(th):
        s = scores_analytic_numpy(th, data)
        return s.T @ s

    def check(th):
        return grad_analytic_numpy(th, data), opg(th)

    return Objective(
        lambda th: total(th) * scale, jac, None, None, opg, total, data.shape[0], check=check
    )


def _kernels(chunk):
    """``(nll, grad)`` of ``(theta, data, weight)``: the analytic gradient whole, or
    ``chunk`` consumers at a time (one device, no padding: weight unused)."""
    if chunk is None:
        return neg_loglik, grad_analytic
    return (
        lambda th, d, w: neg_loglik_chunked(th, d, chunk),
        lambda th, d, w: value_and_grad_analytic_chunked(th, d, chunk)[1],
    )


def value_grad_opg(chunk):
    """``(theta, data, weight) -> (-LL, gradient, S'S)``: the value, the analytic gradient
    and the ``(6, 6)`` BHHH matrix of the per-consumer scores ``S`` from one pass over the
    data, so that one compiled program serves BFGS and its BHHH start."""

    def fn(theta, data, weight):
        log_p, s = log_p_and_scores(theta, data, chunk, weight)
        return -jnp.sum(log_p), -jnp.sum(s, axis=0), s.T @ s

    return fn


def _jax_objective(data, opts) -> Objective:
    placed = shard(data, opts.mesh)  # the consumers split over the mesh (one device: whole)
    scale = 1.0 / placed.n
    nll, grad = _kernels(opts.chunk)
    jit_f, jit_g = opts.jit

    def on_data(fn, flag, post=to_host):  # theta -> post(fn(theta, data, weight))
        fn = jax.jit(fn) if flag else fn
        return lambda th, *rest: post(fn(th, *rest, placed.data, placed.weight))

    def scaled(fn):
        return lambda *args: fn(*args) * scale

    total = on_data(nll, jit_f, lambda x: float(to_host(x)))
    fun, jac, hessp, hess = scaled(total), None, None, None
    host = lambda out: tuple(to_host(x) for x in out)  # noqa: E731
    # value, gradient and S'S from one program: the fused path's objective, the BHHH start
    # and the convergence test after every fit
    vgo = Remembered(on_data(value_grad_opg(opts.chunk), jit_f or jit_g, host))
    opg = lambda th: vgo(th)[2]  # noqa: E731
    if opts.gradient in ("analytic", "autodiff"):
        jac = scaled(on_data(grad if opts.gradient == "analytic" else jax.grad(nll), jit_g))
    elif opts.gradient == "autodiff-fused":
        host2 = lambda out: (float(to_host(out[0])), to_host(out[1]))  # noqa: E731
        fun, jac = _fused(on_data(jax.value_and_grad(nll), jit_f or jit_g, host2), scale), True
    elif opts.gradient == "analytic-fused":
        fun, jac = _fused(lambda th: (float(vgo(th)[0]), vgo(th)[1]), scale), True
        total = lambda th: float(vgo(th)[0])  # noqa: E731  (at the optimum: the last evaluation)
    if opts.method == "trust-exact":  # scipy's trust-exact needs the Hessian matrix itself
        hess = scaled(on_data(jax.hessian(nll), True))
    elif opts.method in SECOND_ORDER:
        hessp = scaled(on_data(lambda th, p, d, w: hvp(lambda t: nll(t, d, w), th, p), True))
    return Objective(
        fun, jac, hessp, hess, opg, total, placed.n, vgo.forget, lambda th: vgo(th)[1:]
    )


def _fused(vg, scale):
    def fun(th):
        value, grad = vg(th)
        return value * scale, grad * scale

    return fun


def objective(data, opts: FitOptions) -> Objective:
    """The objective for ``opts``: NumPy for ``analytic-numpy``, JAX for every other gradient.

    Everything is divided by ``N`` so that ``gtol`` means the same for any
    sample size: ``max|grad| <= gtol`` per consumer.
    """
    if opts.gradient == "analytic-numpy":
        return _numpy_objective(data, opts, 1.0 / data.shape[0])
    return _jax_objective(data, opts)


def _warm_up(obj: Objective, theta0, init) -> float:
    """Call every function scipy will use once (for JAX: trace and compile); return seconds."""
    t0 = time.perf_counter()
    obj.fun(theta0)
    if callable(obj.jac):
        obj.jac(theta0)
    if obj.hessp is not None:
        obj.hessp(theta0, np.ones_like(theta0))
    if obj.hess is not None:
        obj.hess(theta0)
    if init == "bhhh":
        obj.opg(theta0)
    obj.forget()  # the timed run evaluates theta0 afresh
    return time.perf_counter() - t0


def _scipy_options(opts: FitOptions) -> dict:
    gtol, maxiter = opts.gtol, opts.maxiter
    return {
        "L-BFGS-B": {"gtol": gtol, "ftol": 1e-15, "maxiter": maxiter},
        "TNC": {"gtol": gtol, "ftol": 0.0, "xtol": 0.0, "maxfun": 20 * maxiter},
        "Newton-CG": {"xtol": 1e-10, "maxiter": maxiter},
        "SLSQP": {"ftol": 1e-14, "maxiter": maxiter},
    }.get(opts.method, {"gtol": gtol, "maxiter": maxiter})


def fit(
    data,
    theta0=None,
    *,
    gradient="analytic-fused",
    jit=True,
    method="BFGS",
    gtol=1e-6,
    maxiter=1000,
    init="auto",
    chunk="auto",
    mesh=None,
) -> FitResult:
    """Estimate ``theta`` by ``scipy.optimize.minimize`` on the *average* negative log-likelihood.

    ``gradient``: ``"finite-differences"`` (scipy's forward differences),
    ``"analytic"`` (:func:`grad_analytic`, JAX), ``"analytic-numpy"`` (NumPy
    function and gradient; ``jit`` does not apply and is reported as off),
    ``"analytic-fused"`` (:func:`value_and_grad_analytic`, value and gradient in
    one call), ``"autodiff"`` (``jax.grad``) or ``"autodiff-fused"`` (one
    ``jax.value_and_grad`` call per iteration). ``jit`` is a bool or a pair
    ``(jit_loglik, jit_grad)``. ``method`` is one of :data:`METHODS`;
    second-order methods get exact Hessian-vector products (``trust-exact`` the
    exact Hessian) from JAX.

    ``init="bhhh"`` (BFGS only) starts BFGS from the inverse of the BHHH matrix
    at ``theta0`` (outer product of the per-consumer scores, as xlogit does);
    computing it is part of the timed run. ``init="identity"`` starts from scipy's
    identity matrix; ``"auto"`` (the default) is ``"bhhh"`` for BFGS, else identity.
    The defaults, the fused analytic value and gradient with the BHHH start, are the
    fastest path in the head-to-head records (``results/bench-cpu-headtohead.jsonl``);
    the other gradients are there to be compared. ``chunk`` (JAX paths): consumers per
    chunk, so memory stays bounded by ``chunk * J * R`` elements; ``"auto"``
    chunks only when ``N * J * R`` exceeds ``CHUNK_ELEMENTS``, ``None`` never.

    ``mesh`` (:func:`~mlejax_helpers.mixed_logit.sharding.consumer_mesh`): the devices
    the consumers are split over; ``None`` is the mesh of one device, the same code path.
    With several processes (``jax.distributed``), each passes only its own consumers in
    ``data`` and every process gets the same estimate.
    """
    data = check_data(data)
    require_x64()
    theta0 = THETA_START.copy() if theta0 is None else check_theta(theta0)
    opts = check_fit_options(data, gradient, jit, method, gtol, maxiter, init, chunk, mesh)
    obj = objective(data, opts)
    compile_s = _warm_up(obj, theta0, opts.init)
    counted = Counted(obj.fun)
    options = _scipy_options(opts)
    t0 = time.perf_counter()
    if opts.init == "bhhh":
        options["hess_inv0"] = bhhh_start(
            obj.opg(theta0) / obj.n,
            PARAM_NAMES,
            "change theta0, drop the parameter, or start from the identity (init='identity')",
        )
    res = minimize(
        counted,
        theta0,
        jac=obj.jac,
        method=opts.method,
        options=options,
        **{k: v for k, v in (("hessp", obj.hessp), ("hess", obj.hess)) if v},
    )
    run_s = time.perf_counter() - t0
    theta_hat = np.asarray(res.x, dtype=float)
    total = obj.total(theta_hat)
    success, message = checked(theta_hat, total, *obj.check(theta_hat), res.message)
    return FitResult(
        theta_hat,
        total,
        int(res.get("nit", -1)),
        counted.calls,
        int(res.get("njev", -1)),
        success,
        message,
        compile_s,
        run_s,
        opts.gradient,
        opts.jit,
        opts.method,
        opts.init,
    )


def checked(theta, total, grad, opg, optimiser_message, names=PARAM_NAMES) -> tuple[bool, str]:
    """``(success, message)`` of a fit by the convergence test of
    :func:`~mlejax_helpers.mixed_logit.diagnostics.convergence` (``g'B^-1 g`` on the
    total gradient and ``B = S'S``), success withdrawn for a non-finite optimum."""
    success, message, _ = convergence(grad, opg, names, str(optimiser_message))
    return finite_outcome(success, message, theta, total)


def _numpy_check(theta, total, data, optimiser_message) -> tuple[bool, str]:
    if not np.all(np.isfinite(theta)):
        return finite_outcome(False, optimiser_message, theta, total)
    s = scores_analytic_numpy(theta, data)
    return checked(theta, total, -s.sum(axis=0), s.T @ s, optimiser_message)


def fit_pandas(data, theta0=None, *, gtol=1e-6) -> FitResult:
    """BFGS with scipy's finite differences on :func:`neg_loglik_pandas`: the slow first attempt."""
    data = check_data(data)
    theta0 = THETA_START.copy() if theta0 is None else check_theta(theta0)
    df, n = to_long_dataframe(data), data.shape[0]
    counted = Counted(lambda th: neg_loglik_pandas(th, df, data.draws) / n)
    t0 = time.perf_counter()
    res = minimize(counted, theta0, method="BFGS", options={"gtol": positive_number(gtol, "gtol")})
    run_s = time.perf_counter() - t0
    total = neg_loglik_numpy(res.x, data) if np.all(np.isfinite(res.x)) else np.nan
    success, message = _numpy_check(res.x, total, data, res.message)
    return FitResult(
        np.asarray(res.x),
        total,
        int(res.nit),
        counted.calls,
        int(res.njev),
        success,
        message,
        0.0,
        run_s,
        "finite-differences",
        (False, False),
        "BFGS",
    )


def fit_jax_loop(data, theta0=None, *, gtol=1e-6, maxiter=1000) -> FitResult:
    """The whole BFGS loop compiled: ``jax.scipy.optimize.minimize`` inside ``jax.jit``.

    ``compile_s`` is the first call's time less the second's; ``run_s`` the second call.
    """
    data = check_data(data)
    require_x64()
    theta0 = jnp.asarray(THETA_START if theta0 is None else check_theta(theta0))
    n = data.shape[0]
    options = {"gtol": positive_number(gtol, "gtol"), "maxiter": positive_int(maxiter, "maxiter")}

    @jax.jit
    def solve(th0, d):
        return jax.scipy.optimize.minimize(
            lambda t: neg_loglik(t, d) / n, th0, method="BFGS", options=options
        )

    dev = jax.device_put(data)
    t0 = time.perf_counter()
    jax.block_until_ready(solve(theta0, dev))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = jax.block_until_ready(solve(theta0, dev))
    run_s = time.perf_counter() - t0
    theta, total = np.asarray(res.x), float(res.fun) * n
    success, message = _numpy_check(theta, total, data, f"jax.scipy status {int(res.status)}")
    return FitResult(
        theta,
        total,
        int(res.nit),
        int(res.nfev),
        int(res.njev),
        success,
        message,
        max(first - run_s, 0.0),
        run_s,
        "autodiff",
        (True, True),
        "BFGS",
    )


def standard_errors(theta, data: MixedLogitData) -> pd.DataFrame:
    r"""Standard errors of ``theta`` three ways, beside the estimate and the truth.

    * Hessian: :math:`\sqrt{\mathrm{diag}(H^{-1})}`, ``H = jax.hessian`` of the total -LL;
    * BHHH / outer product of gradients: :math:`\sqrt{\mathrm{diag}(B^{-1})}`,
      :math:`B = \sum_i s_i s_i'` with analytic per-consumer scores;
    * sandwich (robust): :math:`\sqrt{\mathrm{diag}(H^{-1} B H^{-1})}`.

    Refused (``ValueError``) where they mean nothing: see
    :func:`~mlejax_helpers.mixed_logit.diagnostics.require_optimum` (identification, a
    positive definite Hessian, the convergence test).
    """
    data, theta = check_data(data), check_theta(theta)
    require_x64()
    dev = jax.device_put(data)
    h = np.asarray(jax.jit(jax.hessian(neg_loglik))(theta, dev))
    s = np.asarray(jax.jit(scores_analytic)(theta, dev))
    require_optimum(-s.sum(axis=0), h, PARAM_NAMES)
    cov = covariances(h, s)
    return pd.DataFrame(
        {
            "estimate": theta,
            "true": data.theta_true,
            **{f"se_{k}": np.sqrt(np.diag(v)) for k, v in cov.items()},
        },
        index=list(PARAM_NAMES),
    )


def covariances(hessian, scores) -> dict:
    r"""The estimate's covariance three ways, from the Hessian ``H`` ``(k, k)`` of the total
    -LL and the per-unit scores ``S`` ``(n, k)``, with :math:`B = S'S`: ``hessian``
    :math:`H^{-1}`, ``bhhh`` :math:`B^{-1}` and ``sandwich`` (robust)
    :math:`H^{-1} B H^{-1}`. ``ValueError`` unless ``H`` is positive definite (a
    local minimum); otherwise Hessian-based standard errors are meaningless."""
    h, s = np.asarray(hessian, dtype=float), np.asarray(scores, dtype=float)
    eig = np.linalg.eigvalsh(h)
    if eig[0] <= 0:
        raise ValueError(
            f"the Hessian at theta is not positive definite (smallest eigenvalue {eig[0]:.3g}): "
            "theta is not a local minimum, so Hessian-based standard errors are meaningless"
        )
    b, h_inv = s.T @ s, np.linalg.inv(h)
    return {"hessian": h_inv, "bhhh": np.linalg.inv(b), "sandwich": h_inv @ b @ h_inv}
