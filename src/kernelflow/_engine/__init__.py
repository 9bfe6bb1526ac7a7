"""The engine: each run's lifecycle, start to end, and the drivers that step it."""
