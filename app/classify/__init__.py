"""Classify domain."""
