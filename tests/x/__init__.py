"""Tests of the X connector."""
