"""The benchmark suites: each is a list of :class:`Config`, one per measured row.

Every scipy configuration gets the same data (seed), draws, start
(``THETA_START``) and stopping rule (``gtol`` on the gradient of the *average*
negative log-likelihood), so rows differ only in what they name.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

BASE = {"n": 10_000, "j": 20, "r": 12}


@dataclass(frozen=True)
class Config:
    """One benchmark row.

    ``kind``: ``"mlejax"`` (``apartments.fit``, chapter 6's kernel), ``"pandas"`` (finite
    differences on the pandas likelihood), ``"xlogit"`` (``variant`` "defaults" or "ours":
    our start with L-BFGS-B) or ``"jax-loop"`` (the whole BFGS loop jitted,
    ``jax.scipy.optimize.minimize``) or ``"evaluation"`` (no fit: the median time
    of one jitted evaluation of the value and of each gradient). ``allocator`` is
    "default" or "jemalloc" (``LD_PRELOAD`` in the child). Rows with ``device="gpu"``
    are skipped on a machine without a GPU. ``cache`` ("", "cold" or "warm"): JAX's
    persistent compilation cache off, on in an empty folder, or on in a folder that
    another process filled by fitting the same configuration first. ``chunk`` ("" or
    "none"): ``fit``'s automatic chunking, or none. ``kind="device-loop"`` is
    the one estimator's ``method="device"`` (records before it existed: the former
    ``fit_on_device``); ``kind="one"`` is ``ml.fit(model, data)`` on chapter 6's model with
    ``solver`` as its ``method``; ``kind="panel"`` is ``ml.fit`` on chapter 8's electricity
    model (``solver="<method>+flips"``: then ``refit_sign_flips``), ``"panel-xlogit"`` and
    ``"panel-jaxlogit"`` the peers' fits. ``kind="panel-sharding"`` times the one estimator's
    program for chapter 8's model on a mesh of ``devices`` forced host devices against
    one device, interleaved in one process, then fits on the mesh.
    """

    suite: str
    kind: str
    n: int
    j: int
    r: int
    gradient: str = "autodiff"
    jit_loglik: bool = True
    jit_grad: bool = True
    solver: str = "BFGS"
    init: str = "identity"
    variant: str = ""
    draws: str = "pseudo"
    seed: int = 0
    gtol: float = 1e-6
    allocator: str = "default"
    device: str = "any"
    devices: int = 0
    cache: str = ""
    chunk: str = ""
    note: str = field(default="", compare=False)

    @property
    def label(self) -> str:
        if self.kind == "xlogit":
            return f"xlogit ({self.variant})"
        if self.kind == "pandas":
            return "pandas, finite differences"
        if self.kind == "jax-loop":
            return "jax.scipy BFGS, whole loop jitted"
        if self.kind == "one":
            return f"ml.fit(model, data), {self.solver}"
        if self.kind == "device-loop" and self.solver == "device":
            return "ml.fit(model, data), device"
        if self.kind == "device-loop":
            return "analytic-fused, BFGS from BHHH, whole loop on the device"
        if self.kind == "evaluation":
            return f"one evaluation each ({self.allocator} allocator)"
        if self.kind == "kernels":
            return "chapter 6's kernel against the general kernel"
        if self.kind == "panel-sharding":
            return f"one estimator's program, mesh of {self.devices} forced host device(s)"
        if self.kind == "panel-draws":
            return f"mlejax, {self.r} scrambled Halton draws, seed {self.seed}"
        if self.kind.startswith("panel"):
            tool = {"panel": f"mlejax ({self.gradient})", "panel-xlogit": "xlogit"}.get(
                self.kind, "jaxlogit"
            )
            solver = self.solver.replace("+flips", " + sign search")
            return f"{tool}, {solver}" + (", MNL start" if self.init == "mnl" else "")
        jit = {(True, True): "jit f+g", (True, False): "jit f", (False, True): "jit g"}.get(
            (self.jit_loglik, self.jit_grad), "no jit"
        )
        extra = f", init {self.init}" if self.init != "identity" else ""
        extra += f", {self.cache} cache" if self.cache else ""
        extra += ", unchunked" if self.chunk == "none" else ""
        return f"{self.gradient}, {jit}, {self.solver}{extra}"

    @property
    def key(self) -> str:
        """A stable hash of every field that changes what is measured."""
        d = asdict(self)
        d.pop("note")
        for added, unset in (
            ("devices", 0),
            ("cache", ""),
            ("chunk", ""),
        ):  # added later: older keys stay
            if d[added] == unset:
                d.pop(added)
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return asdict(self)


def _ml(suite, n=BASE["n"], j=BASE["j"], r=BASE["r"], **kw):
    return Config(suite, "mlejax", n, j, r, **kw)


def table1():
    """The paper's Table 1: gradient method x jit of the log-likelihood x jit of the gradient."""
    rows = [
        _ml("table1", gradient="finite-differences", jit_loglik=f, jit_grad=False)
        for f in (False, True)
    ]
    for g in ("analytic", "autodiff"):
        rows += [
            _ml("table1", gradient=g, jit_loglik=f, jit_grad=gr)
            for f in (False, True)
            for gr in (False, True)
        ]
    rows.append(
        Config(
            "table1",
            "pandas",
            BASE["n"],
            BASE["j"],
            BASE["r"],
            gradient="finite-differences",
            jit_loglik=False,
            jit_grad=False,
        )
    )
    return rows


TABLE2_SIZES = [
    (10_000, 20, 12),
    (50_000, 20, 12),
    (100_000, 20, 12),
    (10_000, 100, 12),
    (10_000, 500, 12),
    (10_000, 20, 50),
    (10_000, 20, 100),
]


XLOGIT_VARIANTS = ("defaults", "ours", "ours-bfgs")  # its own start + BFGS; ours + L-BFGS-B, BFGS


def table2():
    """The paper's Tables 2-3: vary N, J and R, every row on xlogit's Halton draws. The paper's
    three gradient methods (BFGS, identity start) unchunked, so the memory column measures them
    and not chunking; the reader's default ``fit`` (chunked where large) and the same path with
    the loop on the device; xlogit's three variants, standard errors skipped."""
    rows = []
    for n, j, r in TABLE2_SIZES:
        size = {"n": n, "j": j, "r": r, "draws": "xlogit-halton"}
        rows += [
            Config("table2", "mlejax", **size, gradient=g, chunk="none")
            for g in ("finite-differences", "analytic", "autodiff")
        ]
        rows += [
            Config("table2", "mlejax", **size, gradient="analytic-fused", init="bhhh"),
            Config("table2", "device-loop", **size, gradient="analytic-fused", init="bhhh"),
        ]
        rows += [Config("table2", "xlogit", **size, variant=v) for v in XLOGIT_VARIANTS]
    return rows


def table4():
    """The paper's Table 4: six scipy solvers x three gradient methods.

    Newton-CG with finite differences is left out: ``fit`` rejects it, since its
    Hessian-vector products would be differences of a differenced gradient.
    """
    return [
        _ml("table4", gradient=g, solver=s)
        for s in ("BFGS", "CG", "Newton-CG", "L-BFGS-B", "TNC", "SLSQP")
        for g in ("finite-differences", "analytic", "autodiff")
        if not (s == "Newton-CG" and g == "finite-differences")
    ]


def beyond():
    """Past the paper, at the base size on xlogit's draws: fused gradients, the BHHH start,
    second order, the whole loop jitted (jax.scipy's BFGS), allocators, one evaluation."""
    base = {**BASE, "draws": "xlogit-halton"}
    rows = []
    for alloc in ("default", "jemalloc"):
        rows += [
            Config("beyond", "mlejax", **base, gradient=g, init=i, allocator=alloc)
            for i in ("identity", "bhhh")
            for g in ("autodiff-fused", "analytic-fused")
        ]
        rows.append(Config("beyond", "evaluation", **base, allocator=alloc))
    rows += [
        Config("beyond", "mlejax", **base, gradient="autodiff-fused", solver="trust-krylov"),
        Config("beyond", "mlejax", **base, gradient="autodiff-fused", solver="Newton-CG"),
        Config("beyond", "jax-loop", **base, gradient="autodiff"),
        Config("beyond", "device-loop", **base, gradient="analytic-fused", init="bhhh"),
        _ml("beyond", 1_000_000, 20, 12, gradient="analytic-fused", init="bhhh", device="gpu"),
    ]
    return rows


def headtohead():
    """Issue 12: ours and xlogit on identical (xlogit's) draws from the same start, end to end."""
    rows = []
    for n in (10_000, 100_000):
        same = {"n": n, "j": 20, "r": 12, "draws": "xlogit-halton"}
        rows += [
            Config("headtohead", "mlejax", **same, gradient="analytic-fused", init="bhhh"),
            # fit(data)'s default when measured (autodiff, identity start; now analytic-fused, bhhh)
            Config("headtohead", "mlejax", **same),
            Config("headtohead", "xlogit", **same, variant="ours"),
            Config("headtohead", "xlogit", **same, variant="ours-bfgs"),
        ]
        rows.append(
            Config("headtohead", "device-loop", **same, gradient="analytic-fused", init="bhhh")
        )
        rows += [  # the fastest path again, with JAX's persistent compilation cache
            Config("headtohead", "mlejax", **same, gradient="analytic-fused", init="bhhh", cache=c)
            for c in ("cold", "warm")
        ]
    return rows


def onefit():
    """Issues 20 and 22: chapter 6's model through the one estimator, ``ml.fit(model, data)``
    (the apartments built by ``from_long`` inside the timed call), with each of its
    optimisers, against xlogit's default run and its two optimisers from our start, on
    identical (xlogit's) draws; every record has the tool's import time."""
    rows = []
    for n in (10_000, 100_000):
        same = {"n": n, "j": 20, "r": 12, "draws": "xlogit-halton"}
        rows += [Config("onefit", "one", **same, solver=m) for m in ("L-BFGS-B", "BFGS")]
        rows.append(Config("onefit", "device-loop", **same, solver="device"))
        rows += [Config("onefit", "xlogit", **same, variant=v) for v in ("defaults", "ours")]
        rows.append(Config("onefit", "xlogit", **same, variant="ours-bfgs"))
    return rows


def gpu():
    """Issue 12 on a GPU: N = 100,000 and 1,000,000 (J = 20, R = 12), the fastest path
    and the former default fit (autodiff, identity start), end to end (skipped without a GPU)."""
    return [
        Config("gpu", "mlejax", n, 20, 12, device="gpu", **kw)
        for n in (100_000, 1_000_000)
        for kw in ({"gradient": "analytic-fused", "init": "bhhh"}, {})
    ]


def realdata():
    """Issue 11: Train's electricity panel (361 persons, J = 4, six normal coefficients) on
    xlogit's Halton draws from xlogit's start: ours, xlogit and jaxlogit, end to end."""
    e = {"n": 361, "j": 4, "draws": "xlogit-halton"}
    rows = []
    for r in (100, 600):
        rows += [
            Config("realdata", "panel", r=r, gradient="analytic", solver="L-BFGS-B", **e),
            Config("realdata", "panel-xlogit", r=r, solver="L-BFGS-B", **e),
            Config("realdata", "panel-jaxlogit", r=r, solver="L-BFGS-scipy", **e),
        ]
    for r in (100, 600):  # xlogit's default optimiser (BFGS), from the common and its own start
        rows += [
            Config("realdata", "panel-xlogit", r=r, solver="BFGS", init=i, **e)
            for i in ("identity", "mnl")
        ]
        rows += [
            Config("realdata", "panel", r=r, gradient="analytic", solver=m, init=i, **e)
            for m in ("BFGS", "device")
            for i in ("identity", "mnl")
            if (r, m, i) != (600, "BFGS", "identity")  # below, since the first run
        ]
    rows += [
        Config("realdata", "panel", r=600, gradient="analytic", solver="BFGS", **e),
        Config("realdata", "panel", r=600, gradient="autodiff", solver="L-BFGS-B", **e),
        Config("realdata", "panel-jaxlogit", r=600, solver="L-BFGS-jax", **e),
        Config("realdata", "panel", r=600, gradient="analytic", solver="L-BFGS-B", init="mnl", **e),
        Config("realdata", "panel-xlogit", r=600, solver="L-BFGS-B", init="mnl", **e),
    ]
    return rows


def signsearch():
    """Chapter 8: the electricity fit from the common start at 600 of xlogit's draws, then
    ``refit_sign_flips`` until no single sign flip is better, end to end."""
    e = {"n": 361, "j": 4, "draws": "xlogit-halton", "gradient": "analytic"}
    return [
        Config("signsearch", "panel", r=600, solver=f"{m}+flips", **e) for m in ("L-BFGS-B", "BFGS")
    ]


def draws():
    """Chapter 8's draws study: the electricity model on R = 50 to 2,000 scrambled Halton
    draws per person, three seeds each, with standard errors and a common yardstick."""
    return [
        Config("draws", "panel-draws", 361, 4, r, draws="halton", seed=seed)
        for r in (50, 100, 200, 500, 1000, 2000)
        for seed in (0, 1, 2)
    ]


def panelsharding():
    """Issue 22: chapter 8's model at 600 draws on 1, 2 and 4 forced host devices.

    The one estimator's program on a mesh of every device against one device, then a fit
    on the mesh."""
    return [
        Config("panelsharding", "panel-sharding", 361, 4, 600, draws="xlogit-halton", devices=d)
        for d in (1, 2, 4)
    ]


def kernels():
    """Issue 20: chapter 6's specialised kernel against the general one, N = 10k and 100k."""
    return [Config("kernels", "kernels", n, 20, 12) for n in (10_000, 100_000)]


def smoke():
    """A few seconds: what the tests run."""
    small = {"n": 300, "j": 5, "r": 5}
    return [
        Config("smoke", "mlejax", **small, gradient="autodiff-fused"),
        Config("smoke", "mlejax", **small, gradient="analytic", init="identity"),
        Config("smoke", "mlejax", **small, gradient="finite-differences"),
        Config("smoke", "xlogit", **small, variant="ours"),
    ]


SUITES = {
    "table1": table1,
    "table2": table2,
    "table4": table4,
    "beyond": beyond,
    "headtohead": headtohead,
    "onefit": onefit,
    "draws": draws,
    "panelsharding": panelsharding,
    "gpu": gpu,
    "realdata": realdata,
    "signsearch": signsearch,
    "kernels": kernels,
    "smoke": smoke,
}


ALL = (
    "table1",
    "table2",
    "table4",
    "beyond",
    "headtohead",
    "onefit",
    "draws",
    "panelsharding",
    "gpu",
    "realdata",
    "signsearch",
    "kernels",
)


def configs_for(names) -> list[Config]:
    """Configurations of the named suites, in order (``"all"`` = every suite but smoke)."""
    out = []
    for name in names:
        if name == "all":
            out += [c for s in ALL for c in SUITES[s]()]
        elif name in SUITES:
            out += SUITES[name]()
        else:
            raise ValueError(f"unknown suite {name!r}; choose from {sorted(SUITES)} or 'all'")
    return out
