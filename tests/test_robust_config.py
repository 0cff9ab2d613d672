"""Robustness: recipes and ``--set`` overrides are typed; every bad input is a ValueError naming the setting."""

from __future__ import annotations

import string
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from personsearch.methods.runs import load_recipe_config
from personsearch.utils.config import load_yaml, merge_into, parse_overrides
from personsearch.utils.typed import ConfigTypeError

pytestmark = pytest.mark.robustness


@dataclass(frozen=True)
class Inner:
    count: int = 1
    rate: float = 0.5
    flag: bool = False
    name: str = "x"
    maybe: float | None = None
    sizes: tuple[int, ...] = (1, 2)
    pair: tuple[int, int] = (0, 1)


@dataclass(frozen=True)
class Outer:
    inner: Inner = field(default_factory=Inner)
    top: int = 3


@pytest.mark.parametrize("override, words", [
    ("engine.epochs=1.9", "'engine.epochs' must be an integer, got 1.9"),
    ("engine.tensorboard=banana", "'engine.tensorboard' must be true or false, got 'banana'"),
    ('engine.channels_last="false"', "'engine.channels_last' must be true or false, got 'false'"),
    ("engine.grad_clip=abc", "'engine.grad_clip' must be a number or null, got 'abc'"),
    ("engine.lr=true", "'engine.lr' must be a number, got True"),
    ("engine.milestones=[1, 2.5]", "'engine.milestones[1]' must be an integer"),
    ("data.root=[1, 2]", "'data.root' must be a text"),
    ("model.embed_dim=-3", "model.embed_dim must be a positive embedding size"),
    ("model.embed_dim=0", "model.embed_dim must be a positive embedding size"),
    ("eval.metric=foo", "eval.metric"),
    ("eval.precision=fp8", "eval.precision must be one of fp32, bf16"),
    ("model.pooling=median", "model.pooling"),
    ("engine=3", "'engine' must be a mapping"),
    ("engine.nope=1", "unknown setting 'engine.nope'"),
    ("engine.epochs=[1,", "not valid YAML"),
    ("engine..epochs=1", "empty setting name"),
])
def test_bad_overrides_are_value_errors_naming_the_setting(override, words):
    with pytest.raises(ValueError) as info:
        load_recipe_config("baseline", [override])
    assert words in str(info.value)


def test_wrong_types_are_refused_at_load_time_not_coerced():
    cfg = load_recipe_config("baseline", ["engine.epochs=2", "engine.lr=1", "engine.channels_last=false"])
    assert cfg.engine.epochs == 2 and cfg.engine.lr == 1.0 and isinstance(cfg.engine.lr, float)
    assert cfg.engine.channels_last is False
    with pytest.raises(ConfigTypeError, match="'eval.gallery_sizes\\[0\\]' must be an integer"):
        load_recipe_config("nae", ["eval.gallery_sizes=[1.5]"])
    assert load_recipe_config("nae", ["eval.gallery_sizes=50"]).eval.gallery_sizes == (50,)


def test_a_yaml_syntax_error_in_a_recipe_names_the_file_and_line(tmp_path):
    recipe = tmp_path / "broken.yaml"
    recipe.write_text("method: baseline\nengine:\n  epochs: [1, 2\n  lr: 0.1\n")
    with pytest.raises(ValueError, match=r"broken\.yaml: not valid YAML: .* at line \d+"):
        load_yaml(recipe)
    recipe.write_text("method: baseline\nengine:\n  epochs: '3'\n")
    with pytest.raises(ValueError, match="'engine.epochs' must be an integer, got '3'"):
        load_recipe_config(recipe, [])


def test_tuples_check_their_length_and_items():
    with pytest.raises(ConfigTypeError, match="'inner.pair' must be a list of 2 values"):
        merge_into(Outer(), {"inner": {"pair": [1, 2, 3]}})
    with pytest.raises(ConfigTypeError, match="'inner.pair' must be a list"):
        merge_into(Outer(), {"inner": {"pair": 5}})
    assert merge_into(Outer(), {"inner": {"sizes": 7}}).inner.sizes == (7,)


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                     st.text(max_size=8), st.lists(st.integers(-5, 5), max_size=4))
_KEYS = st.sampled_from(["count", "rate", "flag", "name", "maybe", "sizes", "pair", "nope"])


@settings(max_examples=300, deadline=None)
@given(key=_KEYS, value=_SCALARS)
def test_merge_is_exact_or_a_named_value_error(key, value):
    """Any value for any field: accepted unchanged (ints widen to floats), or a ValueError naming the field."""
    try:
        merged = merge_into(Outer(), {"inner": {key: value}})
    except ValueError as err:
        assert f"inner.{key}" in str(err)
        return
    got = getattr(merged.inner, key)
    expected = {"count": int, "rate": float, "flag": bool, "name": str}.get(key)
    if expected is not None:
        assert type(got) is expected and got == value
    if key in ("sizes", "pair") and isinstance(value, list):
        assert got == tuple(value)


_NAME = st.text(string.ascii_lowercase + "_", min_size=1, max_size=6)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.lists(_NAME, min_size=1, max_size=3), st.text(max_size=20)), max_size=4))
def test_override_parser_never_crashes(pairs):
    """Any KEY=VALUE text parses into nested dicts, or is a ValueError naming the override."""
    texts = [".".join(path) + "=" + value for path, value in pairs]
    try:
        nested = parse_overrides(texts)
    except ValueError as err:
        assert "override" in str(err)
        return
    assert isinstance(nested, dict)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_any_text_as_an_override_line_is_parsed_or_refused(text):
    try:
        parse_overrides([text])
    except ValueError as err:
        assert "override" in str(err)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["engine.epochs", "engine.lr", "engine.tensorboard", "engine.grad_clip",
                        "engine.milestones", "data.root", "model.embed_dim", "eval.rerank"]),
       st.text(max_size=12))
def test_recipe_overrides_load_or_fail_with_a_named_value_error(key, value):
    try:
        load_recipe_config("baseline", [f"{key}={value}"])
    except ValueError as err:
        assert key.split(".")[-1] in str(err) or "override" in str(err)


def test_deeply_nested_yaml_override_is_a_named_error():
    with pytest.raises(ValueError, match="override"):
        parse_overrides(["a=" + "[" * 5000 + "]" * 5000])
