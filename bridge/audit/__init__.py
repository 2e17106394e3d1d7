"""The audit trail seen from outside the bridge: checking an export of the transparency log."""
