"""Chapter 6's apartments on a mesh: consumers split, padded with zero-weight copies.

The one estimator places a :class:`~mlejax_helpers.mixed_logit.PanelData` itself
(:func:`mlejax_helpers.mixed_logit.fitting.fit`); this is the same placement for the
paper's :class:`~.data.MixedLogitData`, which chapter 9 uses to show the mechanics.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from ..mixed_logit.sharding import AXIS
from .data import MixedLogitData, check_data


class Sharded(NamedTuple):
    """Data placed on a mesh: ``data`` (padded to ``N_pad`` consumers in all), ``weight``
    ``(N_pad,)`` (1 for a real consumer, 0 for padding; ``None`` when nothing was padded,
    so the computation is exactly the unsharded one) and ``n``, the real consumer count."""

    data: MixedLogitData
    weight: jax.Array | None
    n: int


def _padded(data: MixedLogitData, n_pad: int) -> tuple[MixedLogitData, np.ndarray]:
    """``data`` with copies of its first consumer appended up to ``n_pad``, and the weights."""
    n = data.shape[0]
    extra = n_pad - n
    fields = {
        name: np.concatenate([np.asarray(v), np.repeat(np.asarray(v)[:1], extra, axis=0)])
        for name, v in data._asdict().items()
        if name != "theta_true"
    }
    weight = np.r_[np.ones(n), np.zeros(extra)]
    return data._replace(**fields), weight


def _local_total(n_local: int) -> list[int]:
    """Every process's consumer count (one all-gather), in process order."""
    if jax.process_count() == 1:
        return [n_local]
    from jax.experimental import multihost_utils

    counts = multihost_utils.process_allgather(np.array([n_local]))
    return [int(c) for c in np.asarray(counts).ravel()]


def shard(data, mesh: Mesh) -> Sharded:
    """Place ``data`` on ``mesh``, consumers split along ``"consumers"``.

    One process: ``data`` holds every consumer. Several processes
    (``jax.distributed``): each passes only its own consumers, and the global
    arrays are assembled with ``jax.make_array_from_process_local_data``. The
    consumers of every process are padded to a common multiple of its device
    count with zero-weight copies, so the weighted likelihood is unchanged.
    """
    data = check_data(data)
    if not isinstance(mesh, Mesh) or mesh.axis_names != (AXIS,):
        raise TypeError(f"mesh must be a Mesh with the one axis {AXIS!r} (see consumer_mesh)")
    local_devices = max(1, mesh.local_mesh.size)
    counts = _local_total(data.shape[0])
    per_process = math.ceil(max(counts) / local_devices) * local_devices
    padded, weight = _padded(data, per_process)
    split, whole = NamedSharding(mesh, P(AXIS)), NamedSharding(mesh, P())

    def place(x, sharding, global_rows):
        x = np.asarray(x)
        shape = (global_rows, *x.shape[1:]) if global_rows else x.shape
        return jax.make_array_from_process_local_data(sharding, x, shape)

    rows = per_process * jax.process_count()
    fields = {k: place(v, split, rows) for k, v in padded._asdict().items() if k != "theta_true"}
    on_mesh = MixedLogitData(**fields, theta_true=place(data.theta_true, whole, None))
    padded_any = rows > sum(counts)
    return Sharded(on_mesh, place(weight, split, rows) if padded_any else None, int(sum(counts)))
