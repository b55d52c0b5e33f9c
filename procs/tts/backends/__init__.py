"""TTS backends: one module per engine."""
