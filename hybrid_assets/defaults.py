"""What every asset of a code location shares, declared once: the retry policy, the boundary tags and the
automation conditions by which the cloud assets follow the on-prem export."""

import dagster as dg

RETRY = dg.RetryPolicy(max_retries=2, delay=2, backoff=dg.Backoff.EXPONENTIAL)

# Where an asset's data lives, shown in the UI: on-prem only, or the curated export that crosses to the cloud.
ONPREM = {"boundary": "onprem"}
CROSSES_TO_CLOUD = {"boundary": "crosses-to-cloud"}

_A = dg.AutomationCondition
# The export is daily-partitioned and most of its days (those before the data, say) are never materialized:
# "any dependency missing" would hold forever. What matters is that every dependency has *some* data, or is
# requested on the same tick: then a missing chain (a fresh deployment) is requested whole, as one run whose
# steps go in dependency order, not one level per tick. A blocking check that fails in that run still stops
# everything downstream of it (Dagster skips those steps, as all_deps_blocking_checks_passed says).
DEPS_PRESENT = _A.all_deps_match(~_A.missing() | _A.will_be_requested()).with_label("every_dep_has_data")
# eager() reacts to upstream updates but, by design, not to assets that were already missing when the
# automation sensor first saw them; on a fresh deployment everything is. So also fill a missing asset once
# its upstream exists or is requested with it (and stop after a failure instead of retrying it every tick).
FILL_MISSING = (
    _A.missing() & ~_A.in_progress() & ~_A.any_deps_in_progress() & ~_A.execution_failed()
).with_label("fill_missing")
EAGER = _A.eager().without(~_A.any_deps_missing()).with_label("eager")
FOLLOW_UPSTREAM = (EAGER | FILL_MISSING) & DEPS_PRESENT & _A.all_deps_blocking_checks_passed()
# A cloud check is requested with its asset. Without a condition of its own it would still run with the asset,
# but the automation would not count it as requested on that tick, so all_deps_blocking_checks_passed would
# hold the children back to the next tick.
WITH_ITS_ASSET = _A.any_deps_match(_A.will_be_requested()).with_label("with_its_asset")
# the Feast registry: re-applied when the upstream changes or its code version (the catalog, the repo) does
REAPPLY = _A.eager() | _A.code_version_changed() | FILL_MISSING
