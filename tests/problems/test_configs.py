"""The presets and the registries agree: every registered class is a Hydra config of its own (its
``options_spec`` defaults, no yaml), every yaml is a real preset (a registered class or an import
path with options the class accepts, never a class's own name), and the options a component
reports are exactly its preset's keys."""

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from bench.presets import REGISTRIES, build, class_defaults, preset, preset_names, yaml_names
from tests.helpers import CONF

CASES = [(g, n) for g in REGISTRIES for n in preset_names(g)]
CLASSES = [(g, n) for g, registry in REGISTRIES.items() for n in registry]


@pytest.mark.parametrize("group,name", CLASSES, ids=[f"{g}/{n}" for g, n in CLASSES])
def test_every_registered_class_composes_from_its_defaults_with_no_yaml(group, name):
    cls = REGISTRIES[group][name]
    assert not (CONF / group / f"{name}.yaml").exists(), \
        f"conf/{group}/{name}.yaml repeats the class's defaults: {cls.__name__}.options_spec is its config"
    root = "config" if group != "optimizer" else "train"
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name=root, overrides=[f"{group}={name}"])
    assert OmegaConf.to_container(cfg[group]) == class_defaults(cls) == {"name": name, **cls().options()}


@pytest.mark.parametrize("group", list(REGISTRIES))
def test_every_yaml_is_a_preset_of_a_registered_class(group):
    for name in yaml_names(group):
        spec = preset(group, name)
        assert spec.get("name") in REGISTRIES[group], f"conf/{group}/{name}.yaml names {spec.get('name')!r}"
        assert name not in REGISTRIES[group], f"conf/{group}/{name}.yaml has a registered class's name"


@pytest.mark.parametrize("group", list(REGISTRIES))
def test_every_registered_class_is_a_preset_or_spelled_by_one(group):
    presets = {n: preset(group, n) for n in preset_names(group)}
    for name, cls in REGISTRIES[group].items():
        assert name in presets or class_defaults(cls) in presets.values(), name


@pytest.mark.parametrize("group,name", CASES, ids=[f"{g}/{n}" for g, n in CASES])
def test_every_preset_builds_with_its_options(group, name):
    spec = preset(group, name)
    component = build(group, name)
    assert component.options() == {k: v for k, v in spec.items() if k != "name"}


def test_policy_encode_with_run_dimensions_matches_the_network():
    import torch

    p = build("problem", "policy_mlp")
    theta = p.init_params("cpu", torch.float64)
    out = p.net.double()(torch.tensor([p.x], dtype=torch.float64))
    phi = p.encode(theta)
    torch.testing.assert_close(torch.stack([phi["mu"], phi["std"]]), out)
    runs = {k: torch.stack([v, 2 * v, -v]) for k, v in theta.items()}
    batched = p.encode(runs)
    for i, scale in enumerate([1, 2, -1]):
        one = p.encode({k: scale * v for k, v in theta.items()})
        torch.testing.assert_close(batched["mu"][i], one["mu"])
        torch.testing.assert_close(batched["std"][i], one["std"])


def test_the_results_know_every_root_key_as_configuration():
    """``bench.results.ROOT_KEYS`` (how the reports tell configuration columns from measured ones,
    reading files only) lists exactly the root keys of ``conf/base.yaml`` and ``conf/train.yaml``."""
    from bench.cli import known_root_keys
    from bench.results import ROOT_KEYS

    assert set(ROOT_KEYS) == known_root_keys("config") | known_root_keys("train")
