"""What on-prem code hands to Dagster carries keys, counts and reasons, never PII values: the scrubber, the
row mask, GX results on a PII column, and the step wrapper (unit tests; the whole graph is scanned in
tests/test_residency.py and tests/test_hybrid.py)."""

from datetime import date

import polars as pl
import pytest

from core.contracts import CUSTOMERS, KNOWN_NAMES, PII_COLUMNS
from core.redaction import redact_row, scrub
from expectations.raw import suite as raw_suite
from expectations.runner import validate

EMAIL, NAME, PHONE, BIRTH = "zelda.quux@leak.example", "Zelda Quux", "+1-555-321-9876", "1977-07-07"


@pytest.mark.parametrize(
    "message",
    [
        f"conversion from `str` to `i64` failed in column 'email' for 1 out of 1 values: [\"{EMAIL}\"]",
        f'duplicate key value violates unique constraint "customers_pk"\nDETAIL:  Key (email)=({EMAIL}) exists.',
        f"Conversion Error: Could not convert string '{NAME}' to INT64",
        f"invalid literal for int() with base 10: '{NAME}'",
        f"bad values {EMAIL} {PHONE} born {BIRTH} 00:00:00",
        f"shape: (1, 2)\n┌─────┬────────────┐\n│ id  ┆ name       │\n╞═════╪════════════╡\n│ 1   ┆ {NAME} │\n└─────┴────────────┘",
    ],
)
def test_scrub_removes_every_literal_value(message):
    text = scrub(message, KNOWN_NAMES)
    for value in (EMAIL, NAME, PHONE, BIRTH, "Zelda", "Quux", "321-9876"):
        assert value not in text, text
    assert "<redacted>" in text or "<printed table redacted>" in text


def test_scrub_keeps_the_names_that_say_where():
    text = scrub("conversion from `str` to `i64` failed in column 'email' for 3 out of 7 values", KNOWN_NAMES)
    assert text == "conversion from `str` to `i64` failed in column 'email' for 3 out of 7 values"
    assert "'customers'" in scrub("table 'customers' is locked", KNOWN_NAMES)
    assert len(scrub("x" * 10_000)) < 2100  # a runaway message is cut


def test_redact_row_masks_pii_columns_only():
    row = {"customer_id": 7, "full_name": NAME, "email": EMAIL, "phone": None, "signup_date": None}
    assert redact_row(row, CUSTOMERS.pii) == {
        "customer_id": 7,
        "full_name": "<redacted: full_name>",
        "email": "<redacted: email>",
        "phone": None,  # that it is missing is no secret, and it is often the reason
        "signup_date": None,
    }
    assert PII_COLUMNS == {"full_name", "email", "phone", "birth_date"}


def _customers(email: str) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": [1, 2],
            "full_name": ["Ann Lee", NAME],
            "email": ["ann.lee@example.com", email],
            "phone": ["+1-555-000-0001", PHONE],
            "birth_date": [date(1980, 1, 1), date(1977, 7, 7)],
            "signup_date": [date(2026, 1, 1), date(2026, 1, 2)],
            "region": ["north", "south"],
            "plan": ["basic", "premium"],
        }
    )


def test_a_failing_pii_expectation_reports_counts_and_no_values():
    """A malformed e-mail fails the customers contract; GX's sample of the bad values never leaves."""
    bad = "zelda.quux#leak.example"
    result = validate(_customers(bad), raw_suite(CUSTOMERS), redact=CUSTOMERS.pii)
    failed = [o for o in result.failed if o.column == "email"]
    assert failed and failed[0].unexpected_count == 1
    text = result.summary() + result.table_markdown() + repr(result.outcomes)
    assert bad not in text and "<redacted: email>" in text
    # without the redaction GX would have published it: the test would notice a GX that stops sampling
    assert bad in validate(_customers(bad), raw_suite(CUSTOMERS)).summary()


def test_the_step_wrapper_scrubs_foreign_errors_and_passes_the_platforms_own():
    import dagster as dg

    from hybrid_assets.onprem.residency import OnpremStepError, scrubbed
    from resources.warehouse import WarehouseError

    @scrubbed
    def leaks():
        raise ValueError(f"could not parse {EMAIL!r} as a date")

    with pytest.raises(OnpremStepError) as caught:
        leaks()
    assert EMAIL not in str(caught.value) and "ValueError in leaks" in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # nothing chained to it

    @scrubbed
    def fails_from_a_driver_error():
        try:
            raise ValueError(f"duplicate key {EMAIL}")
        except ValueError as exc:
            raise WarehouseError("PostgreSQL warehouse at db:5432: insert failed") from exc

    with pytest.raises(WarehouseError) as caught:  # our message passes, the driver's cause does not
        fails_from_a_driver_error()
    assert caught.value.__cause__ is None and caught.value.__suppress_context__

    for own in (dg.Failure(description="schema of source table customers changed"), WarehouseError("down")):

        @scrubbed
        def fails(own=own):
            raise own

        with pytest.raises(type(own)) as caught:
            fails()
        assert caught.value is own
