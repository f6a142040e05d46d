"""Training and evaluation of the mention classifier. Never imports `app`."""

LABELS = ("schedule", "delay", "problem", "praise", "press", "investor", "employee", "other")
SERVICE_LABELS = frozenset({"schedule", "delay", "problem"})
