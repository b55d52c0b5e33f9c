"""Worker programs: one package per model family, with its backends."""
