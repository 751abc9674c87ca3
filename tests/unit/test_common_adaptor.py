"""The ``common`` adaptor's operations and helpers."""

from __future__ import annotations

import copy

import pytest

from adaptors.common import (
    chunk,
    cursor,
    data_path,
    data_value,
    each,
    expand_references,
    field,
    fields,
    fn,
    log,
    merge,
    source_value,
)
from shared.adaptors import adaptor_version, installed_adaptors, load_adaptor
from shared.errors import UnknownAdaptorError
from shared.model import JsonObject

STATE: JsonObject = {
    "data": {
        "patient": {"name": "Ada", "age": 36},
        "items": [{"id": 1}, {"id": 2}, {"id": 3}],
    },
    "references": [],
}


def test_fn_is_the_function_it_is_given() -> None:
    assert fn(lambda state: {**state, "seen": True})({}) == {"seen": True}


def test_fn_refuses_something_that_is_not_a_function() -> None:
    with pytest.raises(TypeError, match="fn expects a function of state, found int"):
        fn(1)  # type: ignore[arg-type]  # the mistake under test


def test_each_runs_its_operations_per_item_with_data_and_index() -> None:
    seen = each(
        "$.data.items[*]",
        fn(
            lambda state: {
                **state,
                "references": [*state["references"], (state["index"], state["data"])],
            }
        ),
    )(STATE)

    assert seen["references"] == [(0, {"id": 1}), (1, {"id": 2}), (2, {"id": 3})]


def test_each_threads_state_through_every_operation_of_every_item() -> None:
    def count(state: JsonObject) -> JsonObject:
        return {**state, "count": state.get("count", 0) + state["data"]["id"]}

    result = each("$.data.items[*]", fn(count), fn(count))(STATE)

    assert result["count"] == 12


def test_each_gives_back_the_original_data_and_keeps_the_other_keys() -> None:
    result = each("$.data.items[*]", fn(lambda state: {**state, "done": True}))(STATE)

    assert result["data"] == STATE["data"]
    assert "index" not in result
    assert result["done"] is True


def test_each_accepts_a_filter_and_a_data_path() -> None:
    ids = each(
        data_path("items[?(@.id > 1)]"),
        fn(
            lambda state: {**state, "ids": [*state.get("ids", []), state["data"]["id"]]}
        ),
    )(STATE)["ids"]

    assert ids == [2, 3]


def test_each_over_nothing_leaves_the_state_as_it_was() -> None:
    assert each("$.data.missing[*]", fn(lambda state: {}))(STATE) == STATE


def test_an_invalid_path_is_refused_when_the_operation_is_made() -> None:
    with pytest.raises(ValueError, match="invalid JSONPath"):
        each("$.data[", fn(lambda state: state))


def test_field_and_fields_build_an_object() -> None:
    assert field("a", 1) == ("a", 1)
    assert fields(field("a", 1), field("b", 2), field("a", 3)) == {"a": 3, "b": 2}


def test_merge_adds_fields_to_every_object_at_the_path() -> None:
    result = merge(
        "$.data.items[*]",
        fields(field("name", data_value("$.patient.name")), field("kind", "visit")),
    )(STATE)

    assert result["data"]["items"] == [
        {"id": 1, "name": "Ada", "kind": "visit"},
        {"id": 2, "name": "Ada", "kind": "visit"},
        {"id": 3, "name": "Ada", "kind": "visit"},
    ]


def test_merge_leaves_the_state_it_was_given_untouched() -> None:
    before = copy.deepcopy(STATE)

    merge("$.data.patient", {"seen": True})(STATE)

    assert before == STATE


def test_merge_refuses_to_merge_into_something_that_is_not_an_object() -> None:
    with pytest.raises(TypeError, match=r"merge expects objects at \$\.data\.items"):
        merge("$.data.items", {"seen": True})(STATE)


def test_data_value_reads_the_first_match_within_data() -> None:
    assert data_value("$.patient.name")(STATE) == "Ada"
    assert data_value("$.items[*].id")(STATE) == 1
    assert data_value("$.nothing")(STATE) is None


def test_data_path_points_into_data() -> None:
    assert data_path("$.items[*]") == "$.data.items[*]"
    assert data_path("items[*]") == "$.data.items[*]"
    assert data_path("$") == "$.data"


def test_source_value_reads_from_the_whole_state() -> None:
    assert source_value("$.data.patient.age")(STATE) == 36
    assert source_value("$.references")(STATE) == []


def test_expand_references_resolves_functions_inside_objects_and_lists() -> None:
    value = {
        "name": data_value("$.patient.name"),
        "list": [1, source_value("$.data.patient.age"), {"deep": lambda state: 7}],
        "plain": "text",
    }

    assert expand_references(value, STATE) == {
        "name": "Ada",
        "list": [1, 36, {"deep": 7}],
        "plain": "text",
    }


def test_log_writes_its_values_on_one_line_and_keeps_the_state(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = log("patient", data_value("$.patient"), 3)(STATE)

    assert capsys.readouterr().out == 'patient {"name": "Ada", "age": 36} 3\n'
    assert result is STATE


def test_cursor_sets_the_cursor_key_and_keeps_the_rest() -> None:
    result = cursor("2026-03-01T00:00:00Z")(STATE)

    assert result == {**STATE, "cursor": "2026-03-01T00:00:00Z"}


def test_cursor_takes_a_function_of_state_and_another_key() -> None:
    result = cursor(data_value("$.items[-1:].id"), key="last_id")(STATE)

    assert result["last_id"] == 3
    assert "cursor" not in result


def test_cursor_resolves_functions_inside_its_value() -> None:
    result = cursor({"page": 2, "age": data_value("$.patient.age")})(STATE)

    assert result["cursor"] == {"page": 2, "age": 36}


def test_cursor_leaves_the_state_it_was_given_untouched() -> None:
    state: JsonObject = {"cursor": 1}

    cursor(2)(state)

    assert state == {"cursor": 1}


def test_chunk_cuts_a_list_into_lists_of_at_most_size_items() -> None:
    assert chunk([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
    assert chunk([1, 2, 3], 3) == [[1, 2, 3]]
    assert chunk([1, 2], 5) == [[1, 2]]


def test_chunk_of_nothing_is_no_lists() -> None:
    assert chunk([], 4) == []


def test_chunk_takes_any_iterable() -> None:
    assert chunk(range(4), 3) == [[0, 1, 2], [3]]


@pytest.mark.parametrize("size", [0, -1, 1.5, True, "2"])
def test_chunk_refuses_a_size_that_is_not_a_whole_number_of_at_least_one(
    size: object,
) -> None:
    with pytest.raises(ValueError, match="chunk expects a size of at least 1"):
        chunk([1, 2], size)  # type: ignore[arg-type]  # the mistake under test


def test_the_common_adaptor_is_registered_with_its_operations() -> None:
    adaptor = load_adaptor("common")

    assert "common" in installed_adaptors()
    assert adaptor.version == adaptor_version("common")
    assert adaptor.operations["each"] is each
    assert adaptor.operations["cursor"] is cursor
    assert adaptor.operations["chunk"] is chunk


def test_an_unknown_adaptor_is_refused_by_name() -> None:
    with pytest.raises(UnknownAdaptorError, match=r"unknown adaptor 'nope'.*common"):
        load_adaptor("nope")
