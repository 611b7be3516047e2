"""Baoxue registry service."""
