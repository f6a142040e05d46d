"""Configuration domain."""
