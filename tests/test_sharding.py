"""The likelihood and fit over several devices (forced host devices, in a subprocess) and
several processes (jax.distributed on 127.0.0.1, gloo collectives)."""

import json
import socket
import subprocess
import sys

import numpy as np
import pytest

from mlejax_helpers import apartments as apt
from mlejax_helpers import mixed_logit as ml
from mlejax_helpers.apartments import shard
from mlejax_helpers.mixed_logit.sharding import (
    consumer_mesh,
    run_with_host_devices,
    start_processes,
    to_host,
)

pytestmark = pytest.mark.slow  # subprocesses


FOUR_DEVICES = """
import numpy as np, jax
import mlejax_helpers.apartments as apt
from mlejax_helpers.apartments import shard
from mlejax_helpers.mixed_logit.sharding import consumer_mesh, to_host
assert len(jax.devices()) == 4
d = apt.simulate(1001, 6, 8, seed=5)  # 1001 = 4 * 250 + 1: padding needed
theta = apt.THETA_TRUE + 0.1
v0, g0 = jax.jit(apt.value_and_grad_analytic)(theta, d)
placed = shard(d, consumer_mesh())
assert placed.n == 1001 and placed.data.shape[0] == 1004
assert len(placed.data.draws.sharding.device_set) == 4
for fn in (apt.value_and_grad_analytic, jax.value_and_grad(apt.neg_loglik)):
    v, g = jax.jit(fn)(theta, placed.data, placed.weight)
    assert abs(float(v) - float(v0)) <= 1e-12 * abs(float(v0)), (float(v), float(v0))
    np.testing.assert_allclose(to_host(g), g0, rtol=1e-12, atol=1e-9)
one = apt.fit(d, gradient="analytic-fused", init="bhhh", gtol=1e-9)
four = apt.fit(d, gradient="analytic-fused", init="bhhh", gtol=1e-9, mesh=consumer_mesh())
np.testing.assert_allclose(four.theta, one.theta, rtol=0, atol=1e-8)
assert four.success and abs(four.neg_loglik - one.neg_loglik) < 1e-8 * one.neg_loglik
auto = apt.fit(d, gradient="autodiff", mesh=consumer_mesh())
np.testing.assert_allclose(auto.theta, one.theta, atol=1e-5)
print("four devices agree")
"""


def test_four_devices_give_the_single_device_likelihood_gradient_and_fit():
    assert "four devices agree" in run_with_host_devices(FOUR_DEVICES, 4, timeout=300)


def test_padding_leaves_the_likelihood_unchanged():
    d = apt.simulate(37, 4, 5, seed=2)
    placed = shard(d, consumer_mesh())
    assert placed.n == 37
    theta = apt.THETA_TRUE - 0.2
    padded = apt.neg_loglik(theta, placed.data, placed.weight)
    assert float(padded) == pytest.approx(float(apt.neg_loglik(theta, d)), rel=1e-14)
    from mlejax_helpers.apartments.placement import _padded

    bigger, weight = _padded(d, 40)
    assert bigger.shape[0] == 40 and weight.sum() == 37
    assert float(apt.neg_loglik(theta, bigger, weight)) == pytest.approx(float(padded), rel=1e-14)
    assert float(apt.neg_loglik(theta, bigger)) != pytest.approx(float(padded), rel=1e-6)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_reproduce_the_single_process_fit():
    """Chapter 8's model over two processes, each reading the same data: the mesh of both
    processes' devices splits the persons, the device loop runs the optimiser, and both
    report the one-process fit."""
    port = str(free_port())
    cmd = [sys.executable, "-m", "mlejax_helpers.mixed_logit", "--coordinator", f"127.0.0.1:{port}"]
    cmd += ["--num-processes", "2", "--draws", "10"]
    procs = [
        subprocess.Popen(
            cmd + ["--process-id", str(pid)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for pid in (0, 1)
    ]
    try:
        outs = [p.communicate(timeout=240) for p in procs]
    finally:  # never leave a process behind, whatever failed
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    reports = []
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
        line = next(x for x in out.splitlines() if x.startswith("RESULT "))
        reports.append(json.loads(line[7:]))
    model, data = ml.panel_data.electricity()
    single = ml.fit(model, data, n_draws=10, draws="xlogit-halton", method="device")
    assert single.success
    for r in reports:
        assert r["devices"] == 2 and r["success"] and r["names"] == list(single.names)
        assert r["loglik"] == pytest.approx(single.loglik, rel=1e-10)
        np.testing.assert_allclose(r["theta"], single.theta, atol=1e-6)
        np.testing.assert_allclose(r["se"], single.summary()["se"], rtol=1e-6)


def _processes(*argsets, timeout=120):
    """Run ``python -m mlejax_helpers.mixed_logit`` once per argument list; ``(rc, stderr)``."""
    base = [sys.executable, "-m", "mlejax_helpers.mixed_logit", "--draws", "5"]
    procs = [
        subprocess.Popen(base + a, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for a in argsets
    ]
    try:
        outs = [p.communicate(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return [(p.returncode, err) for p, (_, err) in zip(procs, outs, strict=True)]


def test_bad_distributed_set_ups_end_with_a_clear_error_never_a_hang_or_abort():
    port = free_port()
    at = ["--coordinator", f"127.0.0.1:{port}", "--timeout", "3"]
    alone = _processes(at + ["--num-processes", "2", "--process-id", "0"])
    assert alone[0][0] == 2, alone  # not 134 (abort) and no hang
    assert f"waited 3 s at 127.0.0.1:{port + 1} for process(es) [1]" in alone[0][1]
    lost = _processes(at + ["--num-processes", "2", "--process-id", "1"])
    assert lost[0][0] == 2 and f"could not reach the coordinator at 127.0.0.1:{port}" in lost[0][1]
    at[-1] = "30"
    counts = _processes(
        at + ["--num-processes", "2", "--process-id", "0"],
        at + ["--num-processes", "3", "--process-id", "1"],
    )
    for rc, err in counts:
        assert rc == 2 and "started with --num-processes 3, process 0 with 2" in err, counts
        assert "Traceback" not in err


def test_bad_set_ups_are_refused():
    d = apt.simulate(20, 3, 2)
    with pytest.raises(TypeError, match="mesh must be a Mesh"):
        shard(d, "all")
    with pytest.raises(TypeError, match="mesh must be a jax.sharding.Mesh"):
        apt.fit(d, mesh=4)
    with pytest.raises(ValueError, match="process_id must be in 0..1"):
        start_processes("127.0.0.1:1234", 2, 2)
    with pytest.raises(ValueError, match="coordinator must be 'host:port'"):
        start_processes("localhost", 2, 0)
    with pytest.raises(ValueError, match="numeric port"):
        start_processes("localhost:http", 2, 1)
    for bad in ("gpu0", "0,,1", [0, 0], [-1], [True], []):
        with pytest.raises(ValueError, match="local_device_ids must be"):
            start_processes("127.0.0.1:1234", 2, 0, local_device_ids=bad)
    with pytest.raises(ValueError, match="weight must be >= 0"):
        apt.neg_loglik(apt.THETA_TRUE, d, -np.ones(20))
    assert to_host(np.ones(2)).shape == (2,)


def test_the_electricity_fit_on_two_devices_equals_the_one_device_fit():
    # the process starts with one CPU device; config.cpu_devices asks for two before JAX
    # starts, and fit's default mesh ("auto") then splits the persons over both
    code = """
    from mlejax_helpers import config
    config.cpu_devices(2)
    import json, jax
    import numpy as np
    from mlejax_helpers import mixed_logit as ml
    from mlejax_helpers.mixed_logit.sharding import consumer_mesh
    df = ml.load_electricity()
    df = df[df.id <= 45]  # 45 persons: an odd count, so one zero-weight person pads the mesh
    attrs = ml.panel_data.ELECTRICITY_ATTRIBUTES
    model = ml.MixedLogit(attrs, {a: "n" for a in attrs})
    data = ml.from_long(df, model, **ml.panel_data.ELECTRICITY_COLUMNS)
    out = {}
    assert len(jax.devices()) == 2
    for n, mesh in ((1, None), (2, "auto"), (3, consumer_mesh(jax.devices()[:1]))):
        res = ml.fit(model, data, n_draws=10, mesh=mesh)
        out[n] = [res.loglik, res.theta.tolist(), res.success, np.diag(res.cov()).tolist(),
                  res.devices]
    # one evaluation of fit's program, the same theta, on the mesh of both and of one
    from mlejax_helpers.mixed_logit.fitting import evaluation_program, place_persons
    draws = ml.panel_draws(data.n_persons, 10, len(model.random), "halton")
    for name, mesh in (("p1", consumer_mesh(jax.devices()[:1])), ("p2", consumer_mesh())):
        placed = place_persons(data.arrays, draws, mesh)
        theta = np.asarray(out[1][1]) + 0.05
        value, grad, _ = evaluation_program(model, mesh, "analytic")(theta, *placed)
        value_ad, grad_ad = evaluation_program(model, mesh, "autodiff")(theta, *placed)
        out[name] = [float(value), np.asarray(grad).tolist(), float(value_ad),
                     np.asarray(grad_ad).tolist()]
    print(json.dumps(out))
    """
    out = json.loads(run_with_host_devices(code, 1, timeout=300).strip().splitlines()[-1])
    one, two = out["1"], out["2"]
    assert (one[4], two[4], out["3"][4]) == (1, 2, 1)  # None: the off switch; auto: both
    assert one[2] and two[2]  # both converged
    assert two[0] == pytest.approx(one[0], rel=1e-10)
    np.testing.assert_allclose(two[1], one[1], rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(two[3], one[3], rtol=1e-6)
    # the per-core mesh computes what one device computes: value and gradient to 1e-12
    assert out["p2"][0] == pytest.approx(out["p1"][0], rel=1e-12)
    g1, g2 = np.array(out["p1"][1]), np.array(out["p2"][1])
    np.testing.assert_allclose(g2, g1, rtol=0, atol=1e-12 * max(1.0, np.abs(g1).max()))
    # autodiff on the mesh: the same value and gradient (each device's share summed once)
    for p in ("p1", "p2"):
        assert out[p][2] == pytest.approx(out[p][0], rel=1e-12)
        np.testing.assert_allclose(out[p][3], out[p][1], rtol=1e-9, atol=1e-9)
