"""Benchmark records: provenance, and JSON Lines files written one record at a time."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
import warnings
from importlib import metadata
from pathlib import Path

PACKAGES = ("jax", "jaxlib", "numpy", "scipy", "xlogit", "pandas")
JEMALLOC_PATHS = (
    "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
    "/usr/lib/libjemalloc.so.2",
)


def jemalloc_path() -> str | None:
    """Where Debian's libjemalloc2 lives on this machine, or ``None``."""
    return next((p for p in JEMALLOC_PATHS if Path(p).exists()), None)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit(cwd=None) -> str:
    """The commit of the checkout the benchmark runs in (the working directory), with
    ``-dirty`` when tracked files outside ``results/`` have changed. Outside git (a copy of
    the tree sent to another machine) it is ``$MLEJAX_GIT_COMMIT`` if set, else ``"unknown"``."""

    def git(*args):
        return subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10
        ).stdout.strip()

    try:
        sha = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!results")
    except (OSError, subprocess.SubprocessError):
        sha, dirty = "", ""
    if not sha:
        return os.environ.get("MLEJAX_GIT_COMMIT", "unknown")
    return sha + ("-dirty" if dirty else "")


PROBE = (
    "import json, jax; print(json.dumps("
    '[f\'{d.platform}:{getattr(d, "device_kind", "?")}\' for d in jax.devices()]))'
)


def probe_devices(timeout: float = 120) -> list[str]:
    """JAX's devices, asked in a subprocess so the parent never holds a GPU client (which,
    preallocating most of the GPU's memory, would starve the children it starts)."""
    try:
        out = subprocess.run(
            [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=timeout
        )
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        return [f"unavailable: {type(exc).__name__}"]


def now() -> str:
    """The current UTC time, ISO 8601, to the second."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def provenance(command=None) -> dict:
    """Where and how a run was measured: machine, devices, versions, commit, date, command."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    versions["python"] = platform.python_version()
    devices = probe_devices()
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "devices": devices,
        "gpu": next((d for d in devices if d.startswith(("gpu", "cuda", "rocm"))), None),
        "versions": versions,
        "git_commit": git_commit(),
        "date": now(),
        "command": command or " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
        "jemalloc_available": jemalloc_path() is not None,
    }


def fingerprint(prov: dict, **settings) -> str:
    """What makes two records comparable: machine, devices, package versions and ``settings``
    (repeats, common draws). A rerun skips a configuration only when this matches."""
    keep = {k: prov.get(k) for k in ("cpu", "cores", "gpu", "versions")}
    blob = json.dumps({**keep, **settings}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def append(path, record: dict) -> None:
    """Append one record as a line of JSON and flush it to disk at once.

    If the file ends in a torn line (a run killed mid-write), a newline is
    written first, so the new record stands on its own line.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torn = path.exists() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")
    with path.open("a") as fh:
        fh.write(("\n" if torn else "") + json.dumps(record, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read(path) -> list[dict]:
    """All records of a JSON Lines file (an empty list if there is none).

    A line that is not valid JSON (a record torn by a killed run) is skipped with
    a ``UserWarning`` naming the file and line, never an exception: the book
    still builds from the records that are whole.
    """
    path = Path(path)
    if not path.exists():
        return []
    out, bad = [], []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                bad.append(i)
    if bad:
        warnings.warn(
            f"{path}: skipped line(s) {bad}, which are not valid JSON (torn records)",
            stacklevel=2,
        )
    return out


FAILED = ("error", "timed out", "out of memory", "interrupted")


def done_keys(path, fp: str | None = None, retry_failed: bool = False) -> dict:
    """``{(key, rep): status}`` of the runs already recorded in ``path`` with fingerprint
    ``fp`` (any, if ``None``; ``rep`` is 0 for records without one). An interrupted run is
    never done (it is measured again); with ``retry_failed`` no failed run is."""
    out = {}
    for r in read(path):
        if "key" not in r or (fp is not None and r.get("fingerprint") != fp):
            continue
        run, status = (r["key"], int(r.get("rep", 0))), r.get("status")
        if status == "interrupted" or (retry_failed and status in FAILED):
            continue
        if out.get(run) is None or out[run] in FAILED:  # a measurement beats a failure
            out[run] = status
    return out


def check_writable(path) -> Path:
    """``path`` as a ``Path`` once it is known that records can be appended to it: not a
    directory, its folder creatable and the file openable for appending (``ValueError``
    otherwise, before anything is measured)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"--out must be a JSON Lines file, got the directory {str(path)!r}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a"):
            pass
    except OSError as exc:
        raise ValueError(f"--out {str(path)!r} cannot be written: {exc.strerror or exc}") from None
    return path
