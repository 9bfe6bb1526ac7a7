"""Argument annotations, under Prefect's module path (``prefect.utilities.annotations``).

``unmapped(x)`` passes ``x`` whole to every mapped run; ``allow_failure(future)`` runs
the downstream task even if the upstream failed; ``quote(x)`` passes ``x`` without
looking inside it for futures; ``opaque(future)`` resolves a future without looking
inside its value.
"""

from kernelflow._annotations import BaseAnnotation, allow_failure, opaque, quote, unmapped

__all__ = ["BaseAnnotation", "allow_failure", "opaque", "quote", "unmapped"]
