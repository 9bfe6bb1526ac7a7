"""Helpers for testing flows and tasks (``prefect.testing``): see ``utilities``."""
