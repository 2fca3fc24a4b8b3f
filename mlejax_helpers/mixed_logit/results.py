r"""What a fit returns (:class:`Result`) and the tests that compare fits (:func:`lr_test`).

A :class:`Result` holds the estimate, the convergence test that decided ``success``,
the log-likelihood and information criteria, and the two curvature matrices at the
estimate: the Hessian :math:`H` of the total -LL and the BHHH matrix
:math:`B = \sum_p s_p s_p'` of the per-person scores. The covariances follow:
``"hessian"`` :math:`H^{-1}`, ``"bhhh"`` :math:`B^{-1}` and ``"robust"``
:math:`H^{-1} B H^{-1}` (the sandwich, clustered by person because the scores are
per person). It saves to plain JSON and ``.npz`` (no pickle) and loads back.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.special import chdtrc, ndtr  # chi-square and normal tails, without scipy.stats

from .model import MixedLogit

COVARIANCES = ("hessian", "bhhh", "robust")
_ARRAYS = ("theta", "hessian", "bhhh")


@dataclass(frozen=True, eq=False)
class Result:
    """One fit of a :class:`~.model.MixedLogit` by :func:`~.fitting.fit`.

    ``success``: the convergence test of :func:`~.diagnostics.convergence` (scaled
    gradient ``g'B^-1 g`` at most 1e-5, every parameter identified), never the
    optimiser's flag alone; ``message`` says which test decided and what the optimiser
    said; ``scaled_gradient`` is ``g'B^-1 g``. ``loglik`` is the simulated
    log-likelihood at ``theta``; ``n_obs`` the number of choice situations (the ``n`` of
    BIC) and ``n_persons`` of persons. ``compile_s`` is tracing and compiling,
    ``run_s`` the optimisation alone and ``se_s`` the standard errors (the Hessian),
    each timed apart. ``draws`` is the draw specification (kind, draws per person,
    seed). ``hessian`` and ``bhhh`` ``(k, k)`` are ``None`` when no standard errors
    were computed, and ``cov_error`` then says why. ``data_fingerprint`` and
    ``persons_fingerprint`` identify the data and the persons it was fitted to (see
    :class:`~.panel_data.PanelData`), so that tests refuse fits to other data.
    ``devices`` is how many devices the persons were split over.
    """

    model: MixedLogit
    theta: np.ndarray
    success: bool
    message: str
    loglik: float
    n_obs: int
    n_persons: int
    nit: int
    nfev: int
    scaled_gradient: float
    compile_s: float
    run_s: float
    se_s: float
    method: str
    draws: dict
    hessian: np.ndarray | None = None
    bhhh: np.ndarray | None = None
    cov_error: str | None = None
    data_fingerprint: str = ""
    persons_fingerprint: str = ""
    choices_fingerprint: str = ""
    attribute_fingerprints: dict = field(default_factory=dict)
    devices: int = 1

    @property
    def names(self) -> tuple:
        return self.model.param_names

    @property
    def aic(self) -> float:
        """:math:`2k - 2\\log L`."""
        return 2 * len(self.theta) - 2 * self.loglik

    @property
    def bic(self) -> float:
        """:math:`k \\log n - 2\\log L`, with ``n`` the number of choice situations."""
        return len(self.theta) * np.log(self.n_obs) - 2 * self.loglik

    def cov(self, kind: str = "hessian", *, name: str = "kind") -> np.ndarray:
        """The estimate's covariance ``(k, k)``: ``"hessian"``, ``"bhhh"`` or ``"robust"``."""
        if kind not in COVARIANCES:
            raise ValueError(f"{name} must be one of {COVARIANCES}, got {kind!r}")
        if self.hessian is None:
            raise ValueError(f"no standard errors for this fit: {self.cov_error}")
        h_inv = np.linalg.inv(self.hessian)
        return {
            "hessian": h_inv,
            "bhhh": np.linalg.inv(self.bhhh),
            "robust": h_inv @ self.bhhh @ h_inv,
        }[kind]

    def summary(self, cov: str = "hessian") -> pd.DataFrame:
        """Estimate, standard error, z and two-sided p, one row per parameter (``names``).

        A standard deviation's sign is not identified (``sd`` and ``-sd`` give the same
        model), so ``sd.*`` rows show ``|sd|``; ``.attrs["note"]`` says so."""
        se = np.sqrt(np.diag(self.cov(cov, name="cov")))
        est = np.where([n.startswith("sd.") for n in self.names], np.abs(self.theta), self.theta)
        z = est / se
        table = pd.DataFrame(
            {"estimate": est, "se": se, "z": z, "p": 2 * ndtr(-np.abs(z))},
            index=pd.Index(self.names, name="parameter"),
        )
        table.attrs["note"] = (
            f"standard errors: {cov}; sd.* rows are |sd| (the sign of a standard deviation "
            f"is not identified); log-likelihood {self.loglik:.4f}, n = {self.n_obs}"
        )
        return table

    def save(self, path) -> Path:
        """Write ``path.json`` (everything but the arrays) and ``path.npz`` (``theta``,
        ``hessian``, ``bhhh``); returns the JSON file's path."""
        base = _base(path)
        if Path(path).is_dir():
            raise ValueError(f"path must name a file to write, got the folder {str(path)!r}")
        meta = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _ARRAYS}
        meta["model"] = asdict(self.model)
        _with(base, ".json").write_text(json.dumps(meta, indent=1, default=_plain))
        arrays = {k: getattr(self, k) for k in _ARRAYS if getattr(self, k) is not None}
        np.savez(_with(base, ".npz"), **arrays)
        return _with(base, ".json")

    @classmethod
    def load(cls, path) -> Result:
        """The :class:`Result` that :meth:`save` wrote to ``path`` (with ``.json``, ``.npz``
        or no suffix); ``ValueError`` naming the file when it is not such a result."""
        base = _base(path)
        name = _with(base, ".json")
        try:
            meta = json.loads(name.read_text())
            spec = meta.pop("model")
            meta["model"] = MixedLogit(spec["attributes"], spec["random"], spec["correlated"])
            with np.load(_with(base, ".npz"), allow_pickle=False) as npz:
                arrays = {k: np.asarray(npz[k], dtype=float) for k in npz.files}
            result = cls(**meta, **arrays)
        except (ValueError, KeyError, TypeError, OSError) as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            raise ValueError(f"{name} (and its .npz) is not a saved Result: {exc}") from None
        k = len(result.model.param_names)
        shapes = {"theta": (k,), "hessian": (k, k), "bhhh": (k, k)}
        for array, shape in shapes.items():
            value = getattr(result, array)
            if value is not None and value.shape != shape:
                raise ValueError(f"{name}: {array} has shape {value.shape}, the model {shape}")
        return result


def _base(path) -> Path:
    """``path`` less a ``.json`` or ``.npz`` suffix (any other suffix is part of the name)."""
    path = Path(path)
    return path.with_suffix("") if path.suffix in (".json", ".npz") else path


def _with(base: Path, suffix: str) -> Path:
    return base.with_name(base.name + suffix)


def _plain(value):
    """JSON for NumPy scalars (``np.float64`` and friends)."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot save {type(value).__name__} as JSON")


class LRTest(NamedTuple):
    """A likelihood-ratio test: ``statistic`` :math:`2(\\log L_u - \\log L_r)`, its degrees
    of freedom ``df`` (the difference in parameter counts) and the chi-squared ``p`` value."""

    statistic: float
    df: int
    p: float


def nests(big: MixedLogit, small: MixedLogit) -> bool:
    """Whether ``small`` is ``big`` with some parameters fixed at zero: its attributes are
    among ``big``'s, its random coefficients random in ``big`` with the same distribution,
    and ``small`` is correlated only if ``big`` is."""
    random = dict(big.random)
    return (
        set(small.attributes) <= set(big.attributes)
        and all(random.get(name) == dist for name, dist in small.random)
        and (big.correlated or not small.correlated)
    )


def lr_test(restricted: Result, unrestricted: Result) -> LRTest:
    """The likelihood-ratio test of ``restricted`` nested in ``unrestricted``.

    Both must be converged fits to the same choices (the same persons, situations and
    choices; the attributes may differ) with the same draws where both have random
    coefficients, and the unrestricted model must nest the restricted one with more
    parameters (:func:`nests`); a restricted fit with
    the higher log-likelihood means one of the two stopped at a worse local optimum,
    and is refused."""
    for name, r in (("restricted", restricted), ("unrestricted", unrestricted)):
        if not isinstance(r, Result):
            raise TypeError(f"{name} must be a Result, got {type(r).__name__}")
        if not r.success:
            raise ValueError(f"{name} did not converge: {r.message}")
    if restricted.choices_fingerprint != unrestricted.choices_fingerprint:
        raise ValueError("restricted and unrestricted were fitted to different choices")
    theirs = unrestricted.attribute_fingerprints
    other = [a for a, h in restricted.attribute_fingerprints.items() if theirs.get(a, h) != h]
    if other:
        raise ValueError(f"attribute(s) {other} hold other values in the two fits' data")
    if restricted.model.random and unrestricted.model.random:
        if restricted.draws != unrestricted.draws:
            raise ValueError(
                f"restricted and unrestricted were simulated with other draws ({restricted.draws} "
                f"and {unrestricted.draws}): their simulated likelihoods are not nested"
            )
    df = len(unrestricted.theta) - len(restricted.theta)
    if df <= 0 or not nests(unrestricted.model, restricted.model):
        raise ValueError(
            f"unrestricted must nest restricted with more parameters: every attribute of "
            f"restricted in unrestricted, each random coefficient random there with the same "
            f"distribution, correlations only if unrestricted has them; got {restricted.names} "
            f"and {unrestricted.names}"
        )
    stat = 2.0 * (unrestricted.loglik - restricted.loglik)
    if stat < -1e-6 * abs(unrestricted.loglik):
        raise ValueError(
            f"the unrestricted fit's log-likelihood ({unrestricted.loglik:.4f}) is below the "
            f"restricted one's ({restricted.loglik:.4f}): the unrestricted fit stopped at a "
            "worse local optimum; start it from the restricted estimate"
        )
    stat = max(stat, 0.0)
    return LRTest(stat, df, float(chdtrc(df, stat)))
