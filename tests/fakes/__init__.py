"""Fakes of engines that cannot run here; each implements the real engine's documented interface."""
