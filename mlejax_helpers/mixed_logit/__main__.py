"""One process of a mixed logit fit spread over several processes (``jax.distributed``).

Launch one per process, on one machine or many (see chapter 9's recipes)::

    python -m mlejax_helpers.mixed_logit --coordinator HOST:PORT --num-processes 2 --process-id 0
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def _from_env(name, fallback=None):
    return os.environ.get(f"MLEJAX_{name}") or (os.environ.get(fallback) if fallback else None)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mlejax_helpers.mixed_logit")
    parser.add_argument("--coordinator", default=_from_env("COORDINATOR"), help="host:port")
    parser.add_argument(
        "--num-processes", type=int, default=_from_env("NUM_PROCESSES", "SLURM_NTASKS")
    )
    parser.add_argument("--process-id", type=int, default=_from_env("PROCESS_ID", "SLURM_PROCID"))
    parser.add_argument("--draws", type=int, default=100, help="draws per person")
    parser.add_argument(
        "--method",
        default="device",
        choices=("device", "BFGS", "L-BFGS-B"),
        help="ml.fit's method; 'device' keeps every step of the optimiser in the one program",
    )
    parser.add_argument(
        "--timeout", type=int, default=60, help="seconds to wait for the other processes"
    )
    parser.add_argument(
        "--local-device-ids",
        default=_from_env("LOCAL_DEVICE_IDS"),
        help="GPU ordinals this process drives, e.g. 0 (one GPU per SLURM task) or 0,1,2,3",
    )
    return parser


def main(argv=None) -> int:
    """``python -m mlejax_helpers.mixed_logit``: one process of a distributed fit of chapter
    8's model (Train's electricity panel, six independent normal coefficients, xlogit's
    Halton draws).

    Every process reads the same long data and calls the one ``ml.fit`` with the mesh of
    every process's devices; each device computes the likelihood of its share of the
    persons, and every process prints the same estimate as a line ``RESULT {json}``. The
    default ``--method device`` runs the whole optimiser inside the compiled program, on
    the all-reduced value, gradient and BHHH matrix, with no host library in between.
    Settings come from the flags or from the environment (``MLEJAX_COORDINATOR``,
    ``MLEJAX_NUM_PROCESSES``, ``MLEJAX_PROCESS_ID``, ``MLEJAX_LOCAL_DEVICE_IDS``; under
    SLURM, ``SLURM_NTASKS`` and ``SLURM_PROCID`` are used).
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.coordinator is None or args.num_processes is None or args.process_id is None:
        parser.error("give --coordinator, --num-processes and --process-id (or MLEJAX_* vars)")
    from .sharding import consumer_mesh, start_processes

    try:
        start_processes(
            args.coordinator,
            args.num_processes,
            args.process_id,
            args.timeout,
            args.local_device_ids,
        )
    except (RuntimeError, ValueError) as exc:  # a set-up error: one clear line, no trace
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    import jax

    from . import fit, panel_data

    model, data = panel_data.electricity()
    mesh = consumer_mesh()
    res = fit(model, data, n_draws=args.draws, draws="xlogit-halton", method=args.method, mesh=mesh)
    report = {
        "process": jax.process_index(),
        "devices": jax.device_count(),
        "loglik": res.loglik,
        "names": list(res.names),
        "theta": res.theta.tolist(),
        "se": res.summary()["se"].tolist() if res.cov_error is None else None,
        "nit": res.nit,
        "success": res.success,
        "run_s": res.run_s,
    }
    print("RESULT " + json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
