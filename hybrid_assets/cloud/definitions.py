"""Definitions of the ``cloud`` code location (see workspace.yaml): the groups of ``defs/`` (sources, feature
store, training, model, deployment), loaded by Dagster's defs-folder convention, plus this location's
resources and executor."""

from pathlib import Path

import dagster as dg

from hybrid_assets.resources import cloud_resources, executor_for


def group_defs() -> dg.Definitions:
    """Every asset, check, job, sensor and schedule of defs/, without resources."""
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions.merge(
        group_defs(), dg.Definitions(resources=cloud_resources(), executor=executor_for("cloud"))
    )
