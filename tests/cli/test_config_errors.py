"""Bad input: each gets a one-line message naming the key and what is allowed, recorded as the
job's status (the job's row is still written)."""

import pandas as pd
import pytest
import torch

from bench.problems import registry as problem_registry
from bench.problems.base import Problem
from bench.run import run_job as run_job_with_note
from torch import distributions as D


def run_job(cfg, out_dir):
    """One job's rows (``bench.run.run_job`` also says whether they were resumed, and a note)."""
    return run_job_with_note(cfg, out_dir)[0]

BAD = [
    (["n_samples=0"], "n_samples", "invalid_config"),
    (["n_samples=1.5"], "n_samples", "invalid_config"),
    (["n_replicates=1"], "n_replicates", "invalid_config"),
    (["problem.sigma=0"], "problem.sigma", "invalid_config"),
    (["problem.sigma=-1"], "problem.sigma", "invalid_config"),
    (["problem.dim=0"], "problem.dim", "invalid_config"),
    (["problem=gaussian_exp", "problem.k=-1"], "problem.k", "invalid_config"),
    (["dtype=float16"], "dtype", "invalid_config"),
    (["device=tpu"], "device", "invalid_config"),
    (["estimator=score_function_baseline", "estimator.baseline=loo", "n_samples=1"], "n_samples", "invalid_config"),
    (["estimator=score_function_baseline", "estimator.baseline=mean"], "estimator.baseline", "invalid_config"),
    (["estimator=score_function_baseline", "estimator.decay=1.0"], "estimator.decay", "invalid_config"),
    (["problem=policy_mlp", "problem.init_seed=-1"], "problem.init_seed", "invalid_config"),
]


@pytest.mark.parametrize("overrides,key,status", BAD, ids=[" ".join(b[0]) for b in BAD])
def test_bad_input_is_one_line_naming_the_key(make_cfg, tmp_path, overrides, key, status):
    df = run_job(make_cfg(*overrides, "timing=false"), tmp_path)
    assert list(df["status"]) == [status]
    message = df["message"].iloc[0]
    assert message.startswith(f"{key}=") and "\n" not in message and "not allowed" in message
    assert (tmp_path / "result.csv").is_file()
    assert pd.read_csv(tmp_path / "result.csv")["status"].iloc[0] == status


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when CUDA is absent")
def test_cuda_unavailable(make_cfg, tmp_path):
    df = run_job(make_cfg("device=cuda"), tmp_path)
    assert df["status"].iloc[0] == "invalid_config"
    assert df["message"].iloc[0].startswith("device='cuda'") and "CUDA is not available" in df["message"].iloc[0]


class _CoinFlip(Problem):
    """A discrete problem (no rsample) to check that the reparameterization estimator is refused."""

    name = "coin_flip_test"
    identity_encode = True

    def __init__(self):
        pass

    def init_params(self, device, dtype):
        return {"logits": torch.zeros(1, device=device, dtype=dtype)}

    def distribution(self, phi):
        return D.Independent(D.Bernoulli(logits=phi["logits"]), 1)

    def cost(self, x):
        return x.sum(-1)

    def expected_cost(self, dist):
        return dist.base_dist.probs.sum(-1)


def test_not_applicable_is_refused_with_reason(make_cfg, tmp_path, monkeypatch):
    monkeypatch.setitem(problem_registry.PROBLEMS, "coin_flip_test", _CoinFlip)
    cfg = make_cfg("estimator=reparameterization", "problem=gaussian_quadratic", "timing=false")
    cfg.problem = {"name": "coin_flip_test"}
    df = run_job(cfg, tmp_path)
    assert df["status"].iloc[0] == "not_applicable"
    assert "reparameterization needs rsample" in df["message"].iloc[0]
    # ... while the score function runs on it, and is unbiased there too.
    cfg.estimator = {"name": "score_function"}
    cfg.n_replicates = 20000
    df = run_job(cfg, tmp_path)
    assert set(df["status"]) == {"ok"}
    assert not df["bias_significant"].any()


def test_same_seed_same_table(make_cfg, tmp_path):
    cols = ["param", "variance", "variance_se", "bias", "bias_se", "mse", "true_grad_norm"]
    a = run_job(make_cfg("problem=policy_mlp", "n_replicates=3000", "timing=false"), tmp_path / "a")
    b = run_job(make_cfg("problem=policy_mlp", "n_replicates=3000", "timing=false"), tmp_path / "b")
    pd.testing.assert_frame_equal(a[cols], b[cols])
    c = run_job(make_cfg("problem=policy_mlp", "n_replicates=3000", "timing=false", "seed=1"), tmp_path / "c")
    assert not a["variance"].equals(c["variance"])


def test_result_columns(make_cfg, tmp_path):
    df = run_job(make_cfg("estimator=score_function_baseline", "n_replicates=2000", "timing_min_run_time=0.01"), tmp_path)
    required = ("estimator problem estimator.baseline estimator.decay problem.mu problem.sigma problem.k problem.dim "
                "n_samples n_replicates seed device dtype param dim true_grad_norm variance variance_se bias bias_se "
                "bias_significant mse evals_per_estimate work_variance time_per_estimate_s status message").split()
    assert [c for c in required if c not in df] == []
    assert list(df["param"]) == ["mu", "sigma", "total"]
    assert (df["evals_per_estimate"] == 10).all()
    assert (df["work_variance"] == df["variance"] * 10).all()
    assert (df["time_per_estimate_s"] > 0).all()


def test_chunk_elements_null_is_the_devices_default_and_recorded_as_used(make_cfg, tmp_path):
    """``chunk_elements: null`` (the default) chunks as 2^19 does on a CPU, same rows, and the rows
    record 2^19, the value used (so a resumed run matches either spelling)."""
    from bench.harness import CUDA_CHUNK_ELEMENTS, DEFAULT_CHUNK_ELEMENTS, default_chunk_elements

    assert default_chunk_elements("cpu") == DEFAULT_CHUNK_ELEMENTS == 2**19
    assert default_chunk_elements("cuda:0") == CUDA_CHUNK_ELEMENTS
    cols = ["param", "variance", "variance_se", "bias"]
    auto = run_job(make_cfg("n_replicates=3000", "timing=false"), tmp_path / "a")
    given = run_job(make_cfg("n_replicates=3000", "timing=false", f"chunk_elements={2**19}"), tmp_path / "b")
    pd.testing.assert_frame_equal(auto[cols], given[cols])
    assert (auto["chunk_elements"] == 2**19).all() and auto["status"].eq("ok").all()
    assert run_job(make_cfg("n_replicates=3000", "timing=false", "chunk_elements=0"),
                   tmp_path / "c")["message"].iloc[0].startswith("chunk_elements")
