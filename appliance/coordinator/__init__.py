"""The coordinator: sessions and turns, routing to workers, readiness and recovery."""
