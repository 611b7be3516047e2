"""Baoxue notify service."""
