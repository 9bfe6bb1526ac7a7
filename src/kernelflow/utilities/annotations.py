"""Argument annotations, under Prefect's module path (``prefect.utilities.annotations``).

``unmapped(x)`` passes ``x`` whole to every mapped run; ``allow_failure(future)`` runs
the downstream task even if the upstream failed; ``quote(x)`` passes ``x`` without
looking inside it for futures.
"""

from kernelflow._annotations import BaseAnnotation, allow_failure, quote, unmapped

__all__ = ["BaseAnnotation", "allow_failure", "quote", "unmapped"]
