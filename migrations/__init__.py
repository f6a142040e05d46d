"""Alembic migrations, shipped inside the package so that `aiguilleur migrate` works when installed."""
