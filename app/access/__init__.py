"""Access domain: API keys and their scopes."""
