import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mlejax_helpers.bench import report
from mlejax_helpers.bench.records import read
from mlejax_helpers.bench.runner import run, run_one
from mlejax_helpers.bench.suites import SUITES, Config, configs_for

ROOT = Path(__file__).resolve().parents[1]
TINY = {"n": 200, "j": 4, "r": 4}


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
    for r in records:
        assert r["status"] == "ok", r["outcome"]
        assert r["fit_s_median"] > 0 and r["fit_s_min"] <= r["fit_s_median"] <= r["fit_s_max"]
        assert r["nit"] > 0 and r["peak_rss_bytes"] > 0 and r["max_abs_error"] < 5
        assert r["neg_loglik_common"] > 0 and r["common_draws"] == 20
        prov = r["provenance"]
        for field in ("cpu", "cores", "devices", "versions", "git_commit", "date", "command"):
            assert prov[field], field
        assert prov["versions"]["jax"] and prov["versions"]["scipy"]


def test_rerun_skips_finished_records(smoke_file):
    before = smoke_file.read_text()
    assert run(configs_for(["smoke"]), smoke_file, progress=False) == []
    assert smoke_file.read_text() == before


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


def test_report_tables_come_from_records(smoke_file):
    df = report.load(smoke_file)
    assert {"method", "cpu", "git_commit", "fit_s_median"} <= set(df.columns)
    assert len(report.provenance_table(df)) == 1
    assert report.fastest_converged(df, suite="smoke")["status"] == "ok"
    with pytest.raises(ValueError, match="no converged record"):
        report.fastest_converged(df, suite="table1")
    assert report.paper_table2("j").loc[500, "analytic"] == "OOM"
    assert report.PAPER_TABLE4.shape == (6, 3)


def test_stored_results_cover_every_suite():
    df = report.load(ROOT / "results" / "bench-cpu.jsonl")
    for suite in ("table1", "table2", "table4", "beyond"):
        assert set(c.key for c in configs_for([suite])) <= set(df.key), f"{suite} incomplete"


def test_benchmark_chapter_types_no_measured_number():
    nb = json.loads((ROOT / "notebooks" / "07_benchmark.ipynb").read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            text = "".join(cell["source"])
            found = re.findall(r"(?<![\w.$])\d+\.\d+(?![\w.])", text)
            assert not found, f"a number typed into the prose: {found}"
