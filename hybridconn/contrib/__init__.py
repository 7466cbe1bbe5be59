"""Integrations with frameworks (import only the one you use: each needs its framework installed)."""
