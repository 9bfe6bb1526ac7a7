"""Prefect's ``prefect.utilities`` path: ``annotations`` (unmapped, allow_failure, quote,
opaque), ``callables`` (parameter_schema), ``collections`` (flat dicts), ``hashing``."""
