"""The presets and the registries agree: every registered name has ``conf/GROUP/NAME.yaml`` with
the class's defaults, every yaml names something registered (or importable) with options the
class accepts, and the options a component reports are exactly its yaml's keys."""

import pytest

from bench.presets import build, preset, preset_names
from bench.problems import PROBLEMS
from estimators import ESTIMATORS

REGISTRIES = {"estimator": ESTIMATORS, "problem": PROBLEMS}
CASES = [(g, n) for g in REGISTRIES for n in preset_names(g)]


@pytest.mark.parametrize("group", list(REGISTRIES))
def test_every_registered_name_has_a_yaml(group):
    """Each registered name is selected by at least one preset; ``conf/GROUP/NAME.yaml``, where it
    exists, holds the class's defaults."""
    names = set(preset_names(group))
    selected = {preset(group, n).get("name") for n in names}
    for name, cls in REGISTRIES[group].items():
        assert name in selected, f"{cls.__module__}.{cls.__name__} is registered as {name!r} but no conf/{group}/*.yaml names it"
        if name in names:
            spec = preset(group, name)
            assert spec.get("name") == name
            assert {k: v for k, v in spec.items() if k != "name"} == cls().options(), \
                f"conf/{group}/{name}.yaml != class defaults"


@pytest.mark.parametrize("group,name", CASES, ids=[f"{g}/{n}" for g, n in CASES])
def test_every_yaml_names_something_registered(group, name):
    spec = preset(group, name)
    assert "name" in spec, f"conf/{group}/{name}.yaml has no name"
    assert spec["name"] in REGISTRIES[group], f"conf/{group}/{name}.yaml names {spec['name']!r}, which is not registered"
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
