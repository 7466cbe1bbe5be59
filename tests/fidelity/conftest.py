"""Fixtures for the emulator-fidelity tests: the plugin's emulator with one hybrid connection."""
