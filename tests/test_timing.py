import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlejax_helpers.mixed_logit.sharding import run_with_host_devices
from mlejax_helpers.timing import Timing, format_seconds, time_call, time_compile, timing_table


def test_time_call_separates_first_call_from_runs():
    calls = []

    def slow_first(x):
        if not calls:
            time.sleep(0.2)
        calls.append(1)
        return x

    t = time_call(slow_first, 1.0, repeats=5)
    assert len(calls) == 6
    assert t.first_call_s >= 0.2
    assert t.median_s < 0.05
    assert t.compile_s > 0.15


class Pending:
    """A stand-in for an asynchronously computed array: the work happens on block."""

    def block_until_ready(self):
        time.sleep(0.05)
        return self


def test_time_call_waits_for_asynchronous_results():
    t = time_call(lambda: Pending(), repeats=3)  # returns at once; the wait is in block
    assert t.min_s >= 0.05 and t.first_call_s >= 0.05  # a stopwatch alone would see ~0
    t = time_call(lambda: {"a": [Pending(), 1.0]}, repeats=2)  # inside a pytree too
    assert t.min_s >= 0.05


def test_time_call_on_a_jitted_function():
    f = jax.jit(lambda x: (x @ x).sum())
    x = jnp.ones((300, 300))
    t = time_call(f, x, repeats=3, number=2)
    assert t.run_s.shape == (3,)
    assert t.first_call_s > t.median_s  # compilation happens on the first call


def test_time_compile_empties_the_caches_only_when_fresh():
    # in its own process: jax.clear_caches() here would make later tests in this worker
    # recompile, depending on the order they run in
    code = """
    import jax, jax.numpy as jnp
    from mlejax_helpers.timing import time_compile
    f = jax.jit(lambda x: jnp.sin(x).sum())
    f(jnp.ones(10))
    time_compile(f, jnp.ones(10), fresh=False)
    print(f._cache_size())
    time_compile(f, jnp.ones(10))
    print(f._cache_size())
    """
    assert run_with_host_devices(code, 1, timeout=120).split() == ["1", "0"]
    with pytest.raises(TypeError, match="jax.jit"):
        time_compile(np.sin, 1.0)


def test_bad_arguments():
    with pytest.raises(TypeError, match="fn must be callable"):
        time_call(3)
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        time_call(lambda: 1, repeats=0)


def test_timing_table_speedups():
    a = Timing(1.0, np.array([2.0, 2.0]), 1)
    b = Timing(1.0, np.array([0.5, 0.5]), 1)
    df = timing_table({"slow": a, "fast": b})
    assert df.loc["fast", "speed-up vs slowest"] == pytest.approx(4.0)
    with pytest.raises(TypeError):
        timing_table({"x": 1.0})


def test_format_seconds():
    assert format_seconds(2e-3) == "2.00 ms"
    assert format_seconds(1.5) == "1.5 s"
    assert format_seconds(3e-6).endswith("µs")
