"""The sample format's version. Bump the minor for additive changes, the major for breaking ones."""

SCHEMA_VERSION = "1.0.0"
