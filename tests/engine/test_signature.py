"""Signatures: parsing, input and output validation (what decides if final_answer ends a run)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from codeact_lsp.engine.signature import Signature, SignatureError


def test_default_is_task_to_answer() -> None:
    sig = Signature.parse(None)
    assert sig.text == "task -> answer"
    assert sig.output_names == ["answer"]


def test_typed_fields_and_nested_types() -> None:
    sig = Signature.parse("n: int, xs: dict[str, list[int]] -> factorial: int, note")
    assert sig.input_names == ["n", "xs"]
    assert sig.outputs[0].type_text == "int"
    assert sig.outputs[1].type_text is None
    assert sig.text == "n: int, xs: dict[str, list[int]] -> factorial: int, note"


@pytest.mark.parametrize(
    "text",
    [
        "question answer",
        "a -> b -> c",
        "a ->",
        "1x -> y",
        "a: os.system -> b",
        "a -> a",
        "a: Foo -> b",
    ],
)
def test_bad_signatures_say_why(text: str) -> None:
    with pytest.raises(SignatureError):
        Signature.parse(text)


def test_untyped_output_keeps_json_value_as_is() -> None:
    sig = Signature.parse("task -> answer")
    assert sig.validate_outputs([76.9], {}) == {"answer": 76.9}
    assert sig.validate_outputs([], {"answer": [1, "a", None]}) == {"answer": [1, "a", None]}
    with pytest.raises(SignatureError, match="JSON"):
        sig.validate_outputs([{1, 2}], {})


def test_typed_output_validated_and_coerced_by_pydantic() -> None:
    sig = Signature.parse("n: int -> factorial: int")
    assert sig.validate_outputs([], {"factorial": "120"}) == {"factorial": 120}
    with pytest.raises(SignatureError, match="must be int"):
        sig.validate_outputs([], {"factorial": "many"})


def test_final_answer_binding_rules() -> None:
    sig = Signature.parse("q -> a: int, b: str")
    assert sig.validate_outputs([], {"a": 1, "b": "x"}) == {"a": 1, "b": "x"}
    with pytest.raises(SignatureError, match="keyword"):
        sig.validate_outputs([1], {})
    with pytest.raises(SignatureError, match="missing b"):
        sig.validate_outputs([], {"a": 1})
    with pytest.raises(SignatureError, match="unknown field"):
        sig.validate_outputs([], {"a": 1, "b": "x", "c": 2})


def test_inputs_single_missing_field_takes_the_task() -> None:
    sig = Signature.parse("question -> answer")
    assert sig.validate_inputs({}, task="why?") == {"question": "why?"}
    with pytest.raises(SignatureError, match="missing"):
        sig.validate_inputs({})
    with pytest.raises(SignatureError, match="unknown"):
        sig.validate_inputs({"nope": 1}, task="x")
    assert Signature.parse("n: int -> f: int").validate_inputs({"n": "5"}) == {"n": 5}


def test_pydantic_model_forms() -> None:
    class Quote(BaseModel):
        """Quote the total."""

        total: float
        currency: str

    class Ask(BaseModel):
        sku: str

    sig = Signature.parse(Quote)
    assert sig.output_names == ["total", "currency"]
    assert sig.instructions == "Quote the total."
    assert sig.validate_outputs([], {"total": "1.5", "currency": "EUR"}) == {
        "total": 1.5,
        "currency": "EUR",
    }
    both = Signature.parse((Ask, Quote))
    assert both.input_names == ["sku"]
    assert Signature.parse(both) is both


def test_a_recorded_signature_whose_types_are_gone_reads_untyped() -> None:
    # a run started with pydantic models records their names, which no longer resolve
    sig = Signature.recorded("order: Order, n: int -> receipt: Receipt")
    assert sig.input_names == ["order", "n"]
    assert [f.type_text for f in sig.inputs + sig.outputs] == [None, None, None]
    assert Signature.recorded("n: int -> m: int").text == "n: int -> m: int"
