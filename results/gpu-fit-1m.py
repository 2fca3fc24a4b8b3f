import faulthandler, resource, sys, time
faulthandler.dump_traceback_later(75, exit=True)
t0 = time.perf_counter()
def say(m):
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(f"{time.perf_counter()-t0:7.2f}s rss {rss:6.2f} GB  {m}", flush=True)
from mlejax_helpers import mixed_logit as ml
import jax
say(f"import {jax.devices()}")
d = ml.simulate(1_000_000, 20, 12, seed=0)
say(f"simulate; default_chunk={ml.default_chunk(d)} stats={jax.devices()[0].memory_stats().get('bytes_limit')}")
for k in range(2):
    r = ml.fit(d, gradient="analytic-fused", init="bhhh", chunk=None)
    say(f"fit {k}: compile {r.compile_s:.2f} run {r.run_s:.3f} nit {r.nit} {r.success} {r.neg_loglik}")
