"""Data contracts: one Great Expectations 1.x suite per data asset, plus the row rules that quarantine bad raw
rows. Suites are built by functions (the feature suites are derived from ``core.catalog``) and run by
:mod:`expectations.runner` inside blocking Dagster asset checks."""
