"""Tests of the delivery domain: SSRF checks and the pinned webhook sender."""
