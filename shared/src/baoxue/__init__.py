"""Baoxue's shared library: the mechanisms every service uses, and the event contracts.

Mechanisms only — settings, database, errors, auth, personal-data crypto, events (outbox, relay,
inbox consumers), audit, jobs, reference data, test fixtures. No domain rules live here.
"""

__version__ = "0.1.0"
