"""The book's one size knob and its float64 set-up.

Every notebook asks :func:`pick` for its problem sizes and repeat counts, so a
single environment variable decides how much work a run does:

``MLEJAX_SIZE=small``
    what the test-suite uses: every cell runs, on tiny problems, in seconds.
``MLEJAX_SIZE=full`` (the default)
    the sizes a reader should see, used by the site build.
"""

from __future__ import annotations

import os
from pathlib import Path

SIZE_ENV = "MLEJAX_SIZE"
SIZES = ("small", "full")
DEFAULT_SIZE = "full"


def size() -> str:
    """Return the current size, ``"small"`` or ``"full"``, from ``$MLEJAX_SIZE``."""
    value = os.environ.get(SIZE_ENV, DEFAULT_SIZE).strip().lower() or DEFAULT_SIZE
    if value not in SIZES:
        raise ValueError(f"{SIZE_ENV} must be one of {SIZES}, got {value!r}")
    return value


def pick(small, full):
    """Return ``small`` when the book runs small (tests), else ``full``."""
    return small if size() == "small" else full


def enable_x64() -> None:
    """Switch JAX to float64 by default (call before creating any array).

    Maximum likelihood needs it: a log-likelihood summed over 10^4 observations
    is of order 10^4, and float32 carries about 7 significant digits, so changes
    in the last 10^-3 of the objective -- exactly where an optimiser decides it
    has converged -- are lost in round-off.
    """
    import jax

    jax.config.update("jax_enable_x64", True)


def cpu_devices(n: int | None = None) -> int:
    """Ask JAX for ``n`` CPU devices (default: one per core), so that :func:`fit
    <mlejax_helpers.mixed_logit.fit>` splits the persons over them (its ``mesh="auto"``).

    XLA reads ``--xla_force_host_platform_device_count`` once, when JAX starts its
    backend, so this must run before the first array or device query; afterwards it
    raises instead of silently doing nothing. Returns ``n``. Chapter 9 measures what it
    gains (``results/bench-cpu-panelsharding-value.jsonl``).
    """
    import os

    from jax._src import xla_bridge

    n = (os.cpu_count() or 1) if n is None else n
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive whole number of devices, got {n!r}")
    if xla_bridge.backends_are_initialized():
        raise RuntimeError(
            "cpu_devices must run before JAX starts (before any array is made or any "
            "device is listed); call it first, or start Python with XLA_FLAGS="
            f"--xla_force_host_platform_device_count={n}"
        )
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if "device_count=" not in f]
    os.environ["XLA_FLAGS"] = " ".join([*flags, f"--xla_force_host_platform_device_count={n}"])
    return n


def compilation_cache(path) -> Path:
    """Switch on JAX's persistent compilation cache in folder ``path`` (created if needed).

    A fresh process that compiles a function already compiled there, by any earlier
    process with the same JAX version and machine, loads the compiled program instead
    of compiling it again; tracing still happens. Every program is cached, however
    small. Returns the folder. The benchmark measures fits with a cold and a warm
    cache (``cache`` in its records); chapter 7 shows the difference.
    """
    import jax

    path = Path(path).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


ROOT_ENV = "MLEJAX_ROOT"


def book_root(start=None) -> Path:
    """The book's root folder (the one holding ``_toc.yml``).

    ``$MLEJAX_ROOT`` if set, else the first folder holding ``_toc.yml`` from
    ``start`` (default: the working directory) upwards. It is found from where
    you run, never from where the package is installed, so a normal
    (non-editable) install works from a clone. Raises ``FileNotFoundError``
    saying how to point at it.
    """
    if os.environ.get(ROOT_ENV):
        root = Path(os.environ[ROOT_ENV]).expanduser().resolve()
        if not (root / "_toc.yml").is_file():
            raise FileNotFoundError(f"${ROOT_ENV}={root} holds no _toc.yml: not the book's root")
        return root
    here = Path.cwd() if start is None else Path(start)
    for folder in (here.resolve(), *here.resolve().parents):
        if (folder / "_toc.yml").is_file():
            return folder
    raise FileNotFoundError(
        f"no _toc.yml in {here} or above: run from inside a clone of the book, "
        f"or set ${ROOT_ENV} to the clone's folder"
    )


def results_dir(start=None) -> Path:
    """The book's stored benchmark records: ``book_root(start) / "results"``."""
    return book_root(start) / "results"


def require_x64() -> None:
    """Raise unless JAX computes in float64 (``jax_enable_x64``).

    Importing :mod:`mlejax_helpers.mixed_logit` (or :mod:`mlejax_helpers.apartments`)
    switches float64 on; this catches a caller who switched it off again afterwards.
    """
    import jax

    if not jax.config.jax_enable_x64:
        raise RuntimeError(
            "the mixed logit estimators compute in float64, but jax_enable_x64 is off: "
            "call mlejax_helpers.config.enable_x64() (or "
            "jax.config.update('jax_enable_x64', True)) before estimating"
        )
