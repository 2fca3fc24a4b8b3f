"""One process of a mixed logit fit spread over several processes (``jax.distributed``).

Launch one per process, on one machine or many (see chapter 9's recipes)::

    python -m mlejax_helpers.mixed_logit --coordinator HOST:PORT --num-processes 2 --process-id 0
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import jax

from .data import simulate
from .estimate import THETA_START, fit
from .likelihood import value_and_grad_analytic
from .sharding import consumer_mesh, shard, start_processes, to_host


def _from_env(name, fallback=None):
    return os.environ.get(f"MLEJAX_{name}") or (os.environ.get(fallback) if fallback else None)


def main(argv=None) -> int:
    """``python -m mlejax_helpers.mixed_logit``: one process of a distributed fit.

    Every process simulates only its own consumers (seed + process id), the fit
    runs over all of them, and each process prints the same estimate as a line
    ``RESULT {json}``. Settings come from the flags or from the environment
    (``MLEJAX_COORDINATOR``, ``MLEJAX_NUM_PROCESSES``, ``MLEJAX_PROCESS_ID``;
    under SLURM, ``SLURM_NTASKS`` and ``SLURM_PROCID`` are used).
    """
    parser = argparse.ArgumentParser(prog="python -m mlejax_helpers.mixed_logit")
    parser.add_argument("--coordinator", default=_from_env("COORDINATOR"), help="host:port")
    parser.add_argument(
        "--num-processes", type=int, default=_from_env("NUM_PROCESSES", "SLURM_NTASKS")
    )
    parser.add_argument("--process-id", type=int, default=_from_env("PROCESS_ID", "SLURM_PROCID"))
    parser.add_argument("--consumers", type=int, default=10_000, help="per process")
    parser.add_argument("--options", type=int, default=20)
    parser.add_argument("--draws", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--timeout", type=int, default=60, help="seconds to wait for the other processes"
    )
    args = parser.parse_args(argv)
    if args.coordinator is None or args.num_processes is None or args.process_id is None:
        parser.error("give --coordinator, --num-processes and --process-id (or MLEJAX_* vars)")
    try:
        start_processes(args.coordinator, args.num_processes, args.process_id, args.timeout)
    except (RuntimeError, ValueError) as exc:  # a set-up error: one clear line, no trace
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    mine = simulate(args.consumers, args.options, args.draws, seed=args.seed + args.process_id)
    mesh = consumer_mesh()
    placed = shard(mine, mesh)
    value, grad = jax.jit(value_and_grad_analytic)(THETA_START, placed.data, placed.weight)
    res = fit(mine, gradient="analytic-fused", init="bhhh", mesh=mesh)
    report = {
        "neg_loglik_start": float(to_host(value)),
        "gradient_start": to_host(grad).tolist(),
        "process": jax.process_index(),
        "devices": jax.device_count(),
        "neg_loglik": res.neg_loglik,
        "theta": res.theta.tolist(),
        "nit": res.nit,
        "success": res.success,
        "run_s": res.run_s,
    }
    print("RESULT " + json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
