"""Pytest set-up: benchmarks once on CI, and the real Hydra config composed in-process."""

from __future__ import annotations

import os

import pytest
from hydra import compose, initialize_config_dir

import bench.presets  # noqa: F401  (registers every class's config with Hydra's ConfigStore)
from tests.helpers import CONF


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
