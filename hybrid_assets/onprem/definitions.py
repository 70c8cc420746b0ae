"""Definitions of the ``onprem`` code location (see workspace.yaml): the groups of ``defs/`` (raw, features,
export), loaded by Dagster's defs-folder convention, plus this location's resources and executor."""

from pathlib import Path

import dagster as dg

from hybrid_assets.resources import executor_for, onprem_resources


def group_defs() -> dg.Definitions:
    """Every asset, check, job and sensor of defs/, without resources."""
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions.merge(
        group_defs(), dg.Definitions(resources=onprem_resources(), executor=executor_for("onprem"))
    )
