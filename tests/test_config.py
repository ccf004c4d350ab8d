"""Production start-up refuses unsafe settings."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from gateway.app import create_app
from gateway.config import ConfigurationError, Settings


def test_production_refuses_the_default_secret_and_a_missing_smtp_url():
    with pytest.raises(ConfigurationError) as caught:
        create_app(Settings(env="production"))
    message = str(caught.value)
    assert "GATEWAY_SMTP_URL" in message and "GATEWAY_SECRET_KEY" in message


def test_production_starts_with_real_settings():
    create_app(Settings(env="production", smtp_url=SecretStr("smtp://mail.example.com:587"),
                        secret_key=SecretStr("k" * 40)))


def test_settings_come_from_gateway_environment_variables(monkeypatch):
    monkeypatch.setenv("GATEWAY_RATE_LIMIT_SCALE", "2.5")
    monkeypatch.setenv("GATEWAY_PUBLIC_URL", "https://id.example.com/")
    settings = Settings()
    assert settings.rate_limit_scale == 2.5
    assert settings.public_url == "https://id.example.com"
