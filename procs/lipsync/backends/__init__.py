"""Lip-sync backends: one module per renderer."""
