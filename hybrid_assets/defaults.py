"""What every asset of a code location shares, declared once: the retry policy, the boundary tags and the
automation conditions by which the cloud assets follow the on-prem export."""

import dagster as dg

RETRY = dg.RetryPolicy(max_retries=2, delay=2, backoff=dg.Backoff.EXPONENTIAL)

# Where an asset's data lives, shown in the UI: on-prem only, or the curated export that crosses to the cloud.
ONPREM = {"boundary": "onprem"}
CROSSES_TO_CLOUD = {"boundary": "crosses-to-cloud"}

_A = dg.AutomationCondition
# The export is daily-partitioned and most of its days (those before the data, say) are never materialized:
# "any dependency missing" would hold forever. What matters is that every dependency has *some* data.
DEPS_PRESENT = _A.all_deps_match(~_A.missing()).with_label("every_dep_has_data")
# eager() reacts to upstream updates but, by design, not to assets that were already missing when the
# automation sensor first saw them; on a fresh deployment everything is. So also fill a missing asset once
# its upstream exists (and stop after a failure instead of retrying it on every tick).
FILL_MISSING = (
    _A.missing() & ~_A.in_progress() & ~_A.any_deps_in_progress() & ~_A.execution_failed()
).with_label("fill_missing")
EAGER = _A.eager().without(~_A.any_deps_missing()).with_label("eager")
FOLLOW_UPSTREAM = (EAGER | FILL_MISSING) & DEPS_PRESENT & _A.all_deps_blocking_checks_passed()
# the Feast registry: re-applied when the upstream changes or its code version (the catalog, the repo) does
REAPPLY = _A.eager() | _A.code_version_changed() | FILL_MISSING
