"""SPEC strings: parsing, typed configs, canonical labels and the errors users see."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vibench.spec import SpecError, canonical_label, make_config, parse_spec


def test_parse_name_and_parameters():
    assert parse_spec("advi") == ("advi", {})
    assert parse_spec(" advi[family=fullrank, steps=5000] ") == (
        "advi",
        {"family": "fullrank", "steps": "5000"},
    )


@pytest.mark.parametrize(
    "bad", ["", "advi[", "advi[steps]", "advi[=3]", "advi[a=1,a=2]", "9x", "a b", "advi[]", "advi[ ]", "advi[,]", "advi[steps=5,]"]
)
def test_malformed_specs_are_rejected(bad):
    with pytest.raises(SpecError):
        parse_spec(bad)


def test_configs_are_typed_and_checked(registry):
    method = registry.methods["advi"]
    config = make_config(method.Config, {"family": "fullrank", "steps": "10", "stl": "true", "lr": "1e-3"}, "advi")
    assert (config.family, config.steps, config.stl, config.lr) == ("fullrank", 10, True, 1e-3)
    with pytest.raises(SpecError, match="family must be one of meanfield, fullrank, lowrank"):
        make_config(method.Config, {"family": "diag"}, "method advi")
    with pytest.raises(SpecError, match="steps must be an integer, 1 <= steps <= 10\\^7; got 'many'"):
        make_config(method.Config, {"steps": "many"}, "method advi")
    with pytest.raises(SpecError, match="unknown parameter 'stepz' for method advi; valid: family, rank, steps"):
        make_config(method.Config, {"stepz": "3"}, "method advi")


def test_canonical_label_lists_only_changed_values_in_field_order(registry):
    assert registry.method("advi[steps=2000]").label == "advi"  # 2000 is the default
    assert registry.method("advi[stl=1,family=fullrank]").label == "advi[family=fullrank,stl=true]"
    assert registry.task("gaussian[rho=0.95,dim=50]").label == "gaussian[dim=50,rho=0.95]"


@given(
    steps=st.integers(1, 10**6),
    lr=st.floats(1e-6, 10.0, allow_nan=False),
    family=st.sampled_from(["meanfield", "fullrank", "lowrank"]),
    stl=st.booleans(),
)
def test_label_round_trips(registry, steps, lr, family, stl):
    choice = registry.method(f"advi[steps={steps},lr={lr!r},family={family},stl={str(stl).lower()}]")
    again = registry.method(choice.label)
    assert again.config == choice.config and again.label == choice.label
    assert canonical_label("advi", choice.config) == choice.label
