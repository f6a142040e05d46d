"""Tests of API keys: who may call what, over HTTP and from the CLI."""
