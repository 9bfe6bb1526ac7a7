"""Prefect's ``prefect.client`` path, for the type names ported code imports from it.

kernelflow has no API client (no server to talk to); ``client.schemas.objects`` names
kernelflow's own run records and state types.
"""
