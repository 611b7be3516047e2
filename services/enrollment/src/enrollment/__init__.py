"""Baoxue enrollment service."""
