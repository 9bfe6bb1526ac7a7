"""Helpers shared by the benchmark scripts (a folder, so `make bench` does not run it)."""
