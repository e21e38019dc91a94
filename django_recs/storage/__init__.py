"""Fast bulk reads and writes per database vendor (COPY on PostgreSQL, batches elsewhere)."""

from .write import bulk_insert, bulk_insert_chunks

__all__ = ["bulk_insert", "bulk_insert_chunks"]
