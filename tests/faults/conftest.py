"""Two live gateway instances on one embedded database, shared by the fault tests that only read."""

from __future__ import annotations

import pytest

from tests.faults.live import LiveGateway, live_gateway, stop_database

LOGIN_IP_ATTEMPTS = 5


@pytest.fixture(scope="package")
def gateway_pair(tmp_path_factory, smtp) -> tuple[LiveGateway, LiveGateway]:
    """Instances A and B: one data directory (B joins A's nx-27017), JSON logs, 5 sign-ins per IP."""
    root = tmp_path_factory.mktemp("pair")
    data_dir = root / "data"
    settings = dict(rate_limit_scale=1, login_ip_attempts=LOGIN_IP_ATTEMPTS, register_ip_attempts=1000,
                    password_reset_ip_attempts=1000, log_format="json")
    first = live_gateway(data_dir, root / "a.log", "gw_pair", smtp[0].port, **settings)
    try:
        second = live_gateway(data_dir, root / "b.log", "gw_pair", smtp[0].port, **settings)
    except BaseException:
        first.stop()
        raise
    yield first, second
    second.stop()
    first.stop()
    stop_database(data_dir)
