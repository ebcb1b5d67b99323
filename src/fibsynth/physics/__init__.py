"""Electron-solid interaction physics."""
