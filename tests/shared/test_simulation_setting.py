"""The simulated clock of the demo's stack (``<SERVICE>_SIMULATION``) lets callers state the days a service
would otherwise take from its own clock; staging and production refuse to start with it."""

from __future__ import annotations

import pytest

from baoxue.settings import ServiceSettings
from casework.settings import CaseworkSettings
from enrollment.settings import EnrollmentSettings
from notify.settings import NotifySettings
from tests.shared.test_settings_secrets import production

SERVICES_THAT_SIMULATE = [CaseworkSettings, EnrollmentSettings, NotifySettings]


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_a_real_deployment_refuses_simulation(environment):
    with pytest.raises(ValueError, match=f"simulation is not allowed in {environment}"):
        production(environment=environment, simulation=True)
    assert production(environment=environment).simulation is False


def test_development_and_test_stacks_accept_it():
    assert ServiceSettings(simulation=True).simulation is True


@pytest.mark.parametrize("settings_class", SERVICES_THAT_SIMULATE)
def test_each_service_reads_its_own_variable_and_refuses_it_in_production(settings_class, monkeypatch):
    prefix = settings_class.model_config["env_prefix"]
    monkeypatch.setenv(f"{prefix}SIMULATION", "true")
    assert settings_class().simulation is True
    monkeypatch.setenv(f"{prefix}ENVIRONMENT", "production")
    monkeypatch.setenv(f"{prefix}PII_KEYS", "prod:cHJvZC1rZXktMTYtYnl0ZQ==")
    monkeypatch.setenv(f"{prefix}PII_ACTIVE_KEY_ID", "prod")
    monkeypatch.setenv(f"{prefix}BLIND_INDEX_KEY", "cHJvZC1ibGluZC1pbmRleC1rZXktMzItYnl0ZXMhISE=")
    monkeypatch.setenv(f"{prefix}JWT_JWKS_URL", "https://idp.example/jwks.json")
    with pytest.raises(ValueError, match="simulation is not allowed in production"):
        settings_class()
