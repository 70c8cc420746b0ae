"""Group ``deployment``: the production model pointer that the endpoint follows, moved only to a version the
quality gate passed."""

import dagster as dg

from hybrid_assets.cloud import report
from hybrid_assets.cloud.defs.model import QUALITY_GATE_KEY
from hybrid_assets.defaults import FOLLOW_UPSTREAM
from resources.model_registry import ModelRegistryResource

GROUP = "deployment"


def approved_model_version(instance: dg.DagsterInstance) -> str:
    """The version the latest verdict of the quality gate lets production serve. The deployment follows the
    gate's verdict, never simply the newest model: a candidate the gate rejected is never promoted later."""
    record = instance.get_latest_asset_check_evaluation_record(QUALITY_GATE_KEY)
    evaluation = record.event.dagster_event.event_specific_data if record and record.event else None
    if evaluation is None or not hasattr(evaluation, "passed"):
        raise dg.Failure(description="the quality gate has not judged a model yet: materialize churn_model")
    if not evaluation.passed:
        raise dg.Failure(
            description=f"the quality gate's latest verdict is a failure: {evaluation.description}",
            allow_retries=False,
        )
    return evaluation.metadata["version"].value


@dg.asset(
    group_name=GROUP,
    deps=["churn_model"],
    kinds={"fastapi"},
    automation_condition=FOLLOW_UPSTREAM,
    description="The production model pointer (models/churn_model/production.json in the registry) that the "
    "endpoint follows. Runs only when churn_model's quality gate passed: AUC above the floor and no worse than "
    "the current production model. Shows the served version and its model card. A failure means churn_model was "
    "never materialized or the registry was unreachable; the endpoint keeps serving the previous model.",
)
def churn_model_deployment(
    context: dg.AssetExecutionContext, model_registry: ModelRegistryResource
) -> dg.MaterializeResult:
    registry = model_registry.client()
    version = approved_model_version(context.instance)
    current = registry.production()
    if version == "none" or (current and current["version"] == version):
        pointer, changed = current, False
    else:
        pointer, changed = (
            registry.promote(version, reason=f"passed the quality gate in run {context.run.run_id}"),
            True,
        )
    served = pointer["version"]
    card = registry.artifact(served, report.CARD_FILE)
    return dg.MaterializeResult(
        metadata={
            "served_version": served,
            "promoted": changed,
            "previous_version": (current or {}).get("version", "none"),
            "auc": pointer["metrics"].get("auc"),
            "promoted_at": pointer["promoted_at"],
            "model_card": dg.MetadataValue.md(
                report.card_summary(card.decode())
                + f"\nFull card, with the ROC, calibration and importance plots: "
                f"`{registry.artifact_uri(served, report.CARD_FILE)}`"
                if card
                else f"{served} has no model card (registered before the registry stored reports)"
            ),
            "model_card_uri": dg.MetadataValue.path(registry.artifact_uri(served, report.CARD_FILE)),
        }
    )
