"""Fast bulk reads and writes per database vendor (COPY on PostgreSQL, batches elsewhere)."""

from .write import bulk_insert

__all__ = ["bulk_insert"]
