"""The console: one line per job naming the swept keys, a summary of one row per job with its
markers explained, Hydra's launch lines kept out, the job's run.log written; mistakes on the command
line are one line (an unknown key with the closest known one, an unwritable folder, Ctrl-C with the
command that resumes)."""

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import REPO, run_cli, run_module

SWEEP = ["-m", "estimator=score_function,gumbel_softmax", "problem=bernoulli_toy", "n_samples=1,4",
         "n_replicates=20000", "timing=false"]


def test_sweep_console_is_one_line_per_job_and_a_short_summary(tmp_path):
    r = run_cli(*SWEEP, f"hydra.sweep.dir={tmp_path}")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    jobs = [line for line in lines if line.startswith("job ")]
    assert len(jobs) == 4 and all("estimator=" in line and "n_samples=" in line for line in jobs)
    assert not any("[HYDRA]" in line for line in lines + r.stderr.splitlines())
    summary = lines[len(jobs):]
    rows = [line for line in summary if line.strip().split(" ")[0].isdigit() and "bernoulli_toy" in line]
    assert len(rows) == 4  # one row per job
    assert "nan" not in r.stdout.lower()
    assert "* the job's bias test" in r.stdout  # gumbel_softmax is flagged, and the marker explained
    assert f"results: {tmp_path / 'results.csv'}" in r.stdout
    assert "job 0" in (tmp_path / "0" / "run.log").read_text()


@pytest.mark.parametrize("module,arg,suggestion", [("bench.run", "n_sample=5", "n_samples"),
                                                   ("bench.run", "+n_sample=5", "n_samples"),
                                                   ("bench.train", "++stepz=3", "steps")])
def test_an_unknown_key_is_one_line_with_the_closest_key(tmp_path, module, arg, suggestion):
    r = run_module(module, arg, f"hydra.run.dir={tmp_path}")
    assert r.returncode == 1
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"did you mean {suggestion}?" in lines[0] and "not a key" in lines[0], r.stderr
    assert not (tmp_path / "results.csv").exists()  # refused before anything ran


def test_an_unwritable_folder_is_one_line():
    r = run_cli("-m", "n_samples=1,2", "hydra.sweep.dir=/proc/not_here")
    assert r.returncode == 1
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot be written" in lines[0] and "Traceback" not in r.stderr


def test_ctrl_c_names_the_command_that_resumes(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    args = ["-m", "n_samples=1,2,3", "n_replicates=2000000000", "timing=false", f"hydra.sweep.dir={tmp_path}"]
    # As at a terminal: a shell that starts a job in the background (CI's may) makes it ignore SIGINT.
    proc = subprocess.Popen([sys.executable, "-m", "bench.run", *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 120
        while not (tmp_path / "0").exists() and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err
    assert f"hydra.sweep.dir={tmp_path} resume=true" in lines[0] and "python -m bench.run -m n_samples=1,2,3" in lines[0]
