"""Definitions of the ``onprem`` code location (see workspace.yaml): the groups of ``defs/`` (raw, features,
export), loaded by Dagster's defs-folder convention, plus this location's resources and executor."""

from pathlib import Path

import dagster as dg

from hybrid_assets.partitions import starting_on
from hybrid_assets.resources import executor_for, onprem_resources


def group_defs() -> dg.Definitions:
    """Every asset, check, job and sensor of defs/, without resources, on the default calendar."""
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)


@dg.definitions
def defs() -> dg.Definitions:
    """Loaded by Dagster (not on import): the daily partitions start on the source mapping's first day, read
    from the mapping file (a file, no connection)."""
    from core.settings import load_settings
    from core.sources import load

    first_day = load(load_settings(apply_env_file=False).sources_file).first_day
    return dg.Definitions.merge(
        starting_on(group_defs(), first_day),
        dg.Definitions(resources=onprem_resources(), executor=executor_for("onprem")),
    )
