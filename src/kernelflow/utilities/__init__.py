"""Prefect's ``prefect.utilities`` path; kernelflow has its ``annotations`` module."""
