"""Memory figures of the speed benchmark: bytes allocated per estimate, the peak resident memory
of a large run, and the peak GPU memory of heavy pairs."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import torch
from torch.profiler import ProfilerActivity, profile

from ..harness import Harness
from ..presets import build


@contextlib.contextmanager
def _quiet_stderr():
    """The process's stderr (file descriptor 2) sent to /dev/null: the profiler's C++ side prints
    its start and stop there, which would land among the benchmark's lines."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def bytes_per_estimate(harness: Harness, n_replicates: int) -> float:
    """Bytes of tensors allocated per estimate by one run of ``harness`` (the torch profiler's
    allocation events, frees not subtracted): what the run writes to memory, the input of the
    memory-bandwidth bound a GPU would put on it (it reads back about as much)."""
    harness.run(n_replicates)  # compiles, if compiled
    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        harness.run(n_replicates)
    allocated = sum(e.cpu_memory_usage for e in prof.events() if e.cpu_memory_usage > 0)
    return allocated / n_replicates


def peak_memory_mb(n_replicates: int, n_samples: int) -> dict:
    """Peak resident memory (``VmHWM``, which unlike ``ru_maxrss`` does not carry the parent's
    peak across fork and exec) of a fresh process that runs the harness, and after importing torch."""
    code = (
        "import json, time, torch\n"
        "def hwm():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmHWM:'):\n"
        "            return int(line.split()[1]) / 1024\n"
        "base = hwm()\n"
        "from bench.harness import measure_estimates\nfrom bench.problems import make_problem\n"
        "from estimators import make_estimator\n"
        "t = time.perf_counter()\n"
        f"m = measure_estimates(make_problem('gaussian_quadratic'), make_estimator('score_function'), "
        f"n_samples={n_samples}, n_replicates={n_replicates})\n"
        "print(json.dumps(dict(import_mb=base, peak_mb=hwm(), seconds=time.perf_counter() - t)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])  # the repository
    return json.loads(out.stdout.strip().splitlines()[-1])




# Pairs with the most memory per chunk among those measured (the group estimators on the sequence policy first).
HEAVY_PAIRS = (("grpo", "sequence_policy", 10), ("exact", "sequence_policy", 10), ("score_function", "policy_mlp", 10),
               ("dr_grpo", "bayes_logreg", 10), ("reinmax", "categorical_bandit", 10),
               ("score_function", "gaussian_quadratic", 1))


def peak_gpu_memory(device: str) -> pd.DataFrame:
    """Peak GPU memory (``torch.cuda.max_memory_allocated``) of a three-chunk run of each of
    :data:`HEAVY_PAIRS` at the device's default chunk."""
    rows = []
    for e, p, n in HEAVY_PAIRS:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        h = Harness(build("problem", p), build("estimator", e), n_samples=n, device=device)
        h.run(2 * h.chunk + 1)
        rows.append({"estimator": e, "problem": p, "n_samples": n, "chunk": h.chunk,
                     "peak_gib": torch.cuda.max_memory_allocated(device) / 2**30})
    return pd.DataFrame(rows)
