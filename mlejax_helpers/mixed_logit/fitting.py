r"""Fitting a :class:`~.model.MixedLogit`: :func:`fit` and the one compiled program it runs.

Each evaluation runs one program (:func:`evaluation_program`) that returns the -LL, its
gradient and the BHHH matrix :math:`S'S` of the per-person scores together, the persons split
over a mesh of devices (one device by default) with each device's sums added by one
``psum``. scipy drives the optimisation, or the device loop (:mod:`.device_loop`) runs all of
it in one program; BFGS starts from the inverse BHHH matrix;
``success`` is the convergence test of :mod:`.diagnostics`; the exact Hessian for
standard errors is forward mode over the analytic gradient, timed apart.
"""

from __future__ import annotations

import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from scipy.optimize import minimize

from .._validate import as_float_array, as_vector, positive_int, positive_number
from ..config import require_x64
from . import device_loop
from .diagnostics import convergence, require_optimum, unidentified
from .model import MixedLogit, default_start
from .panel import _check, _per_person, _person_loglik, _person_scores, block_size
from .panel_data import PANEL_DRAW_KINDS, PanelArrays, PanelData, panel_draws
from .results import Result
from .sharding import AXIS, consumer_mesh, to_host


class Remembered:
    """``fn(theta)`` that returns its last result again for the same ``theta`` (so the BHHH
    start's evaluation also serves scipy's first call); ``forget()`` drops it."""

    def __init__(self, fn):
        self.fn, self.theta, self.out = fn, None, None

    def __call__(self, theta):
        theta = np.asarray(theta, dtype=float)
        if self.theta is None or not np.array_equal(theta, self.theta):
            self.theta, self.out = theta.copy(), self.fn(theta)
        return self.out

    def forget(self):
        self.theta = None


class Counted:
    """``fn`` with a count of its calls (``calls``)."""

    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, *args):
        self.calls += 1
        return self.fn(*args)


def finite_outcome(success, message, theta, total) -> tuple[bool, str]:
    """``success`` and ``message``, with success withdrawn for a non-finite optimum."""
    if np.isfinite(total) and np.all(np.isfinite(theta)):
        return bool(success), str(message)
    return False, f"non-finite optimum (-LL = {total}, theta = {theta}); scipy said: {message}"


def bhhh_start(a, names, remedy: str) -> np.ndarray:
    """The inverse of ``a``, symmetrised (scipy's BFGS checks that ``hess_inv0`` is symmetric).

    With ``a = S'S / N``, the BHHH approximation of the average -LL's Hessian
    from the per-consumer scores ``S``, this is BFGS's BHHH start (as in xlogit).
    A singular ``a`` (some parameter's scores all zero, or collinear) is refused with
    the names of the parameters that are not identified at the start, and ``remedy``.
    """
    a = np.asarray(a, dtype=float)
    lost = unidentified(a, names)
    if lost or not np.all(np.isfinite(a)):
        raise ValueError(
            f"BFGS's BHHH start needs a nonsingular S'S, but at theta0 parameter(s) {lost} have "
            "scores that are zero or collinear (not identified by these data, or a degenerate "
            f"start such as a zero standard deviation): {remedy}"
        )
    h = np.linalg.inv(a)
    return 0.5 * (h + h.T)


def mnl_start(model: MixedLogit, data: PanelData) -> np.ndarray:
    """xlogit's default start: the multinomial logit estimate (every coefficient fixed,
    fitted with the same code and one empty draw) for the means, and 0.1 for every
    standard deviation (Cholesky diagonal)."""
    fixed = MixedLogit(model.attributes)
    mnl = fit(fixed, data, draws=np.zeros((data.n_persons, 1, 0)), se=False)
    if not mnl.success:
        raise RuntimeError(f"the multinomial logit start did not converge: {mnl.message}")
    return np.r_[mnl.theta, default_start(model)[len(model.attributes) :]]


def _draws(model, data, n_draws, draws, seed):
    """``(draws array, specification)`` for :func:`fit`."""
    if isinstance(draws, str):
        if draws not in PANEL_DRAW_KINDS:
            raise ValueError(f"draws must be one of {PANEL_DRAW_KINDS} or an array, got {draws!r}")
        if n_draws is None:
            raise ValueError(f"n_draws is needed with draws={draws!r}: how many per person?")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        array = panel_draws(data.n_persons, n_draws, len(model.random), draws, seed)
        return array, {"kind": draws, "n_draws": int(n_draws), "seed": int(seed)}
    if seed != 0:
        raise ValueError(f"seed={seed!r} has no use with draws given as an array: leave it out")
    array = as_float_array(draws, "draws", ndim=3)
    if array.shape[1] < 1:
        raise ValueError(f"draws must hold at least one draw per person, got shape {array.shape}")
    if n_draws is not None and array.shape[1] != n_draws:
        raise ValueError(f"n_draws={n_draws} but the draws given have {array.shape[1]} per person")
    return array, {"kind": "array", "n_draws": int(array.shape[1]), "seed": None}


def _start(model, data, start):
    """The start vector: ``None`` (default), ``"mnl"``, a vector in ``param_names`` order,
    or a dict or Series keyed by parameter name (reordered, every name needed)."""
    names = model.param_names
    if start is None:
        return default_start(model)
    if isinstance(start, str):
        if start != "mnl":
            raise ValueError(f"start must be a vector, None or 'mnl', got {start!r}")
        return mnl_start(model, data)
    if isinstance(start, (dict, pd.Series)):
        keys = set(dict(start))
        if keys != set(names):
            raise ValueError(
                f"start names {sorted(keys - set(names))} unknown, {sorted(set(names) - keys)} "
                f"missing: a start by name needs exactly the model's {names}"
            )
        start = [dict(start)[n] for n in names]
    return as_vector(start, "start", len(names))


@functools.lru_cache(maxsize=64)
def evaluation_program(model: MixedLogit, mesh: Mesh, gradient: str):
    """``jit((theta, arrays, draws, weight) -> (-LL, gradient, S'S))``: one pass over the
    persons, split over ``mesh`` (``shard_map``; a mesh of one device is the whole panel),
    each device's sums added by one ``psum``. ``S'S`` is the BHHH matrix of the per-person
    scores ``S``; zero-weight persons are padding. With ``gradient="autodiff"`` it returns
    ``(-LL, gradient)`` by ``jax.value_and_grad`` instead. Compiled once per model, mesh
    and shapes."""

    def local(theta, arrays, draws, weight):
        if gradient == "autodiff":  # (-LL, gradient) only: S'S comes from the analytic one

            def nll(t):  # the total over every device: its gradient is summed once
                own = -jnp.sum(weight * _per_person(_person_loglik, t, model, arrays, draws)[0])
                return jax.lax.psum(own, AXIS)

            # not psum(value_and_grad(own sum)): theta is replicated, so shard_map's autodiff
            # already sums the gradient over the devices, and a psum would add it D times
            return jax.value_and_grad(nll)(theta)
        log_l, s = _per_person(_person_scores, theta, model, arrays, draws)
        s = s * weight[:, None]
        return jax.lax.psum((-jnp.sum(weight * log_l), -jnp.sum(s, axis=0), s.T @ s), AXIS)

    split = P(AXIS)
    specs = (P(), split, split, split)
    return jax.jit(jax.shard_map(local, mesh=mesh, in_specs=specs, out_specs=P()))


@functools.lru_cache(maxsize=64)
def _hessian(model: MixedLogit, mesh: Mesh):
    """The exact Hessian of the -LL: forward mode over the analytic gradient of
    :func:`evaluation_program` (about twice as fast to compile and run as ``jax.hessian``'s
    forward-over-reverse through the blocks of persons)."""
    program = evaluation_program(model, mesh, "analytic")
    return jax.jit(jax.jacfwd(lambda theta, *rest: program(theta, *rest)[1]))


def place_persons(arrays, draws, mesh: Mesh):
    """``(arrays, draws, weight)`` on ``mesh``, persons split along its axis, padded with
    zero-weight copies of the first person (never dropped) to whole blocks of
    :func:`~.panel.block_size` on every device, so that ``lax.map`` compiles one body."""
    n, t, j = arrays.dx.shape[:3]
    local = -(-n // mesh.size)  # persons per device
    block = block_size(local, t, j, draws.shape[1])
    pad = mesh.size * block * -(-local // block) - n  # every device: whole blocks

    def padded(a):
        a = np.asarray(a)
        return np.concatenate([a, np.repeat(a[:1], pad, axis=0)]) if pad else a

    placed = (PanelArrays(*map(padded, arrays)), padded(draws), np.r_[np.ones(n), np.zeros(pad)])
    return jax.device_put(placed, NamedSharding(mesh, P(AXIS)))


def _objective(model, arrays, draws, gradient, mesh):
    """``(fun, triple, placed)``: scipy's ``fun(theta) -> (-LL, gradient)``, the remembered
    ``triple(theta) -> (-LL, gradient, S'S)`` (so that the BHHH start and the convergence
    test reuse scipy's evaluations) and the data on the mesh."""
    placed = place_persons(arrays, draws, mesh)
    program = evaluation_program(model, mesh, "analytic")
    triple = Remembered(lambda th: tuple(to_host(x) for x in program(th, *placed)))
    if gradient == "analytic":
        return lambda th: (float(triple(th)[0]), triple(th)[1]), triple, placed
    autodiff = evaluation_program(model, mesh, "autodiff")

    def fun(th):
        value, grad = autodiff(th, *placed)
        return float(to_host(value)), to_host(grad)

    return fun, triple, placed


def fit(
    model: MixedLogit,
    data: PanelData,
    *,
    n_draws=None,
    draws="halton",
    seed=0,
    start=None,
    method="L-BFGS-B",
    gradient="analytic",
    gtol=1e-6,
    ftol=1e-10,
    maxiter=2000,
    se=True,
    mesh="auto",
) -> Result:
    """Fit ``model`` to ``data`` by simulated maximum likelihood; returns a :class:`Result`.

    ``draws``: ``"halton"`` (scrambled, the default for research), ``"pseudo"`` or
    ``"xlogit-halton"`` (xlogit's own sequence, for comparisons), ``n_draws`` per person
    and ``seed``; or an array ``(P, R, K_r)`` of standard normal draws. ``start``: a
    vector in ``model.param_names`` order, ``None`` (zero means, 0.1 standard
    deviations) or ``"mnl"`` (xlogit's default: the multinomial logit estimate).
    ``method``: ``"L-BFGS-B"`` (xlogit's stopping rule: ``ftol`` 1e-10, ``gtol`` 1e-6 on
    the total gradient), ``"BFGS"`` (from the inverse BHHH matrix at the start) or
    ``"device"`` (the same BFGS with the whole loop one compiled program, stopping on the
    convergence test itself: :mod:`.device_loop`; analytic gradient only; ``gtol`` and
    ``ftol`` are scipy's and unused).
    ``gradient``: ``"analytic"`` (the per-person scores, one program with the value) or
    ``"autodiff"``. ``se``: compute the Hessian and the BHHH matrix for standard errors
    (timed apart, ``se_s``) when the fit converged. ``mesh``
    (:func:`~.sharding.consumer_mesh`): the devices the persons are split over, one
    program on each with the sums added. ``"auto"`` (the default) is every device JAX
    sees: on a CPU one device, unless :func:`~mlejax_helpers.config.cpu_devices` asked
    for one per core before JAX started (measured faster on chapter 8's model, chapter
    9). ``None`` is the mesh of one device, the same code path: the off switch.
    """
    require_x64()
    if not isinstance(model, MixedLogit):
        hint = (
            ": chapter 6's data; fit it with mlejax_helpers.apartments.fit(data), or build "
            "the one model with apartments.to_mixed_logit(data)"
            if type(model).__name__ == "MixedLogitData"
            else ""
        )
        raise TypeError(f"model must be a MixedLogit, got {type(model).__name__}{hint}")
    for value, name, allowed in (
        (method, "method", ("L-BFGS-B", "BFGS", "device")),
        (gradient, "gradient", ("analytic", "autodiff")),
    ):
        if value not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    if method == "device" and gradient != "analytic":
        raise ValueError("method='device' runs the analytic program: leave gradient='analytic'")
    gtol, ftol = positive_number(gtol, "gtol"), positive_number(ftol, "ftol")
    maxiter = positive_int(maxiter, "maxiter")
    if not isinstance(data, PanelData):
        raise TypeError(f"data must be a PanelData (build it with from_long), got {data!r:.60}")
    if mesh is None or (isinstance(mesh, str) and mesh == "auto"):
        mesh = consumer_mesh(None if mesh == "auto" else jax.devices()[:1])
    elif not isinstance(mesh, Mesh) or mesh.axis_names != (AXIS,):
        raise TypeError(
            f"mesh must be 'auto', None or a Mesh with the one axis {AXIS!r} (see "
            f"consumer_mesh), got {mesh!r:.60}"
        )
    draws, spec = _draws(model, data, n_draws, draws, seed)
    theta0, arrays = _check(model, data, draws, _start(model, data, start))
    theta0 = np.asarray(theta0, dtype=float)
    t0 = time.perf_counter()
    fun, triple, placed = _objective(model, arrays, draws, gradient, mesh)
    if method == "device":
        x, value, grad, bhhh, said, nit, nfev, compile_s, run_s = _device(
            model, mesh, placed, theta0, data.n_persons, maxiter, t0
        )
    else:
        x, said, nit, nfev, compile_s, run_s = _scipy(
            fun, triple, theta0, model, t0, method, gtol, ftol, maxiter
        )
        value, grad, bhhh = triple(x)  # scipy's last evaluation is usually at x
    success, message, crit = convergence(grad, bhhh, model.param_names, said)
    success, message = finite_outcome(success, message, x, float(value))
    t0 = time.perf_counter()
    curvature = _curvature(model, mesh, placed, x, grad, bhhh, success, message, se)
    return Result(
        model, np.asarray(x, float), success, message, -float(value), data.n_situations,
        data.n_persons, nit, nfev, crit, compile_s, run_s,
        time.perf_counter() - t0, method, spec, *curvature, data.fingerprint,
        data.persons_fingerprint, data.choices_fingerprint, data.attribute_fingerprints,
        mesh.size,
    )  # fmt: skip


def refit_sign_flips(model: MixedLogit, data: PanelData, result: Result, **options) -> Result:
    """A search over the sign patterns of the standard deviations, from ``result``: each
    round refits from the best fit so far with one standard deviation's sign flipped, each
    in turn, and moves to the best converged refit if it beats the best so far by more
    than ``1e-6 |log L|`` (less is convergence noise, the tie of chapter 8); the rounds
    stop when no single flip is better. Each move improves, so no pattern is visited
    twice. Returns the best fit found (``result`` itself when no refit beat it, converged
    or not). A standard deviation's sign is not identified, but on asymmetric draws each
    sign pattern is an optimum of its own (chapter 8). The search is local: from two
    starts it can end in two patterns. ``data`` and ``options`` (as for :func:`fit`) must
    be the data and the draws that gave ``result``, so that every value compared is of
    one objective (refused otherwise; an array of draws is checked by its size only)."""
    if not isinstance(result, Result):
        raise TypeError(f"result must be a Result (from fit), got {type(result).__name__}")
    if result.model != model:
        raise ValueError(f"result was fitted with another model: {result.model}, not {model}")
    if model.correlated:
        raise ValueError(
            "refit_sign_flips flips standard deviations; a correlated model's Cholesky "
            "factor has none to flip (start from result.theta with a column of L negated)"
        )
    if not isinstance(data, PanelData) or data.fingerprint != result.data_fingerprint:
        raise ValueError("data is not the data result was fitted to: pass that data")
    get = options.get
    spec = _draws(model, data, get("n_draws"), get("draws", "halton"), get("seed", 0))[1]
    if spec != result.draws:
        raise ValueError(
            f"options give other draws ({spec}) than result's ({result.draws}): pass the "
            "n_draws, draws and seed of the fit being searched"
        )
    sds = [k for k, name in enumerate(model.param_names) if name.startswith("sd.")]
    best = result
    while sds:  # a better sign pattern each round, or stop
        fits = [fit(model, data, **{**options, "start": _flipped(best.theta, k)}) for k in sds]
        bar = best.loglik + 1e-6 * abs(best.loglik)
        better = [f for f in fits if f.success and f.loglik > bar]
        if not better:
            return best
        best = max(better, key=lambda f: f.loglik)
    return best


def _flipped(theta, k) -> np.ndarray:
    """``theta`` with entry ``k`` negated."""
    out = np.array(theta, dtype=float)
    out[k] = -out[k]
    return out


def _device(model, mesh, placed, theta0, n, maxiter, t0):
    """The device loop (:mod:`.device_loop`) from ``theta0``: ``(x, -LL, gradient, S'S,
    message, nit, nfev, compile_s, run_s)``, ``compile_s`` counted from ``t0`` (placing
    the data included)."""
    program = evaluation_program(model, mesh, "analytic")
    state, _, run_s = device_loop.solve(program, placed, theta0, n, maxiter)
    compile_s = time.perf_counter() - t0 - run_s
    x, value, grad, bhhh = device_loop.totals(state, n)
    said = device_loop.outcome(state, n, maxiter)
    return x, value, grad, bhhh, said, int(state.nit), int(state.nfev), compile_s, run_s


def _scipy(fun, triple, theta0, model, t0, method, gtol, ftol, maxiter):
    """scipy's ``minimize`` from ``theta0`` (its first evaluation, the compilation, counted
    from ``t0``): ``(x, message, nit, nfev, compile_s, run_s)``."""
    fun(theta0)
    options = {"gtol": gtol, "maxiter": maxiter}
    if method == "BFGS":
        options["hess_inv0"] = bhhh_start(
            triple(theta0)[2],
            model.param_names,
            "pass another start=, drop the parameter, or use method='L-BFGS-B'",
        )
    else:
        options["ftol"] = ftol
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    counted = Counted(fun)
    res = minimize(counted, theta0, jac=True, method=method, options=options)
    return res.x, res.message, int(res.nit), counted.calls, compile_s, time.perf_counter() - t0


def _curvature(model, mesh, placed, theta, grad, bhhh, success, message, se):
    """``(hessian, bhhh, cov_error)`` at the estimate: the matrices for standard errors, or
    ``None`` and the reason there are none (see :func:`~.diagnostics.require_optimum`)."""
    if not se:
        return None, None, "not computed (se=False)"
    if not success:
        return None, None, f"the fit did not converge ({message})"
    h = to_host(_hessian(model, mesh)(jnp.asarray(theta), *placed))
    h = 0.5 * (h + h.T)
    try:
        require_optimum(grad, h, model.param_names)
    except ValueError as exc:
        return None, None, str(exc)
    return h, bhhh, None
