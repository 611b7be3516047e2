"""Dropout cases (一人一案): signals, states, confirmation, reports, closure, escalation."""
