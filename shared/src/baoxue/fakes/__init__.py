"""Simulators of systems Baoxue talks to but does not run (the provincial student registry platform,
an SMS gateway, webhook receivers). Each is a real HTTP app, used by tests and the demo, never by
production code paths.
"""
