"""The README's examples run as written: every code block marked ``<!-- test: python -->`` is run,
and, from ``bench/EXTENDING.md``, the files marked ``<!-- file: PATH -->`` are written to a fresh
folder and the ``<!-- test: shell -->`` commands are run there (the outside-problem recipe). The
generated tables are checked in ``tests/report/test_readme_tables.py``."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.helpers import REPO

README = (REPO / "README.md").read_text()
EXTENDING = (REPO / "bench" / "EXTENDING.md").read_text()
BLOCK = re.compile(r"<!-- (test|file): ?([^>]*?) -->\n```[a-z]*\n(.*?)```", re.S)


def blocks(kind: str, name: str | None = None, page: str = README) -> list[tuple[str, str]]:
    return [(label.strip(), code) for k, label, code in BLOCK.findall(page)
            if k == kind and (name is None or label.strip() == name)]


PYTHON = [code for _, code in blocks("test", "python") + blocks("test", "python", page=EXTENDING)]


@pytest.mark.parametrize("code", PYTHON, ids=[f"python-{i}" for i in range(len(PYTHON))])
def test_python_examples_run_as_written(code, tmp_path):
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr


def test_outside_recipe_runs_as_written(tmp_path):
    files = blocks("file", page=EXTENDING)
    assert {name for name, _ in files} >= {"my_bench/abs_problem.py", "my_bench/problem/abs_gaussian.yaml"}
    for name, code in files:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(code)
    (shell,) = [code for _, code in blocks("test", "shell", page=EXTENDING)]
    env = {"PYTHONPATH": str(REPO), "PATH": f"{sys.executable.rsplit('/', 1)[0]}:/usr/bin:/bin"}
    r = subprocess.run(["bash", "-ec", shell], cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    sweep = tmp_path / "my_bench" / "sweeps" / "abs"
    assert "3 of 3 jobs ok" in r.stdout
    assert (sweep / "report.md").is_file() and (sweep / "bias.png").is_file()
    assert "abs_gaussian" in r.stdout and "reparameterization" in r.stdout


def test_training_commands_run_as_written(tmp_path):
    (shell,) = [code for _, code in blocks("test", "shell-train")]
    env = {"PYTHONPATH": str(REPO), "PATH": f"{sys.executable.rsplit('/', 1)[0]}:/usr/bin:/bin"}
    r = subprocess.run(["bash", "-ec", shell], cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert r.stdout.count("6 of 6 jobs ok") == 1 and r.stdout.count("3 of 3 jobs ok") == 1
    assert len(list(tmp_path.glob("results/train_sweeps/*/*/curves.csv"))) == 2
