"""Suites derived from the feature catalog: the on-prem features, the export that crosses to the cloud, the
cloud engagement features and the training set. Nothing here names a feature by hand."""

from __future__ import annotations

from core import catalog
from expectations.runner import ensure_context


def feature_suite(view: str, name: str):
    """Exact columns (so no PII column can slip into an export), non-null keys, ranges from the catalog."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    ensure_context()
    suite = gx.ExpectationSuite(name=name)
    add = suite.add_expectation
    columns = [catalog.ENTITY_KEY, catalog.EVENT_TS, *catalog.feature_names(view)]
    add(gxe.ExpectTableColumnsToMatchSet(column_set=columns, exact_match=True))
    add(gxe.ExpectTableRowCountToBeBetween(min_value=1))
    add(gxe.ExpectColumnValuesToNotBeNull(column=catalog.ENTITY_KEY))
    add(gxe.ExpectColumnValuesToNotBeNull(column=catalog.EVENT_TS))
    add(gxe.ExpectCompoundColumnsToBeUnique(column_list=[catalog.ENTITY_KEY, catalog.EVENT_TS]))
    for f in catalog.features_of(view):
        _feature_expectations(suite, f)
    return suite


def _feature_expectations(suite, f: catalog.Feature) -> None:
    import great_expectations.expectations as gxe

    if not f.nullable:
        suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=f.name))
    if f.min_value is not None or f.max_value is not None:
        suite.add_expectation(
            gxe.ExpectColumnValuesToBeBetween(column=f.name, min_value=f.min_value, max_value=f.max_value)
        )


def training_set_suite():
    import great_expectations as gx
    import great_expectations.expectations as gxe

    ensure_context()
    suite = gx.ExpectationSuite(name="training_set")
    add = suite.add_expectation
    add(gxe.ExpectTableRowCountToBeBetween(min_value=100))
    add(gxe.ExpectColumnValuesToBeInSet(column="churned", value_set=[0, 1]))
    add(gxe.ExpectColumnValuesToNotBeNull(column="churned"))
    add(gxe.ExpectCompoundColumnsToBeUnique(column_list=[catalog.ENTITY_KEY, catalog.EVENT_TS]))
    # both classes present, and not degenerate: a label bug shows up here first
    add(gxe.ExpectColumnMeanToBeBetween(column="churned", min_value=0.01, max_value=0.6))
    for f in catalog.active_features():
        _feature_expectations(suite, f)
    return suite


def marketing_events_suite():
    import great_expectations as gx
    import great_expectations.expectations as gxe

    ensure_context()
    suite = gx.ExpectationSuite(name="marketing_events")
    add = suite.add_expectation
    add(
        gxe.ExpectTableColumnsToMatchSet(
            column_set=["customer_id", "campaign", "event_type", "event_ts"], exact_match=True
        )
    )
    add(gxe.ExpectTableRowCountToBeBetween(min_value=1))
    add(gxe.ExpectColumnValuesToNotBeNull(column="customer_id"))
    add(gxe.ExpectColumnValuesToNotBeNull(column="event_ts"))
    add(gxe.ExpectColumnValuesToBeInSet(column="event_type", value_set=["sent", "open", "click"]))
    return suite


def labels_suite(name: str = "churn_labels"):
    import great_expectations as gx
    import great_expectations.expectations as gxe

    ensure_context()
    suite = gx.ExpectationSuite(name=name)
    add = suite.add_expectation
    add(
        gxe.ExpectTableColumnsToMatchSet(
            column_set=[catalog.ENTITY_KEY, catalog.EVENT_TS, "churned"], exact_match=True
        )
    )
    add(gxe.ExpectTableRowCountToBeBetween(min_value=1))
    add(gxe.ExpectColumnValuesToNotBeNull(column=catalog.ENTITY_KEY))
    add(gxe.ExpectColumnValuesToBeInSet(column="churned", value_set=[0, 1]))
    add(gxe.ExpectCompoundColumnsToBeUnique(column_list=[catalog.ENTITY_KEY, catalog.EVENT_TS]))
    return suite
