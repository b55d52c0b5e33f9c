"""The lip-sync worker: audio and phoneme timing in, avatar video frames out (issue 5)."""
