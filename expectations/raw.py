"""The GX suites of the on-prem source tables' accepted rows, from their contracts (core/contracts.py)."""

from __future__ import annotations

from core.contracts import CATEGORIES, CHANNELS, EMAIL_PATTERN, PLANS, REGIONS, SEVERITIES, TableContract
from expectations.runner import ensure_context


def suite(contract: TableContract):
    """The GX suite the accepted rows of ``contract``'s table must pass before anything downstream runs."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    ensure_context()
    suite = gx.ExpectationSuite(name=f"{contract.table}_accepted_rows")
    add = suite.add_expectation
    add(gxe.ExpectTableColumnsToMatchSet(column_set=list(contract.columns), exact_match=True))
    add(gxe.ExpectTableRowCountToBeBetween(min_value=1))
    add(gxe.ExpectColumnValuesToNotBeNull(column=contract.key))
    add(gxe.ExpectColumnValuesToBeUnique(column=contract.key))
    if contract.table == "customers":
        add(gxe.ExpectColumnValuesToBeInSet(column="region", value_set=REGIONS))
        add(gxe.ExpectColumnValuesToBeInSet(column="plan", value_set=PLANS))
        add(gxe.ExpectColumnValuesToNotBeNull(column="signup_date"))
        # a PII column: its failures are reported as counts, its samples redacted (expectations.runner)
        add(gxe.ExpectColumnValuesToMatchRegex(column="email", regex=EMAIL_PATTERN))
    elif contract.table == "transactions":
        add(gxe.ExpectColumnValuesToNotBeNull(column="customer_id"))
        add(gxe.ExpectColumnValuesToBeBetween(column="amount", min_value=0, max_value=100_000))
        add(gxe.ExpectColumnValuesToBeInSet(column="category", value_set=CATEGORIES))
        add(gxe.ExpectColumnValuesToBeInSet(column="channel", value_set=CHANNELS))
        add(gxe.ExpectColumnValuesToNotBeNull(column="event_ts"))
    else:
        add(gxe.ExpectColumnValuesToNotBeNull(column="customer_id"))
        add(gxe.ExpectColumnValuesToBeInSet(column="severity", value_set=SEVERITIES))
        add(gxe.ExpectColumnValuesToNotBeNull(column="opened_ts"))
    return suite
