"""Benchmark records: provenance, and JSON Lines files written one record at a time."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import subprocess
import sys
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


def git_commit() -> str:
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!results"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (sha or "unknown") + ("-dirty" if dirty else "")


def provenance(command=None) -> dict:
    """Where and how a record was measured: machine, devices, versions, commit, date, command."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    versions["python"] = platform.python_version()
    try:
        import jax

        devices = [f"{d.platform}:{getattr(d, 'device_kind', '?')}" for d in jax.devices()]
    except Exception as exc:  # pragma: no cover - a broken JAX install
        devices = [f"unavailable: {exc}"]
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "devices": devices,
        "gpu": next((d for d in devices if d.startswith(("gpu", "cuda", "rocm"))), None),
        "versions": versions,
        "git_commit": git_commit(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command or " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
        "jemalloc_available": jemalloc_path() is not None,
    }


def append(path, record: dict) -> None:
    """Append one record as a line of JSON and flush it to disk at once."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read(path) -> list[dict]:
    """All records of a JSON Lines file (an empty list if there is none); bad lines raise."""
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{i} is not valid JSON: {exc}") from exc
    return out


def done_keys(path) -> set[str]:
    """Keys of configurations already recorded in ``path``."""
    return {r["key"] for r in read(path) if "key" in r}
