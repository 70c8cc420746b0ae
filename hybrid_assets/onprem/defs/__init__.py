"""The on-prem location's definitions, one module per asset group (raw, features, export) with its checks and
sensors next to its assets; ``hybrid_assets/onprem/definitions.py`` loads this folder."""
