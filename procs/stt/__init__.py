"""The speech-to-text worker: faster-whisper behind a backend interface, VAD endpointing, streaming."""
