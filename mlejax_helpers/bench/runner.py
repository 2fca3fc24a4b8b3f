"""Run benchmark configurations in child processes, each with a time and a memory limit.

A hang becomes ``"timed out after T s"``, a child above the memory limit (or
killed by the kernel's out-of-memory killer) ``"out of memory"``; either way the
run goes on with the next configuration. Every record is appended to the JSON
Lines file the moment it is measured, and configurations already in the file
are skipped, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

from .records import (
    FAILED,
    append,
    check_writable,
    done_keys,
    fingerprint,
    jemalloc_path,
    now,
    provenance,
)
from .suites import Config

GiB = 1024**3


def _rss(pid: int) -> int:
    """Resident memory of process ``pid`` and its children, in bytes (0 if gone)."""
    import psutil

    try:
        p = psutil.Process(pid)
        return p.memory_info().rss + sum(c.memory_info().rss for c in p.children(recursive=True))
    except psutil.Error:
        return 0


def _skip(cfg: Config, has_gpu: bool) -> str | None:
    if cfg.device == "gpu" and not has_gpu:
        return "skipped: needs a GPU (none on this machine)"
    if cfg.allocator == "jemalloc" and jemalloc_path() is None:
        return "skipped: jemalloc not installed (Debian: apt-get install libjemalloc2)"
    return None


CHILD = (sys.executable, "-m", "mlejax_helpers.bench.child")


def _stop(proc) -> None:
    """End the child and its process group (what it started too): SIGTERM, SIGKILL after
    5 s; a child that already ended is only reaped."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _watch(proc, timeout, memory_limit) -> tuple[dict | None, int]:
    """Poll ``proc`` until it ends or breaks a limit; return ``(verdict or None, peak RSS)``."""
    start, peak = time.monotonic(), 0
    while proc.poll() is None:
        peak = max(peak, _rss(proc.pid))
        if time.monotonic() - start > timeout:
            return {"status": "timed out", "outcome": f"timed out after {timeout:g} s"}, peak
        if memory_limit and peak > memory_limit:
            limit = f"{memory_limit / GiB:.3g} GiB"
            return {
                "status": "out of memory",
                "outcome": f"out of memory: above the {limit} limit",
            }, peak
        time.sleep(0.05)
    return None, peak


def _verdict(cfg, returncode, stdout, stderr) -> dict:
    """The record fields of a child that ended by itself."""
    result = next(
        (json.loads(line[7:]) for line in stdout.splitlines() if line.startswith("RESULT ")), None
    )
    if result is None:
        if returncode in (-9, 137) or "RESOURCE_EXHAUSTED" in stderr:
            how = "killed by signal 9" if returncode in (-9, 137) else "XLA RESOURCE_EXHAUSTED"
            return {"status": "out of memory", "outcome": f"out of memory: {how}"}
        tail = (stderr.strip().splitlines() or ["no output"])[-1]
        return {"status": "error", "outcome": f"error (exit {returncode}): {tail}"}
    if result.get("status") == "ok":
        result["outcome"] = "measured" if cfg.kind in ("evaluation", "kernels") else "converged"
    elif result.get("status") == "did not converge":
        result["outcome"] = f"did not converge: {result.get('message')}"
    else:
        result.setdefault("outcome", result.get("status", "error"))
    return result


def run_one(
    cfg: Config,
    *,
    timeout: float = 600,
    memory_limit: float | None = None,
    repeats: int = 3,
    common_draws: int = 200,
    has_gpu: bool = False,
    child=CHILD,
) -> dict:
    """Measure one configuration in a child process (command ``child``) and return its fields.

    The child is killed whatever happens in the parent, an interrupt included.
    """
    reason = _skip(cfg, has_gpu)
    if reason:
        return {"status": "skipped", "outcome": reason}
    env = os.environ.copy()
    env["PYTHONUNBUFFERED"] = "1"
    if cfg.allocator == "jemalloc":
        env["LD_PRELOAD"] = jemalloc_path()
    if cfg.devices:
        flags = env.get("XLA_FLAGS", "")
        env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={cfg.devices}".strip()
    request = json.dumps(
        {"config": cfg.to_dict(), "repeats": repeats, "common_draws": common_draws}
    )
    start = time.monotonic()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(  # its own process group: stopped with everything it starts
            list(child), stdin=subprocess.PIPE, stdout=out, stderr=err, env=env, text=True,
            start_new_session=True,
        )  # fmt: skip
        try:
            try:
                proc.stdin.write(request)
                proc.stdin.close()
            except BrokenPipeError:
                pass  # the child ended before reading its request; its output says why
            killed, peak = _watch(proc, timeout, memory_limit)
        finally:  # stopped for any reason (a limit, Ctrl-C, SIGTERM): the child goes too
            _stop(proc)
        wall = time.monotonic() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if killed:
        return {**killed, "peak_rss_bytes": peak, "wall_s": wall}
    result = _verdict(cfg, proc.returncode, stdout, stderr)
    result.update(wall_s=wall, peak_rss_bytes_parent_view=peak)
    return result


class Terminated(Exception):
    """SIGTERM (what ``timeout``, ``kill`` and SLURM send) arrived during a run."""


def _on_sigterm(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the clean-up
    raise Terminated()


def _say_skipped(out, configs, process_repeats, done) -> None:
    """Tell which runs a resumed run skips, and how to measure the failed ones again."""
    runs = {(c.key, k) for k in range(process_repeats) for c in configs}
    skipped = [done[r] for r in runs if r in done]
    if skipped:
        failed = sum(s in FAILED for s in skipped)
        print(
            f"skipping {len(skipped)} run(s) already in {out}"
            + (f", {failed} of them failed (--retry-failed measures those again)" if failed else "")
            + "; interrupted runs are measured again",
            file=sys.stderr,
        )


def run(
    configs,
    out,
    *,
    timeout=600,
    memory_limit=None,
    repeats=3,
    common_draws=200,
    progress=True,
    command=None,
    retry_failed=False,
    child=CHILD,
    process_repeats=1,
    shuffle_seed=0,
) -> list[dict]:
    """Run every configuration not yet in ``out`` for this machine and these settings; append
    each record at once; return them. An interrupt records the configuration it stopped as
    ``"interrupted"`` before it propagates.

    ``process_repeats``: each configuration is measured that many times, each time in a
    fresh process (records carry ``rep``), in an order shuffled with ``shuffle_seed``, so
    that a drift of the machine does not favour whatever runs first.
    """
    process_repeats = int(process_repeats)
    if process_repeats < 1:
        raise ValueError(f"process_repeats must be >= 1, got {process_repeats}")
    out = check_writable(out)
    prov = provenance(command)
    fp = fingerprint(prov, repeats=repeats, common_draws=common_draws)
    done = done_keys(out, fp, retry_failed=retry_failed)
    todo = [(c, k) for k in range(process_repeats) for c in configs if (c.key, k) not in done]
    _say_skipped(out, configs, process_repeats, done)
    if process_repeats > 1:
        random.Random(shuffle_seed).shuffle(todo)
    has_gpu = prov["gpu"] is not None
    try:  # SIGTERM ends the run like Ctrl-C: the child is stopped and the run recorded
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread: signals cannot be caught here
        previous = None
    measure = {
        "timeout": timeout,
        "memory_limit": memory_limit,
        "repeats": repeats,
        "common_draws": common_draws,
        "has_gpu": has_gpu,
        "child": child,
    }
    try:
        return _run_all(todo, out, fp, prov, measure, progress)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run_all(todo, out, fp, prov, measure: dict, progress) -> list[dict]:
    """Measure each ``(config, rep)`` of ``todo`` with ``run_one(**measure)``; append each
    record at once; an interrupt or SIGTERM is recorded as ``"interrupted"``, then raised."""
    records, bar = [], None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), unit="config", desc="benchmark")
    for cfg, rep in todo:
        if bar is not None:
            bar.set_postfix_str(f"{cfg.suite}: {cfg.label} N={cfg.n} J={cfg.j} R={cfg.r}")
        settings = {k: measure[k] for k in ("repeats", "common_draws")}
        base = {"key": cfg.key, "rep": rep, "label": cfg.label, **cfg.to_dict(), **settings}
        base["timeout_s"] = measure["timeout"]
        try:
            result = run_one(cfg, **measure)
        except (KeyboardInterrupt, Terminated) as exc:
            how = "SIGTERM" if isinstance(exc, Terminated) else "an interrupt (Ctrl-C)"
            stop = {
                "status": "interrupted",
                "outcome": f"interrupted: the run was stopped by {how}",
            }
            append(
                out, {**base, **stop, "measured_at": now(), "fingerprint": fp, "provenance": prov}
            )
            raise
        record = {
            **base,
            **result,
            "measured_at": now(),
            "fingerprint": fp,
            "allocator_preload": jemalloc_path() if cfg.allocator == "jemalloc" else None,
            "provenance": prov,
        }
        append(out, record)
        records.append(record)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return records
