"""One declaration per feature: the Feast schema, the GX suites and the docs all follow the catalog."""

from pathlib import Path

from core import catalog

DOCS = Path(__file__).resolve().parent.parent / "docs" / "features.md"


def test_enough_onprem_features_each_declared_once():
    names = [f.name for f in catalog.FEATURES]
    assert len(names) == len(set(names))
    assert len(catalog.features_of(catalog.ACTIVITY_VIEW)) >= 12
    for f in catalog.FEATURES:
        assert f.description and f.dtype in ("int64", "float64")
        assert (f.agg is None) != (f.derive is None), f.name


def test_feast_schema_is_derived_from_the_catalog(tmp_path):
    from feast.types import Float64, Int64

    from feature_repo.repo import build

    objects = build(str(tmp_path))
    for view in (catalog.ACTIVITY_VIEW, catalog.ENGAGEMENT_VIEW):
        fields = {f.name: f.dtype for f in objects[view].schema}
        assert fields == {
            f.name: (Int64 if f.dtype == "int64" else Float64) for f in catalog.features_of(view)
        }
    service = objects[catalog.FEATURE_SERVICE]
    assert {p.name for p in service.feature_view_projections} == {
        catalog.ACTIVITY_VIEW,
        catalog.ENGAGEMENT_VIEW,
    }


def test_gx_suite_covers_every_feature():
    from expectations.features import feature_suite

    suite = feature_suite(catalog.ACTIVITY_VIEW, "x")
    covered = {e.column for e in suite.expectations if getattr(e, "column", None)}
    assert set(catalog.feature_names(catalog.ACTIVITY_VIEW)) <= covered


def test_feature_docs_are_current():
    assert DOCS.read_text() == catalog.features_markdown(), "run `.venv/bin/hybrid docs` to regenerate"
