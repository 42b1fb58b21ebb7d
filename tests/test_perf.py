"""The speed benchmark's pieces run and compare like with like (no timing is asserted)."""

import pandas as pd
import pytest
import torch

from bench import perf
from bench.harness import measure_estimates
from bench.problems import make_problem
from estimators import make_estimator


def test_perf_pieces_run_and_table_renders():
    row = perf.measure_case("gaussian_quadratic", {"dim": 1}, "score_function", 1, 2000, quick=True, rounds=2)
    for key in ("naive_per_s", "harness_per_s", "closed_form_per_s"):
        assert row[key] > 0
    table = perf.markdown_table(pd.DataFrame([row]))
    assert table.count("\n") == 2 and "gaussian_quadratic (dim 1)" in table and "harness ÷ closed" in table


def test_closed_form_reference_is_the_same_estimator():
    """The closed-form score function computes the harness's estimates: same variance within SE."""
    p = make_problem("gaussian_quadratic", {"dim": 2})
    R = 50_000
    gen = torch.Generator().manual_seed(0)
    eps = torch.randn((3, R, 2), generator=gen, dtype=torch.float64)
    x = p.mu + p.sigma * eps
    f = ((x - p.k) ** 2).sum(-1, keepdim=True)
    g = torch.cat([(f * eps).mean(0) / p.sigma, (f * (eps * eps - 1)).mean(0) / p.sigma], 1)
    closed_var = float(g.var(0).sum())
    row = measure_estimates(p, make_estimator("score_function"), n_samples=3, n_replicates=R, seed=1,
                            dtype=torch.float64).rows[-1]
    assert abs(row["variance"] - closed_var) < 4 * 2**0.5 * row["variance_se"]


def test_the_peer_computes_the_same_estimator():
    """optax.monte_carlo's score function (log-scale parameters) on the same problem: its mean
    estimate of d/dmu is the exact 2 (mu - k) within its standard error."""
    pytest.importorskip("optax.monte_carlo")
    peer = perf.Peer(make_problem("gaussian_quadratic"), "score_function", 4, 50_000)
    sums = peer.run()  # per chunk: (sum of estimates, sum of squares), coordinates (mu, log_scale)
    s1, s2 = sum(float(a[0]) for a, _ in sums), sum(float(b[0]) for _, b in sums)
    mean = s1 / 50_000
    sd = (s2 / 50_000 - mean**2) ** 0.5
    assert abs(mean - 2 * (1 - 3)) < 4 * sd / 50_000**0.5


def test_the_peers_compile_time_is_never_negative():
    """A second peer on the same shapes reuses XLA's compilation: its jit time is about 0, which
    timing noise once made -0.03 s in the README's table."""
    pytest.importorskip("optax.monte_carlo")
    p = make_problem("gaussian_quadratic")
    first = perf.Peer(p, "reparameterization", 2, 20_000)
    again = perf.Peer(p, "reparameterization", 2, 20_000)
    assert first.compile_s > 0 and again.compile_s >= 0


def test_perf_without_the_peer_says_how_to_get_it(monkeypatch, capsys):
    monkeypatch.setattr(perf.cli, "peers_available", lambda: False)
    monkeypatch.setattr(perf.cli, "cases", lambda quick, device="cpu": [("gaussian_quadratic", {"dim": 1}, "score_function", 1, 1000)])
    assert perf.main(["--quick", "--peers", "--no-memory", "--no-trainer", "--out", "/tmp/bench_perf_test.csv"]) == 0
    assert "pip install -e '.[peers]'" in capsys.readouterr().err


def test_chunk_sweep_times_every_method_at_each_chunk():
    df = perf.chunk_sweep("cpu", peers=False, exponents=(10, 12), n_replicates=5000)
    assert list(df["chunk_elements"]) == [1024, 4096]
    assert (df[["harness_per_s", "compiled_per_s", "closed_form_per_s"]] > 0).all().all()


def test_the_workloads_rows_run_and_their_ceilings_count_what_an_estimate_touches():
    from bench.perf.workloads import estimator_row, iwae_row, touched_per_estimate, workload_markdown
    assert touched_per_estimate(make_problem("digits_vae", {"n_data": 16}), 2) == 2 * 16 * 64
    assert touched_per_estimate(make_problem("sequence_policy"), 4) == 4 * 5 * 5 * 4  # P x L x (V + 1) x V logits
    rows = [estimator_row("digits_vae, one estimate", "digits_vae", {"n_data": 8}, "double_cv", {}, 2, 50, 1, 0.01, 2,
                          elements_per_s=1e9),
            iwae_row("dreg", 4, 200, 1, 0.01, 2)]
    for row in rows:
        assert row["harness_per_s"] > 0 and row["naive_per_s"] > 0
    assert rows[0]["ceiling_per_s"] == 1e9 / (2 * 8 * 64)
    table = workload_markdown(pd.DataFrame([{"workload": "digits_vae exact gradient", "n_data": 64, "codes": 4096,
                                             "enumeration_per_s": 1.0, "enumeration_gflops": 1.0, "matmul_gflops": 1.0,
                                             "enumeration_vs_matmul": 1.0, "enumeration_spread": 0.1}, *rows]))
    assert "ceiling ÷ naive" in table and "iwae" in table
