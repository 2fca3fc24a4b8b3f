import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest

from mlejax_helpers.bench import __main__ as cli
from mlejax_helpers.bench import report, runner
from mlejax_helpers.bench.records import append, read
from mlejax_helpers.bench.runner import run, run_one
from mlejax_helpers.bench.suites import SUITES, Config, configs_for

ROOT = Path(__file__).resolve().parents[1]
TINY = {"n": 200, "j": 4, "r": 4}
pytestmark = pytest.mark.slow  # child processes


@pytest.fixture(scope="module")
def smoke_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "smoke.jsonl"
    records = run(configs_for(["smoke"]), out, progress=False, repeats=2, common_draws=20)
    assert len(records) == len(SUITES["smoke"]())
    return out


def test_smoke_writes_valid_records_with_provenance(smoke_file):
    lines = smoke_file.read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 4
    # our three fit the same data on the same draws: one optimum, scored alike on the
    # common draws; xlogit (its own draws) lands within 1 % of it
    ours = [r for r in records if r["kind"] == "mlejax"]
    common = np.array([r["neg_loglik_common"] for r in ours])
    assert len(ours) == 3 and np.ptp(common) < 1e-5 * common.mean(), common
    assert np.ptp([r["sigma_hat"] for r in ours]) < 1e-3
    peer = next(r for r in records if r["kind"] == "xlogit")
    assert peer["neg_loglik_common"] == pytest.approx(common.mean(), rel=0.01)
    for r in records:
        assert r["status"] == "ok", r["outcome"]
        assert r["nit"] > 0 and r["peak_rss_bytes"] > 0 and r["max_abs_error"] < 5
        assert r["common_draws"] == 20 and np.isfinite(r["max_abs_z_bhhh"])
        assert r["end_to_end_s_first"] >= r["fit_s_min"]  # end to end includes the fit
        # every record times the tool's import and its CPU seconds, ours and the peer's
        assert r["import_s"] > 0 and r["cpu_s_first"] > 0
        assert r["end_to_end_with_import_s"] == pytest.approx(
            r["import_s"] + r["end_to_end_s_first"]
        )
        prov = r["provenance"]
        for field in ("cpu", "cores", "devices", "versions", "git_commit", "date", "command"):
            assert prov[field], field
        assert prov["versions"]["jax"] and prov["versions"]["scipy"]
        assert prov["devices"][0].startswith("cpu")  # probed in a subprocess
        assert r["measured_at"] >= prov["date"] and r["fingerprint"]


def test_rerun_skips_finished_records(smoke_file):
    before = smoke_file.read_text()
    assert run(configs_for(["smoke"]), smoke_file, progress=False, repeats=2, common_draws=20) == []
    assert smoke_file.read_text() == before


def fake_child(tmp_path, body):
    """A child command that records its pid, then runs ``body`` (Python)."""
    pidfile = tmp_path / "child.pid"
    code = (  # the pid is written to a temporary name, then renamed: never seen half-written
        f"import os, sys, time\nopen({str(pidfile)!r} + '.tmp', 'w').write(str(os.getpid()))\n"
        f"os.replace({str(pidfile)!r} + '.tmp', {str(pidfile)!r})\n{body}"
    )
    return (sys.executable, "-c", code), pidfile


def assert_gone(pidfile):
    pid = int(pidfile.read_text())
    alive = psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    assert not alive, f"child {pid} was left running"


OK_RESULT = 'sys.stdin.read(); print("RESULT " + \'{"status": "ok", "fit_s_median": 1.0}\')'


@pytest.mark.parametrize(
    "body, limits, status, outcome",
    [
        ("time.sleep(60)", {"timeout": 1.0}, "timed out", "timed out after 1 s"),
        (
            "x = bytearray(400 * 2**20); time.sleep(60)",
            {"memory_limit": 100 * 2**20},
            "out of memory",
            "above the",
        ),
        ("sys.exit(3)", {}, "error", "error (exit 3)"),
        (
            "sys.stderr.write('jaxlib.XlaRuntimeError: RESOURCE_EXHAUSTED: Out of memory'); "
            "sys.exit(1)",
            {},
            "out of memory",
            "XLA RESOURCE_EXHAUSTED",
        ),
    ],
    ids=["hangs", "exceeds-memory", "crashes", "xla-oom"],
)
def test_a_bad_child_is_recorded_and_leaves_no_process(tmp_path, body, limits, status, outcome):
    child, pidfile = fake_child(tmp_path, body)
    r = run_one(Config("smoke", "mlejax", **TINY), child=child, **limits)
    assert r["status"] == status and outcome in r["outcome"], r
    assert_gone(pidfile)


def test_an_interrupt_is_recorded_and_kills_the_child(tmp_path, monkeypatch):
    child, pidfile = fake_child(tmp_path, "time.sleep(60)")

    def interrupted_watch(proc, timeout, memory_limit):
        while not pidfile.exists():
            time.sleep(0.02)
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "_watch", interrupted_watch)
    out = tmp_path / "r.jsonl"
    with pytest.raises(KeyboardInterrupt):
        run([Config("smoke", "mlejax", **TINY)], out, progress=False, child=child)
    assert_gone(pidfile)
    assert [r["status"] for r in read(out)] == ["interrupted"]


def test_sigterm_stops_the_child_records_the_run_and_a_resume_measures_it_again(tmp_path, capsys):
    child, pidfile = fake_child(tmp_path, "time.sleep(60)")
    out = tmp_path / "r.jsonl"
    code = (
        "from mlejax_helpers.bench.runner import run\n"
        "from mlejax_helpers.bench.suites import Config\n"
        f"run([Config('smoke', 'mlejax', n=200, j=4, r=4)], {str(out)!r}, progress=False, "
        f"child={tuple(child)!r})\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        parent.terminate()  # SIGTERM, as timeout(1), kill and SLURM send
        err = parent.communicate(timeout=60)[1]
    finally:
        if parent.poll() is None:
            parent.kill()
    assert parent.returncode != 0 and "Terminated" in err
    assert_gone(pidfile)  # the child did not outlive its parent
    [record] = read(out)
    assert record["status"] == "interrupted" and "SIGTERM" in record["outcome"]
    ok, _ = fake_child(tmp_path, OK_RESULT)
    again = run([Config("smoke", "mlejax", **TINY)], out, progress=False, child=ok)
    assert [r["status"] for r in again] == ["ok"]  # the interrupted run is measured again
    assert run([Config("smoke", "mlejax", **TINY)], out, progress=False, child=ok) == []
    assert f"skipping 1 run(s) already in {out}" in capsys.readouterr().err


def test_out_must_be_a_writable_file_before_anything_is_measured(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    for bad, why in ((tmp_path, "got the directory"), (tmp_path / "file" / "r.jsonl", "cannot")):
        with pytest.raises(SystemExit):
            cli.main(["smoke", "--out", str(bad), "--no-progress"])
        assert why in capsys.readouterr().err


def test_a_torn_file_resumes_and_failures_can_be_retried(tmp_path):
    ok, _ = fake_child(tmp_path, OK_RESULT)
    crash, _ = fake_child(tmp_path, "sys.exit(3)")
    cfgs = [Config("smoke", "mlejax", **TINY, seed=s) for s in (1, 2, 3)]
    out = tmp_path / "r.jsonl"
    run(cfgs[:1], out, progress=False, child=ok)
    with out.open("a") as fh:
        fh.write('{"key": "torn-by-a-kill", "sta')  # a record cut off mid-write
    with pytest.warns(UserWarning, match=r"skipped line\(s\) \[2\]"):
        new = run(cfgs, out, progress=False, child=crash)
    assert [r["seed"] for r in new] == [2, 3]  # the first was done; the torn line is no record
    with pytest.warns(UserWarning, match="torn records"):
        assert [r["status"] for r in read(out)] == ["ok", "error", "error"]
    with pytest.warns(UserWarning):
        assert run(cfgs, out, progress=False, child=ok) == []  # failures count as done...
    with pytest.warns(UserWarning):
        again = run(cfgs, out, progress=False, child=ok, retry_failed=True)  # ...unless retried
    assert [(r["seed"], r["status"]) for r in again] == [(2, "ok"), (3, "ok")]


def test_process_repeats_run_each_configuration_in_fresh_processes_shuffled(tmp_path):
    ok, _ = fake_child(tmp_path, OK_RESULT)
    out = tmp_path / "r.jsonl"
    cfgs = [Config("smoke", "mlejax", **TINY, seed=s) for s in (1, 2, 3)]
    records = run(cfgs, out, progress=False, child=ok, process_repeats=3, shuffle_seed=1)
    pairs = [(r["seed"], r["rep"]) for r in records]
    assert sorted(pairs) == [(s, k) for s in (1, 2, 3) for k in range(3)]
    assert pairs != sorted(pairs, key=lambda p: (p[1], p[0]))  # not in plain order
    assert run(cfgs, out, progress=False, child=ok, process_repeats=3) == []  # all done
    more = run(cfgs, out, progress=False, child=ok, process_repeats=4)
    assert sorted(r["rep"] for r in more) == [3, 3, 3]


def test_ties_are_called_from_the_spread():
    import pandas as pd

    rows = pd.DataFrame(
        {
            "key": ["a"] * 3 + ["b"] * 3 + ["c"] * 3,
            "label": list("aaabbbccc"),
            "suite": "x",
            "n": 1,
            "j": 1,
            "r": 1,
            "status": "ok",
            "fit_s_median": [1.0, 1.2, 1.1, 1.15, 1.3, 1.25, 2.0, 2.1, 2.2],
        }
    )
    summary = report.across_processes(rows)
    a, b, c = (summary[summary.label == x].iloc[0] for x in "abc")
    assert a["runs"] == 3 and a["low"] == 1.0
    assert report.verdict(a, b).startswith("tie")
    assert report.verdict(c, a) == "a faster, 1.91x"


def test_fastest_per_tool_picks_each_tools_fastest_converging_run():
    rec = [
        ("k1", "mlejax (analytic), L-BFGS-B", "ok", 2.0),
        ("k2", "mlejax (analytic), BFGS, MNL start", "ok", 1.0),
        ("k3", "xlogit, BFGS", "did not converge", 0.5),  # fastest, but not converged
        ("k4", "xlogit, L-BFGS-B", "ok", 3.0),
        ("k5", "ml.fit(model, data), device", "ok", 0.8),
    ]
    df = pd.DataFrame(
        [
            {"key": k, "label": lab, "status": st, "t": t * (1 + rep / 10), "rep": rep,
             "suite": "s", "n": 1, "j": 1, "r": 1, "neg_loglik": 10.0}
            for k, lab, st, t in rec
            for rep in range(3)
        ]
    )  # fmt: skip
    best = report.fastest_per_tool(df, "t", by=("r",))
    assert best.loc[(1, "mlejax"), "label"] == "ml.fit(model, data), device"
    assert best.loc[(1, "xlogit"), "label"] == "xlogit, L-BFGS-B"
    assert best.loc[(1, "xlogit"), "median"] == pytest.approx(3.3)
    assert report.tool_of("analytic-fused, jit f+g, BFGS, init bhhh") == "mlejax"
    assert report.tool_of("jaxlogit, L-BFGS-scipy") == "jaxlogit"
    assert report.start_of("mlejax (analytic), BFGS, MNL start") == "own"
    assert report.start_of("xlogit (defaults)") == "own"
    assert report.start_of("xlogit (ours-bfgs)") == "common"


def test_other_settings_are_not_resumed_from(tmp_path):
    ok, _ = fake_child(tmp_path, OK_RESULT)
    out = tmp_path / "r.jsonl"
    cfg = [Config("smoke", "mlejax", **TINY)]
    assert len(run(cfg, out, progress=False, child=ok, repeats=1)) == 1
    assert run(cfg, out, progress=False, child=ok, repeats=1) == []
    assert len(run(cfg, out, progress=False, child=ok, repeats=2)) == 1  # not comparable


def test_append_after_a_torn_line_starts_a_new_line(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_text('{"key": "a"}\n{"key": "b", "st')
    append(out, {"key": "c"})
    with pytest.warns(UserWarning, match=r"\[2\]"):
        assert [r["key"] for r in read(out)] == ["a", "c"]


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--repeats", "0"),
        ("--timeout", "0"),
        ("--common-draws", "0"),
        ("--memory-limit-gb", "0"),
        ("--repeats", "two"),
        ("--timeout", "-5"),
    ],
)
def test_cli_rejects_values_that_would_record_failures(flag, value, tmp_path):
    cmd = [sys.executable, "-m", "mlejax_helpers.bench", "smoke", "--out", str(tmp_path / "x")]
    bad = subprocess.run(cmd + [flag, value], capture_output=True, text=True)
    assert bad.returncode == 2 and f"argument {flag}" in bad.stderr, bad.stderr
    assert not (tmp_path / "x").exists()


def test_cli_needs_out_and_records_a_command_that_runs(tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit):
        cli.main(["smoke"])
    assert "--out is required" in capsys.readouterr().err
    seen = {}
    monkeypatch.setattr(cli, "run", lambda configs, out, **kw: seen.update(kw, out=out) or [])
    out = str(tmp_path / "my results.jsonl")
    cli.main(["smoke", "--out", out, "--repeats", "2"])
    argv = shlex.split(seen["command"])
    assert argv[:3] == ["python", "-m", "mlejax_helpers.bench"] and argv[3:] == [
        "smoke",
        "--out",
        out,
        "--repeats",
        "2",
    ]


def test_timeouts_are_recorded_and_the_run_goes_on(tmp_path):
    cfgs = [Config("smoke", "mlejax", **TINY, seed=s) for s in (1, 2)]
    out = tmp_path / "t.jsonl"
    records = run(cfgs, out, timeout=0.5, progress=False)
    assert [r["status"] for r in records] == ["timed out", "timed out"]
    assert records[0]["outcome"] == "timed out after 0.5 s"
    assert len(read(out)) == 2


def test_memory_limit_is_recorded():
    r = run_one(Config("smoke", "mlejax", **TINY), memory_limit=30 * 2**20)
    assert r["status"] == "out of memory"
    assert "above the" in r["outcome"]


def test_errors_in_the_child_are_recorded():
    r = run_one(Config("smoke", "no-such-kind", **TINY))
    assert r["status"] == "error" and "KeyError" in r["outcome"]


def test_gpu_rows_are_skipped_without_a_gpu():
    r = run_one(Config("beyond", "mlejax", **TINY, device="gpu"), has_gpu=False)
    assert r["status"] == "skipped" and "GPU" in r["outcome"]


def test_keys_are_stable_and_distinct():
    cfgs = configs_for(["all"])
    assert len({c.key for c in cfgs}) == len(cfgs)
    assert Config("x", "mlejax", 1, 2, 3, note="a").key == Config("x", "mlejax", 1, 2, 3).key
    with pytest.raises(ValueError, match="unknown suite"):
        configs_for(["table9"])


def test_cli_help_and_list():
    cmd = [sys.executable, "-m", "mlejax_helpers.bench"]
    help_text = subprocess.run(cmd + ["--help"], capture_output=True, text=True, check=True).stdout
    for name in ("table1", "table2", "table4", "beyond", "smoke", "all"):
        assert name in help_text
    listing = subprocess.run(cmd + ["smoke", "--list"], capture_output=True, text=True, check=True)
    assert len(listing.stdout.strip().splitlines()) == 4
    bad = subprocess.run(cmd + ["tableX"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown suite" in bad.stderr


def test_collapse_gives_one_row_per_configuration_with_its_spread():
    import pandas as pd

    rows = pd.DataFrame(
        {
            "key": ["a"] * 3 + ["b"] * 3,
            "n": 10,
            "nit": [5, 5, 5, 7, 7, 9],
            "status": ["ok"] * 5 + ["timed out"],
            "outcome": ["converged"] * 5 + ["timed out after 9 s"],
            "fit_s_median": [1.0, 3.0, 2.0, 4.0, 6.0, np.nan],
            "end_to_end_s_first": [2.0, 4.0, 3.0, 5.0, 9.0, np.nan],
        }
    )
    out = report.collapse(rows).set_index("key")
    assert out.loc["a", "fit_s_median"] == 2.0 and out.loc["a", "fit_s_median_high"] == 3.0
    assert out.loc["a", "status"] == "ok" and out.loc["a", "runs"] == 3 and out.loc["a", "n"] == 10
    b = out.loc["b"]  # the converged runs give the times; the failed one is not hidden
    assert (b["fit_s_median"], b["end_to_end_s_first_low"], b["nit"]) == (5.0, 5.0, 7.0)
    assert b["status"] == "timed out" and b["outcome"].startswith("2 of 3 runs converged")
    assert report.cell(b) == "2 of 3 runs converged; timed out after 9 s"


def test_report_tables_come_from_records(smoke_file):
    df = report.load(smoke_file)
    assert {"method", "cpu", "git_commit", "fit_s_median"} <= set(df.columns)
    assert len(report.provenance_table(df)) == 1
    assert report.fastest_converged(df, suite="smoke")["status"] == "ok"
    with pytest.raises(ValueError, match="no converged record"):
        report.fastest_converged(df, suite="table1")


def test_provenance_table_has_no_machine_paths_and_no_nan():
    df = report.load(ROOT / "results" / "bench-cpu.jsonl")
    table = report.provenance_table(df)
    text = table.to_string()
    assert "/root" not in text and "/work" not in text and "NaN" not in text, text
    assert (table["gpu"] == "none").all()
    assert report.portable_command("/usr/bin/python3 /x/mlejax_helpers/bench/__main__.py all") == (
        "python -m mlejax_helpers.bench all"
    )


def test_stored_results_cover_every_suite():
    df = report.load(ROOT / "results" / "bench-cpu.jsonl")
    for suite in ("table1", "table2", "table4", "beyond"):
        assert set(c.key for c in configs_for([suite])) <= set(df.key), f"{suite} incomplete"
    h2h = report.load(ROOT / "results" / "bench-cpu-headtohead.jsonl")
    assert set(c.key for c in configs_for(["headtohead"])) <= set(h2h.key)
    for records in (df, h2h):
        fits = records[(records.status == "ok") & (records.kind != "evaluation")]
        assert (fits.end_to_end_s_first >= fits.fit_s_median).all()  # both, in every fit
        assert (records.groupby("key").size() >= 3).all()  # each in 3 fresh processes
    kernels = report.load(ROOT / "results" / "bench-cpu-kernels.jsonl")
    assert set(c.key for c in configs_for(["kernels"])) <= set(kernels.key)
    assert (kernels.groupby("key").size() >= 3).all()
    # the two kernels compute one function: the same value and gradient on the same draws
    assert (kernels.value_rel_diff < 1e-12).all() and (kernels.grad_max_abs_diff < 1e-8).all()
    sharding = report.load(ROOT / "results" / "bench-cpu-panelsharding-value.jsonl")
    assert set(c.key for c in configs_for(["panelsharding"])) <= set(sharding.key)
    assert (sharding.devices_seen == sharding.devices).all()  # the forced devices were seen
    search = report.load(ROOT / "results" / "bench-cpu-signsearch.jsonl")
    assert set(c.key for c in configs_for(["signsearch"])) <= set(search.key)
    assert (search.groupby("key").size() >= 3).all() and search.import_s.notna().all()


def test_tables_beside_the_papers_pair_each_of_our_cells_with_the_papers():
    df = report.load(ROOT / "results" / "bench-cpu.jsonl")
    t2 = report.table2_beside_paper(df)
    assert list(t2.index) == [
        ("N", 10_000),
        ("N", 50_000),
        ("N", 100_000),
        ("J", 100),
        ("J", 500),
        ("R", 50),
        ("R", 100),
    ]  # the base case once
    for dim, value in t2.index:
        ours, paper = report.table2(df, dim.lower(), "cell"), report.paper_table2(dim.lower())
        for method, short in (("autodiff", "autodiff"), ("finite-differences", "FD")):
            assert t2.loc[(dim, value), (method, "ours")] == ours.loc[value, short]
            assert t2.loc[(dim, value), (method, "paper")] == paper.loc[value, method]
        assert t2.loc[(dim, value), ("xlogit", "ours")].endswith(")")  # names its variant
    t4 = report.table4_beside_paper(df)
    assert t4.loc["Newton-CG", ("finite-differences", "ours")] == "not run"
    assert t4.loc["BFGS", ("autodiff", "paper")] == report.PAPER_TABLE4.loc["BFGS", "autodiff"]


def test_results_are_found_from_the_working_directory(tmp_path, monkeypatch):
    from mlejax_helpers import config

    monkeypatch.delenv("MLEJAX_ROOT", raising=False)
    monkeypatch.chdir(ROOT / "notebooks")
    assert config.results_dir() == ROOT / "results"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="set \\$MLEJAX_ROOT"):
        config.book_root()
    monkeypatch.setenv("MLEJAX_ROOT", str(ROOT))
    assert config.book_root() == ROOT


def test_a_warm_compilation_cache_is_filled_by_another_process(tmp_path, monkeypatch):
    import jax

    from mlejax_helpers.bench import child

    cfg = Config("t", "mlejax", 200, 4, 3, gradient="analytic-fused", init="bhhh", cache="warm")
    before = jax.config.jax_compilation_cache_dir
    monkeypatch.setattr(child.tempfile, "mkdtemp", lambda prefix: str(tmp_path / "cache"))
    try:
        folder = child._compilation_cache(cfg, common_draws=5)
        assert folder == (tmp_path / "cache").resolve()
        assert any(folder.iterdir()), "the filling process wrote no compiled program"
        assert jax.config.jax_compilation_cache_dir == str(folder)
    finally:
        jax.config.update("jax_compilation_cache_dir", before)
    assert child._compilation_cache(Config("t", "mlejax", 200, 4, 3), 5) is None
    # adding the field kept the stored records' keys: this one is in bench-cpu-headtohead.jsonl
    stored = Config(
        "headtohead",
        "mlejax",
        10_000,
        20,
        12,
        gradient="analytic-fused",
        init="bhhh",
        draws="xlogit-halton",
    )
    assert stored.key == "b5bf1367ef7dd9bc"
    assert Config(**{**stored.to_dict(), "cache": "warm"}).key != stored.key


def test_the_value_program_the_benchmark_prices_is_the_estimators_value():
    import jax

    from mlejax_helpers.bench.child import _value_program
    from mlejax_helpers.mixed_logit import panel_data
    from mlejax_helpers.mixed_logit.fitting import evaluation_program, place_persons
    from mlejax_helpers.mixed_logit.model import default_start
    from mlejax_helpers.mixed_logit.sharding import consumer_mesh

    model, data = panel_data.electricity()
    draws = panel_data.panel_draws(data.n_persons, 20, len(model.random), "xlogit-halton")
    mesh = consumer_mesh(jax.devices()[:1])
    placed = place_persons(data.arrays, draws, mesh)
    theta = default_start(model) + 0.1
    value = float(_value_program(model)(theta, *placed))
    for gradient in ("analytic", "autodiff"):
        program = evaluation_program(model, mesh, gradient)
        assert value == pytest.approx(float(program(theta, *placed)[0]))
