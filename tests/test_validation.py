"""Every field of every registered Config and Params is checked when a SPEC is parsed:
type, declared range, ASCII digits, finiteness and the class's cross-field ``check``;
and :func:`vibench.spec.parameters` describes each field for the command line."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
import typing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vibench.registry import discover
from vibench.spec import (
    Range,
    SpecError,
    _fields,
    canonical_label,
    check_config,
    make_config,
    parameters,
    parse_spec,
)

REGISTRY = discover()
OWNERS = [("method", name, m.Config) for name, m in sorted(REGISTRY.methods.items())] + [
    ("task", name, t.Params) for name, t in sorted(REGISTRY.tasks.items())
]
FIELDS = [(kind, name, cls, f) for kind, name, cls in OWNERS for f in _fields(cls)]
FIELD_IDS = [f"{name}.{f.name}" for _, name, _, f in FIELDS]
OPEN_END = 10**6  # how far past a bound-less side values are drawn


def is_literal(kind) -> bool:
    return typing.get_origin(kind) is typing.Literal


def text_of(value) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def inside(field) -> st.SearchStrategy:
    """Values a field accepts (as Python values)."""
    kind, bounds = field.kind, field.range or Range()
    if is_literal(kind):
        return st.sampled_from(typing.get_args(kind))
    if kind is bool:
        return st.booleans()
    if kind is int:
        low = bounds.low if bounds.low is not None else -OPEN_END
        high = bounds.high if bounds.high is not None else OPEN_END
        return st.integers(int(low) + bounds.low_open, int(high) - bounds.high_open)
    return st.floats(
        bounds.low, bounds.high, exclude_min=bounds.low_open and bounds.low is not None,
        exclude_max=bounds.high_open and bounds.high is not None, allow_nan=False, allow_infinity=False,
    )


def outside(field) -> st.SearchStrategy:
    """Text a field refuses."""
    kind, bounds = field.kind, field.range or Range()
    junk = st.sampled_from(["abc", "１", "５０", "1_0", "0x10", "1e", "--1", "nan", "inf", "-inf", "1e999"])
    if is_literal(kind):
        choices = typing.get_args(kind)
        return st.text(st.characters(codec="ascii", exclude_characters=",]="), min_size=1).map(str.strip).filter(
            lambda s: s and s not in choices
        )
    if kind is bool:
        return st.sampled_from(["maybe", "2", "tru", "on", "１"])
    options = [junk]
    if kind is int:
        options.append(st.sampled_from(["1.5", "2.0", "1e3"]))
        if bounds.low is not None:
            options.append(st.integers(max_value=int(bounds.low) - (not bounds.low_open)).map(str))
        if bounds.high is not None:
            options.append(st.integers(min_value=int(bounds.high) + (not bounds.high_open)).map(str))
    else:
        if bounds.low is not None:
            below = st.floats(max_value=bounds.low, exclude_max=not bounds.low_open, allow_nan=False, allow_infinity=False)
            options.append(below.map(repr))
        if bounds.high is not None:
            above = st.floats(min_value=bounds.high, exclude_min=not bounds.high_open, allow_nan=False, allow_infinity=False)
            options.append(above.map(repr))
    return st.one_of(options)


def passes_check(cls, values: dict) -> bool:
    check = getattr(cls, "check", None)
    if check is None:
        return True
    try:
        check(cls(**values))
    except ValueError:
        return False
    return True


def assert_round_trips(kind, name, cls, values: dict) -> None:
    owner = f"{kind} {name}"
    params = {k: text_of(v) for k, v in values.items()}
    if not passes_check(cls, values):  # a cross-field constraint: refused, naming the owner
        with pytest.raises(SpecError, match=owner):
            make_config(cls, params, owner)
        return
    config = make_config(cls, params, owner)
    assert config == cls(**values)
    label = canonical_label(name, config)
    again_name, again = parse_spec(label)
    assert again_name == name and make_config(cls, again, owner) == config


@pytest.mark.parametrize("kind, name, cls, field", FIELDS, ids=FIELD_IDS)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_values_inside_the_range_parse_and_round_trip(kind, name, cls, field, data):
    assert_round_trips(kind, name, cls, {field.name: data.draw(inside(field))})


@pytest.mark.parametrize("kind, name, cls", OWNERS, ids=[name for _, name, _ in OWNERS])
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_whole_configs_inside_the_ranges_parse_and_round_trip(kind, name, cls, data):
    values = {f.name: data.draw(inside(f)) for f in _fields(cls)}
    assert_round_trips(kind, name, cls, values)


@pytest.mark.parametrize("kind, name, cls, field", FIELDS, ids=FIELD_IDS)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_values_outside_the_range_are_spec_errors_naming_the_field(kind, name, cls, field, data):
    raw = data.draw(outside(field))
    with pytest.raises(SpecError, match=f"{kind} {name} parameter {field.name} must be") as err:
        make_config(cls, {field.name: raw}, f"{kind} {name}")
    message = str(err.value)
    assert "\n" not in message and len(message) < 300, message


@settings(max_examples=300, deadline=None)
@given(text=st.text(), which=st.sampled_from(OWNERS))
def test_arbitrary_text_is_only_ever_a_spec_error(text, which):
    kind, name, cls = which
    for spec in (text, f"{name}[{text}]", f"{name}[{text}={text}]"):
        try:
            spec_name, params = parse_spec(spec)
            make_config(cls, params, f"{kind} {spec_name}")
        except SpecError:
            pass


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_arbitrary_values_of_real_fields_are_only_ever_spec_errors(data):
    kind, name, cls, field = data.draw(st.sampled_from(FIELDS))
    raw = data.draw(st.text(st.characters(exclude_characters=",[]"), min_size=1))
    try:
        make_config(cls, {field.name: raw.strip() or "x"}, f"{kind} {name}")
    except SpecError as err:
        assert field.name in str(err) or "must satisfy" in str(err)


@pytest.mark.parametrize("kind, name, cls", OWNERS, ids=[name for _, name, _ in OWNERS])
def test_defaults_satisfy_their_own_bounds(kind, name, cls):
    check_config(cls(), f"{kind} {name}")


@pytest.mark.parametrize("kind, name, cls, field", FIELDS, ids=FIELD_IDS)
def test_every_number_declares_its_range(kind, name, cls, field):
    if field.kind in (int, float):
        assert field.range is not None, f"{name}.{field.name} declares no Range"
        assert field.range.low is not None and field.range.high is not None, "bounded on both sides"


@pytest.mark.parametrize(
    "spec, message",
    [
        ("advi[steps=-5]", "method advi parameter steps must be an integer, 1 <= steps <= 10^7; got '-5'"),
        ("advi[steps=0]", "1 <= steps"),
        ("advi[steps=100000000000000000000]", "steps <= 10^7"),
        ("advi[steps=５０]", "got '５０'"),
        ("advi[steps=1_000]", "must be an integer"),
        ("advi[num_samples=0]", "1 <= num_samples"),
        ("advi[lr=nan]", "lr must be a finite number, 0 < lr <= 100; got 'nan'"),
        ("advi[lr=inf]", "lr must be a finite number"),
        ("advi[lr=0]", "0 < lr"),
        ("nuts[target_accept=1]", "0 < target_accept < 1"),
        ("svi[kappa=0.5]", "0.5 < kappa <= 1"),
        ("svgd[num_particles=1]", "2 <= num_particles"),
        ("svi[mode=natural,family=lowrank]", "family must be meanfield or fullrank with mode=natural"),
        ("nuts[num_chains=256,num_samples=100000]", "num_chains * (num_warmup + num_samples) <= 10^7"),
        ("iwae[k=100000,num_estimates=100]", "k * num_estimates <= 10^6"),
    ],
)
def test_method_values_are_checked_with_one_line_messages(spec, message):
    with pytest.raises(SpecError) as err:
        REGISTRY.method(spec)
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("ppca[k=6]", "task ppca: parameter k must satisfy k <= d = 5; got 6"),
        ("gaussian[dim=3,rho=-0.5]", "-0.5 < rho < 1 at dim=3 (positive definite)"),
        ("student_t[dim=11,rho=-0.1]", "-0.1 < rho < 1 at dim=11"),
        ("gaussian[dim=1001]", "1 <= dim <= 1000"),
        ("linreg[n=1000000,d=1000]", "(n + n_test) * d <= 10^8"),
        ("linreg[data_seed=-1]", "0 <= data_seed <= 4294967295"),
    ],
)
def test_task_values_are_checked_before_anything_is_built(spec, message):
    name, params = parse_spec(spec)
    family = REGISTRY.tasks[name]
    with pytest.raises(SpecError) as err:
        make_config(family.Params, params, f"task {name}")
    assert message in str(err.value)


def test_cross_field_bounds_are_exact():
    """ρ just inside −1/(dim − 1) is positive definite and accepted; just outside is not."""
    params = REGISTRY.tasks["gaussian"].Params
    assert make_config(params, {"dim": "3", "rho": "-0.4999"}, "task gaussian").rho == -0.4999
    with pytest.raises(SpecError):
        make_config(params, {"dim": "3", "rho": "-0.5"}, "task gaussian")
    assert make_config(REGISTRY.tasks["ppca"].Params, {"k": "5"}, "task ppca").k == 5


@pytest.mark.parametrize("spec", ["advi[]", "advi[ ]", "advi[,]", "advi[steps=5,]", "advi[,steps=5]"])
def test_empty_brackets_and_empty_items_are_errors(spec):
    with pytest.raises(SpecError, match="empty"):
        parse_spec(spec)


def test_long_values_are_truncated_in_messages():
    with pytest.raises(SpecError) as err:
        REGISTRY.method("advi[steps=" + "9" * 100_000 + "]")
    assert len(str(err.value)) < 200 and "(99960 more characters)" in str(err.value)


def test_parameters_describe_every_field():
    for kind, name, cls in OWNERS:
        rows = parameters(cls)
        assert [r.name for r in rows] == [f.name for f in dataclasses.fields(cls)]
        for row in rows:
            assert row.doc, f"{name}.{row.name} is not described in its class docstring"
            assert row.valid and row.type
            # The default's text parses back to the default.
            config = make_config(cls, {row.name: row.default}, f"{kind} {name}")
            assert config == cls()


def test_parameters_text():
    rows = {r.name: r for r in parameters(REGISTRY.methods["advi"].Config)}
    assert rows["family"].type == "one of meanfield|fullrank|lowrank"
    assert (rows["steps"].type, rows["steps"].default, rows["steps"].valid) == ("int", "2000", "1 .. 10^7")
    assert (rows["lr"].type, rows["lr"].valid, rows["lr"].doc) == ("float", "(0, 100]", "initial learning rate")
    assert (rows["stl"].type, rows["stl"].default) == ("bool", "false")
    nuts = {r.name: r for r in parameters(REGISTRY.methods["nuts"].Config)}
    assert nuts["target_accept"].valid == "(0, 1)"
    assert nuts["num_warmup"].doc == nuts["num_samples"].doc == "iterations per chain"
    assert nuts["max_grad_evals"].doc == "cap on gradient evaluations over all chains (0: none)"
    svi = {r.name: r for r in parameters(REGISTRY.methods["svi"].Config)}
    assert svi["kappa"].valid == "(0.5, 1]" and svi["tau"].doc == svi["kappa"].doc


def test_range_text():
    assert Range(1).interval(True) == ">= 1" and Range(0, low_open=True).interval(False) == "> 0"
    assert Range(1, 10**7).inequality("steps") == "1 <= steps <= 10^7"
    assert Range(0, low_open=True).inequality("sigma") == "sigma > 0"
    assert Range(high=1, high_open=True).inequality("rho") == "rho < 1"
    assert not Range(0, 1, low_open=True).contains(0.0) and Range(0, 1).contains(0.0)
    assert not Range(0, 1).contains(math.nextafter(1.0, 2.0))


def test_plain_fields_without_ranges_are_still_type_checked():
    """A plug-in may declare plain ``int`` / ``float`` fields: ASCII digits and finite
    numbers are still enforced, and ``parameters`` says so."""

    @dataclasses.dataclass(frozen=True)
    class Plain:
        """n: a count; x: a number."""

        n: int = 3
        x: float = 0.5

    assert make_config(Plain, {"n": "-4", "x": "1e3"}, "method p") == Plain(-4, 1000.0)
    for raw in ("４", "1.0"):
        with pytest.raises(SpecError, match="method p parameter n must be an integer; got"):
            make_config(Plain, {"n": raw}, "method p")
    with pytest.raises(SpecError, match="x must be a finite number; got 'nan'"):
        make_config(Plain, {"x": "nan"}, "method p")
    assert [(r.valid, r.doc) for r in parameters(Plain)] == [("any integer", "a count"), ("any finite number", "a number")]


def test_validation_and_parameters_import_no_jax():
    code = (
        "import sys; from vibench.registry import discover; from vibench.spec import parameters, make_config; "
        "r = discover(); [parameters(m.Config) for m in r.methods.values()]; "
        "[parameters(t.Params) for t in r.tasks.values()]; r.method('advi[steps=10]'); "
        "make_config(r.tasks['ppca'].Params, {'k': '3'}, 'task ppca'); "
        "heavy = [m for m in ('jax', 'numpyro', 'optax', 'numpy') if m in sys.modules]; assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
