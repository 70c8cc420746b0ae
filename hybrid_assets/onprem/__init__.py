"""The on-prem code location: it runs next to the warehouse, holds the only warehouse connection, and
publishes nothing but curated, non-PII features and labels to the object store."""
