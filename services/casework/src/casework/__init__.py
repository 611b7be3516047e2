"""Baoxue casework service."""
