"""Start-up refuses unsafe settings: some anywhere, more in production."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from gateway.app import create_app
from gateway.config import ConfigurationError, Settings

PRODUCTION = dict(env="production", smtp_url=SecretStr("smtp://mail.example.com:587"), secret_key=SecretStr("k" * 40),
                  public_url="https://id.example.com")


def test_production_refuses_the_default_secret_and_a_missing_smtp_url():
    with pytest.raises(ConfigurationError) as caught:
        create_app(Settings(env="production"))
    message = str(caught.value)
    assert "GATEWAY_SMTP_URL" in message and "GATEWAY_SECRET_KEY" in message


def test_production_starts_with_real_settings():
    create_app(Settings(**PRODUCTION))


def test_settings_come_from_gateway_environment_variables(monkeypatch):
    monkeypatch.setenv("GATEWAY_RATE_LIMIT_SCALE", "2.5")
    monkeypatch.setenv("GATEWAY_PUBLIC_URL", "https://id.example.com/")
    settings = Settings()
    assert settings.rate_limit_scale == 2.5
    assert settings.public_url == "https://id.example.com"


@pytest.mark.parametrize("public_url", [
    "http://id.example.com", "https://localhost:8443", "https://app.localhost", "https://127.0.0.1",
    "https://127.10.0.1:8443", "https://[::1]:8443", "https://[::ffff:127.0.0.1]", "https://0.0.0.0",
    # loopback and "this host" in the legacy spellings a browser still reads as IPv4
    "https://127.1", "https://2130706433", "https://0x7f000001", "https://0177.0.0.1", "https://0",
    # links are built on it: no user info, query or fragment
    "https://user:secret@id.example.com", "https://id.example.com/?next=x", "https://id.example.com/#top",
])
def test_production_refuses_an_http_or_loopback_public_url(public_url):
    # given otherwise sound production settings
    settings = Settings(**{**PRODUCTION, "public_url": public_url})

    # when / then: emailed links would travel in clear text, or lead nowhere
    with pytest.raises(ConfigurationError, match="GATEWAY_PUBLIC_URL"):
        create_app(settings)


def test_development_keeps_its_local_http_public_url():
    create_app(Settings(public_url="http://127.0.0.1:8000"))


@pytest.mark.parametrize(("idle", "name"), [
    ({"session_idle_ttl_seconds": 60}, "GATEWAY_SESSION_IDLE_TTL_SECONDS"),
    ({"admin_session_idle_ttl_seconds": 100}, "GATEWAY_ADMIN_SESSION_IDLE_TTL_SECONDS"),
])
def test_a_touch_interval_over_half_an_idle_timeout_is_refused(idle, name):
    # given the default touch interval (60 s) and an idle timeout under 120 s
    settings = Settings(**idle)

    # when / then: a customer active every 30 s would be signed out, so the gateway does not start
    with pytest.raises(ConfigurationError) as caught:
        create_app(settings)
    assert "GATEWAY_SESSION_TOUCH_INTERVAL_SECONDS" in str(caught.value) and name in str(caught.value)


def test_a_touch_interval_of_half_the_idle_timeout_starts():
    create_app(Settings(session_idle_ttl_seconds=60, admin_session_idle_ttl_seconds=60,
                        session_touch_interval_seconds=30))


def test_trusted_proxies_take_addresses_and_cidr_ranges():
    create_app(Settings(trusted_proxies="127.0.0.1, 10.0.0.0/8,fd00::/8, ::1"))


@pytest.mark.parametrize(("entry", "hint"), [
    ("proxy.internal", "is not an IP address or CIDR range"),
    ("10.0.0.1/8", "did you mean 10.0.0.0/8"),
    ("10.0.0.0/33", "is not an IP address or CIDR range"),
])
def test_a_trusted_proxy_entry_that_is_not_an_address_or_range_refuses_to_start(entry, hint):
    # given
    settings = Settings(trusted_proxies=f"127.0.0.1, {entry}")

    # when / then: the start-up error names the entry
    with pytest.raises(ConfigurationError) as caught:
        create_app(settings)
    assert "GATEWAY_TRUSTED_PROXIES" in str(caught.value) and repr(entry) in str(caught.value)
    assert hint in str(caught.value)


def test_limits_come_from_gateway_environment_variables(monkeypatch):
    # given
    monkeypatch.setenv("GATEWAY_MAX_BODY_BYTES", "65536")
    monkeypatch.setenv("GATEWAY_GRAPHQL_MAX_DIRECTIVES", "5")

    # when
    settings = Settings()

    # then, and the defaults are 1 MiB and 50
    assert (settings.max_body_bytes, settings.graphql_max_directives) == (65536, 5)
    monkeypatch.delenv("GATEWAY_MAX_BODY_BYTES")
    monkeypatch.delenv("GATEWAY_GRAPHQL_MAX_DIRECTIVES")
    assert (Settings().max_body_bytes, Settings().graphql_max_directives) == (1024 * 1024, 50)
