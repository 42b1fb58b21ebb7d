"""Shared helpers: compose the real Hydra config in-process, and run the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """On CI, run each benchmark once as a plain test (untimed) instead of skipping it."""
    if os.environ.get("CI") and config.pluginmanager.hasplugin("benchmark") and not config.getoption("benchmark_only"):
        config.option.benchmark_skip = False
        config.option.benchmark_disable = True


@pytest.fixture
def make_cfg():
    """``make_cfg("n_samples=3", ...)`` -> the composed job config (as ``python -m bench.run`` sees it)."""

    def _make(*overrides: str):
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return compose(config_name="config", overrides=list(overrides))

    return _make


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m bench.run ARGS`` from ``cwd`` with the repository importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([sys.executable, "-m", "bench.run", *args], cwd=cwd or REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
