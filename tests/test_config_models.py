"""mash.config: config models read with one-line errors naming file, section and key."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import BeforeValidator, Field, model_validator

from mash.config import (
    ConfigModel,
    File,
    Invalid,
    Text,
    TextList,
    load_section,
    number,
    one_of,
    read_model,
)
from mash.errors import ConfigError


class Sub(ConfigModel):
    name: Text
    file: File | None = None
    seconds: Annotated[float, BeforeValidator(number(0.1, 5))] = 1.0
    names: TextList = []
    kind: Annotated[str, BeforeValidator(one_of("a", "b"))] = "a"


class Top(ConfigModel):
    sub: Sub
    subs: list[Sub] = []
    optional: Sub | None = None
    key: Text = Field("k", validation_alias="the_key")

    @model_validator(mode="after")
    def _check(self) -> Top:
        if self.key == "bad":
            raise Invalid("is bad", key="the_key")
        return self


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "f.yaml: sub: required setting is missing"),
        ({"sub": {"name": "a", "colour": 1}},
         "f.yaml: sub: unknown setting 'colour' (known here: file, kind, name, names, seconds)"),
        ({"sub": {"name": " "}}, "f.yaml: sub: name: must not be empty"),
        ({"sub": {"name": True}}, "f.yaml: sub: name: expected text, got bool"),
        ({"sub": []}, "f.yaml: sub: expected a mapping, got list"),
        ({"sub": {"name": "a"}, "subs": [{"name": "b"}, {"name": "c", "seconds": 9}]},
         "f.yaml: subs[1]: seconds: must be at most 5, got 9"),
        ({"sub": {"name": "a", "file": "nope"}}, "f.yaml: sub: file: file not found: "),
        ({"sub": {"name": "a", "names": ["a", ""]}},
         "f.yaml: sub: names[1]: expected non-empty text"),
        ({"sub": {"name": "a", "kind": "c"}}, "f.yaml: sub: kind: 'c' is not one of a, b"),
        ({"sub": {"name": "a"}, "the_key": "bad"}, "f.yaml: the_key: is bad"),
        ({"sub": {"name": "a"}, "optional": {"name": None}},
         "f.yaml: optional: name: required setting is missing"),
        ({"sub": {"name": "a"}, "optional": 3}, "f.yaml: optional: expected a mapping, got int"),
        ({"sub": {"name": "a"}, "key": 3}, "f.yaml: unknown setting 'key' (known here: "
                                           "optional, sub, subs, the_key)"),
    ],
)
def test_errors_are_one_line_naming_file_section_and_key(
        tmp_path: Path, data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        read_model(Top, data, "f.yaml", tmp_path)
    assert str(err.value).startswith(message)


def test_paths_are_resolved_against_the_config_files_directory(tmp_path: Path) -> None:
    (tmp_path / "x.pem").write_text("x")
    top = read_model(Top, {"sub": {"name": 7, "file": "x.pem"}, "the_key": "v"}, "f.yaml",
                     tmp_path)
    assert top.sub.file == tmp_path / "x.pem" and top.sub.name == "7" and top.key == "v"


def test_one_section_of_a_file_is_read_by_a_model(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text("sub: {name: a, seconds: 0}\nother: {anything: 1}\n")
    with pytest.raises(ConfigError, match=r"^\S*f\.yaml: sub: seconds: must be at least 0\.1"):
        load_section(Sub, path, "sub")
    path.write_text("sub: {name: a}\nother: {anything: 1}\n")
    assert load_section(Sub, path, "sub").name == "a"  # the other sections left alone
    with pytest.raises(ConfigError, match=r"f\.yaml: no 'missing' section"):
        load_section(Sub, path, "missing")


def test_models_built_in_code_take_attribute_names_and_paths_as_given() -> None:
    top = Top(sub=Sub(name="a", file=Path("rel.pem")), key="v")
    assert top.sub.file == Path("rel.pem") and top.key == "v"
