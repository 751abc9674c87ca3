"""Message-filter matching follows PostgreSQL's ``jsonb @>`` to the letter.

Every expectation here was checked against ``SELECT doc::jsonb @> pat::jsonb``
on PostgreSQL 15; the property test in
``tests/integration/test_matching_against_postgres.py`` keeps checking.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.matching import contains, matches_filter

# --- objects ---------------------------------------------------------------


def test_an_object_contains_a_subset_of_its_pairs() -> None:
    document = {"product": "PostgreSQL", "version": 9.4, "jsonb": True}
    assert contains(document, {"version": 9.4})


def test_an_object_does_not_contain_a_key_it_lacks() -> None:
    assert not contains({"a": 1}, {"b": 1})


def test_an_object_does_not_contain_a_pair_with_a_different_value() -> None:
    assert not contains({"a": 1}, {"a": 2})


def test_an_object_contains_a_nested_object_pattern_recursively() -> None:
    document = {"a": {"b": {"c": 1, "d": 2}, "e": 3}}
    assert contains(document, {"a": {"b": {"c": 1}}})


def test_a_nested_pair_is_not_found_at_the_top_level() -> None:
    assert not contains({"foo": {"bar": "baz"}}, {"bar": "baz"})


def test_a_key_with_an_empty_object_is_contained_when_the_value_is_an_object() -> None:
    assert contains({"foo": {"bar": "baz"}}, {"foo": {}})


def test_a_key_with_an_empty_object_is_not_contained_when_the_value_is_a_scalar() -> (
    None
):
    assert not contains({"foo": 1}, {"foo": {}})


def test_any_object_contains_the_empty_object() -> None:
    assert contains({}, {})
    assert contains({"a": 1}, {})


def test_an_object_does_not_contain_an_array() -> None:
    assert not contains({}, [])
    assert not contains({"a": 1}, ["a"])


def test_an_object_does_not_contain_a_scalar() -> None:
    assert not contains({"a": 1}, "a")
    assert not contains({"a": 1}, 1)


def test_an_object_value_that_is_an_array_does_not_match_an_object_pattern() -> None:
    assert not contains({"a": [1]}, {"a": {}})


def test_an_object_value_that_is_a_scalar_does_not_match_an_array_pattern() -> None:
    assert not contains({"a": 1}, {"a": []})


# --- arrays ----------------------------------------------------------------


def test_an_array_contains_a_subset_of_its_elements() -> None:
    assert contains([1, 2, 3], [1, 3])


def test_array_element_order_does_not_matter() -> None:
    assert contains([1, 2, 3], [3, 1])


def test_duplicate_pattern_elements_do_not_matter() -> None:
    assert contains([1, 2, 3], [1, 2, 2])
    assert contains([1], [1, 1, 1])


def test_an_array_does_not_contain_an_element_it_lacks() -> None:
    assert not contains([1, 2, 3], [4])


def test_any_array_contains_the_empty_array() -> None:
    assert contains([], [])
    assert contains([1, "a", None], [])


def test_an_array_does_not_contain_an_object() -> None:
    assert not contains([], {})
    assert not contains([{"a": 1}], {"a": 1})


def test_an_array_does_not_contain_the_contents_of_a_nested_array() -> None:
    assert not contains([1, 2, [1, 3]], [1, 3])
    assert not contains([[1, 2]], [1])


def test_a_nested_array_pattern_matches_a_nested_array_element() -> None:
    assert contains([1, 2, [1, 3]], [[1, 3]])
    assert contains([1, [2]], [[2]])


def test_an_empty_nested_array_pattern_needs_a_nested_array_element() -> None:
    assert contains([[5]], [[]])
    assert not contains([1], [[]])


def test_an_empty_nested_object_pattern_needs_a_nested_object_element() -> None:
    assert contains([{"a": 1}], [{}])
    assert not contains([[]], [{}])


def test_an_array_element_pattern_may_match_a_superset_object_element() -> None:
    document = {"tags": [{"k": "a", "v": 1}, {"k": "b", "v": 2}]}
    assert contains(document, {"tags": [{"k": "b"}]})


def test_each_pattern_element_may_match_a_different_document_element() -> None:
    assert contains([{"a": 1}, {"b": 2}], [{"a": 1}, {"b": 2}])


def test_two_pattern_elements_may_match_the_same_document_element() -> None:
    assert contains([{"a": 1, "b": 2}], [{"a": 1}, {"b": 2}])


def test_a_tuple_is_an_array() -> None:
    assert contains((1, 2), (2,))
    assert contains({"a": (1, 2)}, {"a": [1]})


# --- the top-level scalar-in-array exception -------------------------------


def test_a_top_level_array_contains_a_scalar_equal_to_one_of_its_elements() -> None:
    assert contains(["foo", "bar"], "foo")
    assert contains([1, 2], 2.0)
    assert contains([None], None)


def test_a_top_level_array_does_not_contain_a_scalar_it_lacks() -> None:
    assert not contains(["foo", "bar"], "baz")


def test_a_top_level_array_does_not_contain_a_scalar_inside_a_nested_array() -> None:
    assert not contains([[1]], 1)


def test_an_array_value_below_the_top_level_does_not_contain_a_scalar() -> None:
    assert not contains({"a": [1]}, {"a": 1})
    assert not contains([[1]], [1])


def test_a_top_level_scalar_does_not_contain_an_array() -> None:
    assert not contains(1, [1])
    assert not contains("a", ["a"])


def test_a_top_level_scalar_does_not_contain_the_empty_array() -> None:
    assert not contains(1, [])


def test_a_top_level_scalar_does_not_contain_an_object() -> None:
    assert not contains(1, {})


# --- scalars ---------------------------------------------------------------


def test_a_scalar_contains_an_equal_scalar() -> None:
    assert contains("foo", "foo")
    assert contains(1, 1)
    assert contains(True, True)
    assert contains(None, None)


def test_a_scalar_does_not_contain_a_different_scalar() -> None:
    assert not contains("foo", "bar")
    assert not contains(True, False)
    assert not contains(1, 2)


def test_a_number_does_not_match_the_same_digits_as_a_string() -> None:
    assert not contains({"a": 1}, {"a": "1"})
    assert not contains({"a": "1"}, {"a": 1})
    assert not contains(["1"], 1)


def test_a_boolean_does_not_match_the_number_one_or_zero() -> None:
    assert not contains(True, 1)
    assert not contains(1, True)
    assert not contains({"a": False}, {"a": 0})
    assert not contains([0], [False])
    assert not contains([1], True)


def test_null_only_matches_null() -> None:
    assert not contains({"a": None}, {"a": False})
    assert not contains({"a": 0}, {"a": None})
    assert not contains({"a": ""}, {"a": None})
    assert contains({"a": None}, {"a": None})


def test_an_integer_matches_the_same_value_written_as_a_float() -> None:
    assert contains(1, 1.0)
    assert contains({"a": 1.0}, {"a": 1})
    assert contains([[1]], [[1.0]])


def test_negative_zero_matches_zero() -> None:
    assert contains(-0.0, 0)
    assert contains([0], [-0.0])


def test_numbers_compare_by_exact_value_not_by_float_rounding() -> None:
    # Both are 9007199254740992.0 as a float; PostgreSQL's numeric tells them apart.
    assert not contains(2**53 + 1, 2**53)
    assert not contains({"n": 2**53 + 1}, {"n": float(2**53)})


def test_a_float_compares_as_the_decimal_text_json_writes_for_it() -> None:
    # json.dumps(1e23) is "1e+23", which PostgreSQL reads as exactly 10**23,
    # though the float's binary value is 99999999999999991611392.
    assert contains(10**23, 1e23)
    assert not contains(99999999999999991611392, 1e23)


def test_a_float_does_not_match_a_nearby_decimal() -> None:
    assert not contains(0.1, 0.1000000000000001)
    assert contains(0.1, Decimal("0.1"))
    assert contains(Decimal("0.10"), 0.1)


def test_decimals_compare_by_value_whatever_their_exponent() -> None:
    assert contains(Decimal("1.00"), Decimal("1"))
    assert contains([Decimal("1E+2")], 100)
    assert not contains(Decimal("1.0000000000000000000001"), 1)


def test_strings_compare_by_exact_code_points() -> None:
    assert not contains("\u00e9", "e\u0301")  # no Unicode normalization
    assert not contains("Foo", "foo")  # no case folding
    assert not contains("a ", "a")
    assert contains({"\U0001f600": "\u00e9"}, {"\U0001f600": "\u00e9"})


def test_object_keys_compare_by_exact_code_points() -> None:
    assert not contains({"\u00e9": 1}, {"e\u0301": 1})
    assert not contains({"Name": 1}, {"name": 1})


# --- values that are not JSON ----------------------------------------------


def test_a_nan_is_refused() -> None:
    with pytest.raises(ValueError, match="nan"):
        contains([1], float("nan"))


def test_an_infinite_decimal_is_refused() -> None:
    with pytest.raises(ValueError, match="Infinity"):
        contains(Decimal("Infinity"), 1)


def test_a_value_of_no_json_type_is_refused() -> None:
    with pytest.raises(TypeError, match="set"):
        contains({"a": {1}}, {"a": {1}})


def test_an_object_pattern_key_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(TypeError, match="keys are strings"):
        contains({"1": 1}, {1: 1})


# --- message filters -------------------------------------------------------

REGISTRATION = {"form": {"@name": "Registration"}}
TEST_SUBMISSION = {"form": {"test": True}}


def test_a_registration_form_matches_the_registration_filter() -> None:
    body = {"form": {"@name": "Registration", "name": "Ada"}}
    assert matches_filter(body, REGISTRATION, TEST_SUBMISSION)


def test_a_test_registration_form_is_excluded() -> None:
    body = {"form": {"@name": "Registration", "test": True}}
    assert not matches_filter(body, REGISTRATION, TEST_SUBMISSION)


def test_a_registration_form_marked_not_a_test_is_not_excluded() -> None:
    body = {"form": {"@name": "Registration", "test": False}}
    assert matches_filter(body, REGISTRATION, TEST_SUBMISSION)


def test_a_registration_form_with_test_as_a_string_is_not_excluded() -> None:
    body = {"form": {"@name": "Registration", "test": "true"}}
    assert matches_filter(body, REGISTRATION, TEST_SUBMISSION)


def test_another_form_does_not_match_the_registration_filter() -> None:
    body = {"form": {"@name": "Feedback"}}
    assert not matches_filter(body, REGISTRATION, TEST_SUBMISSION)


def test_without_an_exclusion_only_the_criteria_decide() -> None:
    body = {"form": {"@name": "Registration", "test": True}}
    assert matches_filter(body, REGISTRATION, None)


def test_an_empty_object_criteria_matches_every_object_body() -> None:
    assert matches_filter({"anything": [1]}, {}, None)
    assert not matches_filter(["not", "an", "object"], {}, None)


def test_an_empty_object_exclusion_excludes_every_object_body() -> None:
    assert not matches_filter({"a": 1}, {"a": 1}, {})
