"""The likelihood and fit over several devices (forced host devices, in a subprocess) and
several processes (jax.distributed on 127.0.0.1, gloo collectives)."""

import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mlejax_helpers import mixed_logit as ml
from mlejax_helpers.mixed_logit.sharding import consumer_mesh, shard, start_processes, to_host

pytestmark = pytest.mark.slow  # subprocesses


def run_python(code, env=None, timeout=300):
    full_env = {**os.environ, **(env or {})}
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


FOUR_DEVICES = """
import numpy as np, jax
import mlejax_helpers.mixed_logit as ml
from mlejax_helpers.mixed_logit.sharding import consumer_mesh, shard, to_host
assert len(jax.devices()) == 4
d = ml.simulate(1001, 6, 8, seed=5)  # 1001 = 4 * 250 + 1: padding needed
theta = ml.THETA_TRUE + 0.1
v0, g0 = jax.jit(ml.value_and_grad_analytic)(theta, d)
placed = shard(d, consumer_mesh())
assert placed.n == 1001 and placed.data.shape[0] == 1004
assert len(placed.data.draws.sharding.device_set) == 4
for fn in (ml.value_and_grad_analytic, jax.value_and_grad(ml.neg_loglik)):
    v, g = jax.jit(fn)(theta, placed.data, placed.weight)
    assert abs(float(v) - float(v0)) <= 1e-12 * abs(float(v0)), (float(v), float(v0))
    np.testing.assert_allclose(to_host(g), g0, rtol=1e-12, atol=1e-9)
one = ml.fit(d, gradient="analytic-fused", init="bhhh", gtol=1e-9)
four = ml.fit(d, gradient="analytic-fused", init="bhhh", gtol=1e-9, mesh=consumer_mesh())
np.testing.assert_allclose(four.theta, one.theta, rtol=0, atol=1e-8)
assert four.success and abs(four.neg_loglik - one.neg_loglik) < 1e-8 * one.neg_loglik
auto = ml.fit(d, gradient="autodiff", mesh=consumer_mesh())
np.testing.assert_allclose(auto.theta, one.theta, atol=1e-5)
print("four devices agree")
"""


def test_four_devices_give_the_single_device_likelihood_gradient_and_fit():
    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    assert "four devices agree" in run_python(FOUR_DEVICES, env)


def test_padding_leaves_the_likelihood_unchanged():
    d = ml.simulate(37, 4, 5, seed=2)
    placed = shard(d, consumer_mesh())
    assert placed.n == 37
    theta = ml.THETA_TRUE - 0.2
    padded = ml.neg_loglik(theta, placed.data, placed.weight)
    assert float(padded) == pytest.approx(float(ml.neg_loglik(theta, d)), rel=1e-14)
    from mlejax_helpers.mixed_logit.sharding import _padded

    bigger, weight = _padded(d, 40)
    assert bigger.shape[0] == 40 and weight.sum() == 37
    assert float(ml.neg_loglik(theta, bigger, weight)) == pytest.approx(float(padded), rel=1e-14)
    assert float(ml.neg_loglik(theta, bigger)) != pytest.approx(float(padded), rel=1e-6)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PROCESS = """
import sys, numpy as np
from mlejax_helpers.mixed_logit.sharding import start_processes
pid, port = int(sys.argv[1]), sys.argv[2]
start_processes(f"127.0.0.1:{port}", 2, pid, timeout_s=60)
import jax
import mlejax_helpers.mixed_logit as ml
from mlejax_helpers.mixed_logit.sharding import consumer_mesh, shard, to_host
d = ml.simulate(301, 5, 6, seed=9)
mine = d._replace(**{k: np.asarray(v)[pid::2] for k, v in d._asdict().items() if k != "theta_true"})
placed = shard(mine, consumer_mesh())
theta = ml.THETA_TRUE + 0.05
v, g = jax.jit(ml.value_and_grad_analytic)(theta, placed.data, placed.weight)
fit = ml.fit(mine, gradient="analytic-fused", init="bhhh", gtol=1e-9, mesh=consumer_mesh())
print("RESULT", float(to_host(v)), *to_host(g).tolist(), *fit.theta.tolist(), flush=True)
"""


def test_two_processes_reproduce_the_single_process_likelihood(tmp_path):
    script = tmp_path / "process.py"
    script.write_text(textwrap.dedent(PROCESS))
    port = str(free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(pid), port],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for pid in (0, 1)
    ]
    try:
        outs = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    results = []
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
        line = next(x for x in out.splitlines() if x.startswith("RESULT"))
        results.append(np.array(line.split()[1:], dtype=float))
    d = ml.simulate(301, 5, 6, seed=9)
    theta = ml.THETA_TRUE + 0.05
    import jax

    v, g = jax.jit(ml.value_and_grad_analytic)(theta, d)
    single = ml.fit(d, gradient="analytic-fused", init="bhhh", gtol=1e-9)
    for r in results:
        assert r[0] == pytest.approx(float(v), rel=1e-12)
        np.testing.assert_allclose(r[1:7], np.asarray(g), rtol=1e-10, atol=1e-9)
        np.testing.assert_allclose(r[7:], single.theta, atol=1e-8)


def test_an_unreachable_coordinator_is_named():
    port = free_port()  # nothing listens there
    code = f"""
    from mlejax_helpers.mixed_logit.sharding import start_processes
    try:
        start_processes("127.0.0.1:{port}", 2, 1, timeout_s=3)
    except RuntimeError as err:
        print("ERROR", err)
    """
    out = run_python(code, timeout=120)
    assert f"could not reach the coordinator at 127.0.0.1:{port}" in out, out


def test_bad_set_ups_are_refused():
    d = ml.simulate(20, 3, 2)
    with pytest.raises(TypeError, match="mesh must be a Mesh"):
        shard(d, "all")
    with pytest.raises(TypeError, match="mesh must be a jax.sharding.Mesh"):
        ml.fit(d, mesh=4)
    with pytest.raises(ValueError, match="process_id must be in 0..1"):
        start_processes("127.0.0.1:1234", 2, 2)
    with pytest.raises(ValueError, match="coordinator must be 'host:port'"):
        start_processes("localhost", 2, 0)
    with pytest.raises(ValueError, match="weight must be >= 0"):
        ml.neg_loglik(ml.THETA_TRUE, d, -np.ones(20))
    assert to_host(np.ones(2)).shape == (2,)
