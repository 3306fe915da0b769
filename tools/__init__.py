"""Repository maintenance scripts (not installed)."""
