"""Storage: the only package with SQL. One upgrade step per schema version (mautrix async_db)."""

from .upgrade import upgrade_table

__all__ = ["upgrade_table"]
