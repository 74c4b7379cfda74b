"""The config: one validated, frozen object, with errors that name the key."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from pipeline.config import Config, load_config
from pipeline.errors import ConfigError

from conftest import ROOT, SAMPLE_CONFIG


def test_sample_config_is_valid_and_resolves_paths_next_to_the_file() -> None:
    config = load_config(SAMPLE_CONFIG)
    assert Path(config.input.paths[0]).resolve() == (ROOT / "data" / "online_retail_2011-10_2011-11.csv.gz")
    assert Path(config.catalog.path).resolve() == ROOT / "data" / "catalog.csv"
    assert Path(config.output.dir).resolve() == ROOT / "output"


def test_every_key_of_the_model_is_documented_in_the_sample_config() -> None:
    text = SAMPLE_CONFIG.read_text()

    def keys(model: type, prefix: str = "") -> list[str]:
        found = []
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                found += keys(annotation, f"{prefix}{name}.")
            else:
                found.append(f"{prefix}{name}")
        return found

    for key in keys(Config):
        assert f"{key.rsplit('.', 1)[-1]} =" in text, key
    docs = (ROOT / "docs" / "config.md").read_text()
    for key in keys(Config):
        assert f"`{key}`" in docs, key


def test_overrides_are_parsed_as_toml_values() -> None:
    config = load_config(
        SAMPLE_CONFIG,
        [
            "mine.min_support=0.005",
            "mine.algorithm=apriori",
            "clean.cancel_prefixes=['C', 'X']",
            "mine.max_len=4",
            "rules.min_lift = 1.5",
        ],
    )
    assert config.mine.min_support == 0.005 and config.mine.algorithm == "apriori"
    assert config.clean.cancel_prefixes == ("C", "X") and config.mine.max_len == 4
    assert config.rules.min_lift == 1.5


def test_none_switches_off_a_key_that_is_on_by_default() -> None:
    config = load_config(SAMPLE_CONFIG, ["mine.max_len=none", "clean.max_basket_size=none", "margin.min_margin=none"])
    assert config.mine.max_len is None and config.clean.max_basket_size is None and config.margin.min_margin is None
    with pytest.raises(ConfigError, match=r"output\.dir: Input should be a valid string"):
        load_config(SAMPLE_CONFIG, ["output.dir=none"])


def test_flags_win_over_overrides_and_file() -> None:
    config = load_config(SAMPLE_CONFIG, ["output.top_k=5"], {"output.top_k": 2})
    assert config.output.top_k == 2


@pytest.mark.parametrize(
    "override, message",
    [
        ("mine.min_suport=0.1", r"mine.min_suport: unknown key \(did you mean 'mine.min_support'\?\)"),
        ("mine.min_support=0", r"mine.min_support: Input should be greater than 0 \(got 0\)"),
        ("mine.min_support=1.5", r"mine.min_support: Input should be less than or equal to 1"),
        ("output.top_k=0", r"output.top_k: Input should be greater than or equal to 1"),
        ("mine.algorithm=eclat", r"mine.algorithm: Input should be 'fpgrowth' or 'apriori'"),
        ("mine.max_len=many", r"mine.max_len: Input should be a valid integer"),
        ("clean.non_product_pattern='(unclosed'", r"clean.non_product_pattern: .*not a valid regular expression"),
        ("rank.by=profit", r"rank.by: Input should be"),
        ("as_of=2011-13-45", r"as_of: "),
        ("minesupport=1", r"minesupport: unknown key"),
        ("novalue", r"expected section.key=value"),
    ],
)
def test_invalid_values_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(SAMPLE_CONFIG, [override])


def test_the_message_names_where_the_value_came_from() -> None:
    with pytest.raises(ConfigError, match=r"invalid configuration \(.*default.toml \+ --set\)"):
        load_config(SAMPLE_CONFIG, ["output.top_k=0"])


def test_unknown_key_in_the_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[mine]\nmin_suport = 0.01\n")
    with pytest.raises(ConfigError, match=r"(?s)c.toml.*mine.min_suport: unknown key"):
        load_config(path)


def test_broken_toml_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[mine\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.toml")


def test_as_of_date_versus_instant() -> None:
    assert load_config(values={"as_of": "2011-11-30"}).as_of == date(2011, 11, 30)
    assert load_config(values={"as_of": "2011-11-30T00:00:00"}).as_of == datetime(2011, 11, 30)


def test_config_is_frozen_and_fingerprint_follows_content() -> None:
    config = load_config(SAMPLE_CONFIG)
    with pytest.raises(ValidationError):
        config.mine.min_support = 0.5  # type: ignore[misc]
    assert config.fingerprint() == load_config(SAMPLE_CONFIG).fingerprint()
    assert config.fingerprint() != load_config(SAMPLE_CONFIG, ["mine.min_support=0.02"]).fingerprint()
