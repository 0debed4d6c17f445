"""The catalog contracts each carry an example instance that validates."""

from __future__ import annotations

import inspect

import pytest

import libs.contracts.catalog as catalog
from libs.contracts.envelope import Contract

MODELS = [
    model
    for model in vars(catalog).values()
    if inspect.isclass(model)
    and issubclass(model, Contract)
    and model.__module__ == catalog.__name__
]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_each_contract_has_a_valid_example(model: type[Contract]) -> None:
    extra = model.model_config.get("json_schema_extra")
    examples = extra.get("examples") if isinstance(extra, dict) else None
    assert isinstance(examples, list) and examples, f"{model.__name__} has no example"
    for example in examples:
        model.model_validate(example)
