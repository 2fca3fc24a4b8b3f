r"""The likelihood over several devices and processes: persons split, parameters replicated.

A :class:`jax.sharding.Mesh` names the devices; a ``NamedSharding`` with
``PartitionSpec("consumers")`` splits every array's leading (person) axis across them.
Each device then works on its own persons, and one all-reduce adds the sums over
persons: the value, the gradient and the BHHH matrix, ``1 + K + K^2`` numbers per
evaluation whatever the number of persons. :func:`~.fitting.fit` places a panel on a
mesh itself (:func:`~.fitting.place_persons`); chapter 6's kernel has its own,
:func:`mlejax_helpers.apartments.shard`.

* :func:`consumer_mesh`: a one-axis mesh (one device is the single-device case);
* :func:`start_processes`: ``jax.distributed.initialize`` after a check of the set-up
  (every process's count and id, on the coordinator's port + 1) with errors that name
  the address and what was wrong, never a hang or an abort;
* :func:`to_host`: a replicated result as NumPy, on one process or many.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
from jax.sharding import Mesh

from .._validate import positive_int

AXIS = "consumers"


def consumer_mesh(devices=None) -> Mesh:
    """A one-axis mesh named ``"consumers"`` over ``devices`` (default: every device)."""
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("devices must name at least one device, got none")
    return Mesh(np.array(devices), (AXIS,))


def to_host(x) -> np.ndarray:
    """A replicated JAX array as NumPy: its local copy when other processes hold copies too."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        return np.asarray(x.addressable_data(0))
    return np.asarray(x)


HANDSHAKE_OFFSET = 1  # the check of the set-up listens on the coordinator's port + 1


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _hello(conn):
    """``(process_id, num_processes)`` that a connecting process sent, or ``None``."""
    conn.settimeout(10.0)
    try:
        theirs = json.loads(conn.makefile().readline())
        return int(theirs["process_id"]), int(theirs["num_processes"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _disagreement(pid, count, n, seen) -> str | None:
    if pid in seen or not 0 < pid < n:
        return f"process id {pid} is not one of 1..{n - 1}, or came twice"
    if count != n:
        return (
            f"process {pid} was started with --num-processes {count}, process 0 with {n}: "
            "every process must be given the same count"
        )
    return None


def _serve_handshake(host, port, n, timeout_s):
    """Process 0: wait for processes 1..n-1, check they agree on ``n``, answer each."""
    deadline, said = time.monotonic() + timeout_s, time.monotonic()
    conns, error = [], None
    try:
        server = socket.create_server(("", port))
    except OSError as exc:
        raise RuntimeError(
            f"process 0 cannot listen on port {port} (the coordinator's port + 1) for the "
            f"check of the set-up: {exc.strerror or exc}; choose another coordinator port"
        ) from None
    seen = set()
    with server:
        server.settimeout(1.0)
        try:
            while len(seen) < n - 1 and error is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    error = (
                        f"process 0 of {n} waited {timeout_s} s at {host}:{port} for process(es) "
                        f"{sorted(set(range(1, n)) - seen)}, which never arrived: start them "
                        f"with the same coordinator and --num-processes {n}"
                    )
                    break
                if time.monotonic() - said > 10:
                    _say(f"process 0: waiting for {n - 1 - len(seen)} more ({left:.0f} s left)")
                    said = time.monotonic()
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    continue
                hello = _hello(conn)
                if hello is None:  # not one of ours: ignore
                    conn.close()
                    continue
                conns.append(conn)
                error = _disagreement(*hello, n, seen)
                seen.add(hello[0])
            for conn in conns:
                with contextlib.suppress(OSError):
                    conn.sendall(((error or "ok") + "\n").encode())
        finally:
            for conn in conns:
                conn.close()
    if error:
        raise RuntimeError(error)


def _join_handshake(host, port, n, pid, timeout_s):
    """Process ``pid`` > 0: reach process 0's check, say who we are, wait for its answer."""
    deadline, said = time.monotonic() + timeout_s, time.monotonic()
    while True:
        try:
            with socket.create_connection((host, port), timeout=2.0) as conn:
                conn.sendall((json.dumps({"process_id": pid, "num_processes": n}) + "\n").encode())
                conn.settimeout(timeout_s + 10.0)  # process 0 may wait its whole timeout
                answer = conn.makefile().readline().strip()
            break
        except OSError as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"process {pid} of {n} could not reach the coordinator at {host}:{port - 1} "
                    f"within {timeout_s} s: is process 0 running there, and are ports "
                    f"{port - 1} and {port} open? ({type(exc).__name__}: {exc})"
                ) from exc
            if time.monotonic() - said > 10:
                _say(f"process {pid}: waiting for process 0 at {host}:{port}")
                said = time.monotonic()
            time.sleep(0.2)
    if answer != "ok":
        raise RuntimeError(
            answer or f"process 0 at {host}:{port} closed the check without an answer"
        )


def _device_ids(ids):
    """``None`` or a list of distinct non-negative ints (a string "0,1" is parsed)."""
    if ids is None:
        return None
    if isinstance(ids, str):
        parts = [p.strip() for p in ids.split(",")]
        if not all(p.isdigit() for p in parts):
            raise ValueError(f"local_device_ids must be like '0' or '0,1,2,3', got {ids!r}")
        ids = [int(p) for p in parts]
    ok = isinstance(ids, (list, tuple)) and all(
        isinstance(i, (int, np.integer)) and not isinstance(i, bool) and i >= 0 for i in ids
    )
    if not ok or not ids or len(set(ids)) != len(ids):
        raise ValueError(
            f"local_device_ids must be distinct non-negative GPU ordinals, got {ids!r}"
        )
    return [int(i) for i in ids]


def start_processes(
    coordinator: str,
    num_processes: int,
    process_id: int,
    timeout_s: int = 60,
    local_device_ids=None,
):
    """``jax.distributed.initialize`` for CPU or GPU processes, after a check of the set-up.

    ``coordinator`` is ``"host:port"`` of process 0. Before JAX starts (JAX aborts the
    whole process, with a C++ trace, on a set-up it cannot use), process 0 listens on
    ``port + 1`` and every other process reports its id and process count there:
    a count that disagrees with process 0's, a repeated id, or a process that does not
    arrive within ``timeout_s`` seconds raises a ``RuntimeError`` that names the address
    and what was wrong, in process 0 and in every process that had reached the check
    (one that arrives after process 0 gave up fails at its own timeout with "could not
    reach"). Progress is printed to standard error every 10 s while waiting. On CPU the
    collectives go through gloo.

    ``local_device_ids``: the ordinals, among the GPUs this process can see, that it
    drives (JAX's argument of that name). ``None`` leaves JAX's choice; under SLURM
    that is GPU ``SLURM_LOCALID``, right when every task of a node sees all of the
    node's GPUs (``--gpus-per-node``), wrong with ``--gpus-per-task=1``, where each task
    sees one GPU, ordinal 0, so pass ``[0]`` (jax-ml/jax#28194).
    """
    num_processes = positive_int(num_processes, "num_processes")
    local_device_ids = _device_ids(local_device_ids)
    timeout_s = positive_int(timeout_s, "timeout_s")
    if isinstance(process_id, np.integer):
        process_id = int(process_id)
    if not isinstance(process_id, int) or not 0 <= process_id < num_processes:
        raise ValueError(f"process_id must be in 0..{num_processes - 1}, got {process_id!r}")
    if not isinstance(coordinator, str) or not coordinator.rpartition(":")[2].isdigit():
        raise ValueError(
            f"coordinator must be 'host:port' with a numeric port, got {coordinator!r}"
        )
    host, _, port = coordinator.rpartition(":")
    check_port = int(port) + HANDSHAKE_OFFSET
    if num_processes > 1 and process_id == 0:
        _serve_handshake(host, check_port, num_processes, timeout_s)
    elif num_processes > 1:
        _join_handshake(host, check_port, num_processes, process_id, timeout_s)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(
            coordinator,
            num_processes,
            process_id,
            local_device_ids=local_device_ids,
            initialization_timeout=timeout_s,
        )
    except Exception as exc:  # JAX raises several kinds, all with long messages
        raise RuntimeError(
            f"process {process_id} of {num_processes} could not start jax.distributed with the "
            f"coordinator at {coordinator} within {timeout_s} s "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        ) from exc


def run_with_host_devices(code: str, n_devices: int, timeout: float = 600) -> str:
    """Run Python ``code`` in a fresh process that sees ``n_devices`` CPU devices; return its
    standard output, or raise ``RuntimeError`` with the end of its error output.

    XLA fixes the device count when it starts, so forced host devices
    (``XLA_FLAGS=--xla_force_host_platform_device_count=N``) need a new process.
    They share the machine's cores: they show the mechanics and the overhead of
    sharding, and at most the gain of cores that one device's program left idle.
    """
    n_devices = positive_int(n_devices, "n_devices")
    flags = os.environ.get("XLA_FLAGS", "")
    env = {**os.environ, "XLA_FLAGS": f"{flags} --xla_force_host_platform_device_count={n_devices}"}
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    if out.returncode != 0:
        raise RuntimeError(f"the {n_devices}-device process failed:\n{out.stderr[-3000:]}")
    return out.stdout
