"""Per-record validation: every rule, the rejection's shape, duplicates, and the email fast path
agreeing with email-validator itself."""

from __future__ import annotations

import datetime as dt

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from jobrelay.ingestion.emails import normalize_email
from jobrelay.ingestion.records import check_records
from jobrelay.ingestion.schemas import RejectedRecord, StudentRecord
from tests.ingestion.factories import student, without

PREFIX = "UNIT"


def only_problem(record: dict[str, object]) -> tuple[str, str]:
    [outcome] = check_records([record])
    assert isinstance(outcome, RejectedRecord), outcome
    assert len(outcome.errors) == 1, outcome.errors
    return outcome.errors[0].field, outcome.errors[0].type


def test_a_valid_record_is_trimmed_and_normalized() -> None:
    record = student(PREFIX, 1, first_name="  Ada ", email="Ada.Lovelace@School.Example.COM")
    [outcome] = check_records([record])
    assert isinstance(outcome, StudentRecord)
    assert outcome.first_name == "Ada"
    assert outcome.email == "Ada.Lovelace@school.example.com"
    assert outcome.date_of_birth == dt.date.fromisoformat(str(record["date_of_birth"]))


@pytest.mark.parametrize(
    ("override", "field", "error_type"),
    [
        ({"email": "not-an-email"}, "email", "email_invalid"),
        ({"email": "a@localhost"}, "email", "email_invalid"),
        ({"grade": 0}, "grade", "greater_than_equal"),
        ({"grade": 13}, "grade", "less_than_equal"),
        ({"grade": 7.5}, "grade", "int_from_float"),
        ({"grade": True}, "grade", "int_type"),
        ({"grade": "seven"}, "grade", "int_parsing"),
        ({"date_of_birth": "2010-02-30"}, "date_of_birth", "date_invalid"),
        ({"date_of_birth": "17/05/2010"}, "date_of_birth", "date_format"),
        ({"date_of_birth": 1273449600}, "date_of_birth", "date_format"),
        ({"date_of_birth": "2999-01-01"}, "date_of_birth", "date_in_future"),
        ({"date_of_birth": "1850-01-01"}, "date_of_birth", "date_too_old"),
        ({"student_id": ""}, "student_id", "string_too_short"),
        ({"student_id": "A 1"}, "student_id", "identifier_spaces"),
        ({"student_id": "x" * 65}, "student_id", "string_too_long"),
        ({"first_name": "   "}, "first_name", "string_too_short"),
        ({"last_name": None}, "last_name", "string_type"),
        ({"school_id": ["S1"]}, "school_id", "string_type"),
        ({"nickname": "Al"}, "nickname", "extra_forbidden"),
        (without("email"), "email", "missing"),
    ],
)
def test_each_rule_names_the_field_and_reason(
    override: dict[str, object], field: str, error_type: str
) -> None:
    assert only_problem(student(PREFIX, 1, **override)) == (field, error_type)


def test_a_birth_date_of_today_is_accepted() -> None:
    today = dt.datetime.now(dt.UTC).date().isoformat()
    [outcome] = check_records([student(PREFIX, 1, date_of_birth=today)])
    assert isinstance(outcome, StudentRecord)


def test_numeric_ids_and_grades_as_text_are_accepted() -> None:
    [outcome] = check_records([student(PREFIX, 1, student_id=12345, grade="7")])
    assert isinstance(outcome, StudentRecord)
    assert (outcome.student_id, outcome.grade) == ("12345", 7)


def test_a_rejection_lists_every_problem_of_the_record() -> None:
    record = student(PREFIX, 3, email="nope", grade=99, school_id="")
    [outcome] = check_records([record])
    assert isinstance(outcome, RejectedRecord)
    assert outcome.index == 0
    assert outcome.student_id == f"{PREFIX}-00003"
    assert {problem.field for problem in outcome.errors} == {"email", "grade", "school_id"}
    assert all(problem.reason for problem in outcome.errors)


def test_the_first_valid_record_of_a_student_id_wins_and_later_ones_are_duplicates() -> None:
    first = student(PREFIX, 1)
    broken_twin = student(PREFIX, 1, email="broken")
    later_twin = student(PREFIX, 1, first_name="Other")
    outcomes = check_records([broken_twin, first, student(PREFIX, 2), later_twin])
    assert isinstance(outcomes[0], RejectedRecord)
    assert [problem.field for problem in outcomes[0].errors] == ["email"]
    assert isinstance(outcomes[1], StudentRecord)
    assert isinstance(outcomes[2], StudentRecord)
    duplicate = outcomes[3]
    assert isinstance(duplicate, RejectedRecord)
    assert duplicate.index == 3
    assert duplicate.student_id == f"{PREFIX}-00001"
    [problem] = duplicate.errors
    assert (problem.field, problem.type) == ("student_id", "duplicate_student_id")
    assert "index 1" in problem.reason


def test_a_student_id_that_is_not_text_is_reported_as_none() -> None:
    [outcome] = check_records([student(PREFIX, 1, student_id={"id": 1})])
    assert isinstance(outcome, RejectedRecord)
    assert outcome.student_id is None


def _reference(address: str) -> str | None:
    try:
        return validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def _fast(address: str) -> str | None:
    try:
        return normalize_email(address)
    except EmailNotValidError:
        return None


LOCAL_CHARS = "abcXYZ019._-+!#$%&'*/=?^`{|}~ @\"é"
DOMAIN_CHARS = "abcXYZ019.-_ é"
DOMAINS = [
    "example.com",
    "School.Example.ORG",
    "localhost",
    "a.b",
    "x.invalid",
    "xn--bcher-kva.example",
]


@settings(max_examples=1000, deadline=None)
@given(
    local=st.one_of(
        st.text(LOCAL_CHARS, min_size=0, max_size=70),
        st.sampled_from(["Postmaster", "INFO", "www"]),
    ),
    domain=st.one_of(st.text(DOMAIN_CHARS, min_size=0, max_size=30), st.sampled_from(DOMAINS)),
)
def test_the_fast_path_agrees_with_email_validator(local: str, domain: str) -> None:
    address = f"{local}@{domain}"
    assert _fast(address) == _reference(address)


@pytest.mark.parametrize("length", [253, 254, 255, 300])
def test_the_fast_path_agrees_on_long_addresses(length: int) -> None:
    domain = "school.example.com"
    address = "a" * (length - len(domain) - 1) + "@" + domain
    assert _fast(address) == _reference(address)
