"""Client settings from the environment or a Profile, and the one factory's redis-py setup."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from redis.backoff import ExponentialWithJitterBackoff

from redis_harness.client import RedisSettings, is_outage, make_redis
from redis_harness.errors import BadInput

from .conftest import variant_profile


def test_settings_from_the_plans_environment_names() -> None:
    env = {"REDIS_HOST": "127.0.0.2", "REDIS_PORT": "6390", "REDIS_DB": "3", "REDIS_PASSWORD": "s3cret-s3cret"}
    settings = RedisSettings.from_env({**env, "REDIS_USERNAME": "price"})
    assert (settings.host, settings.port, settings.db, settings.password) == ("127.0.0.2", 6390, 3, "s3cret-s3cret")
    assert settings.username == "price"
    assert RedisSettings.from_env({}).host == "127.0.0.1"
    assert RedisSettings.from_env(env, socket_timeout_s=0.25).socket_timeout_s == 0.25


@pytest.mark.parametrize(("var", "value"), [("REDIS_PORT", "redis"), ("REDIS_PORT", "70000"), ("REDIS_DB", "16")])
def test_bad_environment_values_name_the_variable(var: str, value: str) -> None:
    with pytest.raises(BadInput, match=f"^{var}: "):
        RedisSettings.from_env({var: value})


def test_settings_from_a_profile_use_its_published_endpoint(tmp_path: Path) -> None:
    profile = variant_profile("ci", tmp_path, "clientcfg", network={"port": 6399})
    settings = RedisSettings.from_profile(profile, "price", "pw")
    assert (settings.host, settings.port, settings.username) == ("127.0.0.1", 6399, "price")
    hidden = variant_profile("ci", tmp_path, "hiddencfg", network={"publish": "none"})
    with pytest.raises(BadInput, match="network.publish"):
        RedisSettings.from_profile(hidden, "price", "pw")


def test_factory_sets_timeouts_retry_with_jittered_backoff_and_health_checks() -> None:
    settings = RedisSettings(connect_timeout_s=0.3, socket_timeout_s=0.4, retries=2, health_check_interval_s=7)
    client = make_redis(settings)
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["socket_connect_timeout"] == 0.3 and kwargs["socket_timeout"] == 0.4
    assert kwargs["health_check_interval"] == 7
    retry = kwargs["retry"]
    assert retry.get_retries() == 2
    assert isinstance(retry._backoff, ExponentialWithJitterBackoff)
    assert redis.ConnectionError in retry._supported_errors and redis.TimeoutError in retry._supported_errors
    client.close()


def test_worst_case_call_time_grows_with_timeouts_and_retries() -> None:
    base = RedisSettings(connect_timeout_s=0.5, socket_timeout_s=0.5, retries=1, backoff_cap_s=0.2)
    assert base.worst_case_call_s == pytest.approx(2 * 1.5 + 0.2)
    assert base.replace(retries=3).worst_case_call_s > base.worst_case_call_s


def test_outages_are_connection_and_timeout_errors_but_not_bad_credentials() -> None:
    assert is_outage(redis.ConnectionError("refused")) and is_outage(redis.TimeoutError("slow"))
    assert is_outage(redis.BusyLoadingError("loading the AOF"))
    assert not is_outage(redis.AuthenticationError("wrong password"))
    assert not is_outage(redis.ResponseError("WRONGTYPE"))
