"""Persistence: SQLite for conversations (and, later, voices and jobs)."""
