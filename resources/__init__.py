"""One module per external system. Each exposes a plain client (usable from the CLI, tests and the endpoint)
and a Dagster resource that builds that client when a run starts, never at import time."""
