"""The one exception hierarchy of truckcarbon.

Every error raised on purpose by the package derives from :class:`TruckcarbonError`
and, where one fits, from the matching built-in exception, so callers can catch
either. Messages say what was wrong, where (file, row, column) and what to do.
"""

from __future__ import annotations


class TruckcarbonError(Exception):
    """Root of all errors raised by truckcarbon."""


class InputError(TruckcarbonError, ValueError):
    """User-supplied data or arguments are unusable (missing column, wrong type, ...)."""


class ReferenceDataError(TruckcarbonError, RuntimeError):
    """Shipped or installed reference data (boundaries, tables) is missing or inconsistent."""


class IndexBuildError(TruckcarbonError, RuntimeError):
    """A spatial index could not be built or loaded from its cache."""


class BusyError(TruckcarbonError, RuntimeError):
    """A run folder is locked by another process (a run writing it, or a command writing into it)."""
