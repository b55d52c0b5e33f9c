"""The voice trainer: slice a recording, label its clips and drive GPT-SoVITS's training steps."""
