"""Alembic migrations of the stratforge database (applied by ``Database.migrate``)."""
