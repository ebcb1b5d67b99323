"""Electron Monte Carlo engine."""
