"""The text-to-speech worker: speech with phoneme timing, on the 48 kHz output timeline."""
