"""The cloud code location: everything downstream of the object store. It has no warehouse connection."""
