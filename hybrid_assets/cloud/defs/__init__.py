"""The cloud location's definitions, one module per asset group (sources, feature store, training, model,
deployment) with its checks, sensors and schedules next to its assets; ``hybrid_assets/cloud/definitions.py``
loads this folder."""
