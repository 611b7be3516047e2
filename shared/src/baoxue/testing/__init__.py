"""Test support shared by every service's tests (the pytest plugin lives in :mod:`baoxue.testing.plugin`)."""
