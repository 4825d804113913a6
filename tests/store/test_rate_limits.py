"""The rate syntax, the GCRA decision and the in-process limiter, on a clock moved by hand."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from server.settings import Settings
from store.rate_limits import InProcessRateLimiter, Rate, gcra, parse_rate
from tests.support.manual_clock import ManualClock

pytestmark = pytest.mark.unit

TEN_PER_SECOND = Rate(count=10, period_seconds=1, burst=3)


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("100/s", Rate(100, 1, 100)),
        ("100/s burst 200", Rate(100, 1, 200)),
        (" 6000 / m  BURST 10 ", Rate(6000, 60, 10)),
        ("5/minute", Rate(5, 60, 5)),
        ("3600/h burst 1", Rate(3600, 3600, 1)),
        ("off", None),
        ("", None),
    ],
)
def test_rates_parse(text: str, rate: Rate | None) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize(
    "text",
    [
        "100",
        "100/d",
        "0/s",
        "10/s burst 0",
        "10/s burst",
        "ten/s",
        "10/s burst 2 x",
        "\u0661\u0660/s",
    ],
)
def test_malformed_rates_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"rate|at least 1"):
        parse_rate(text)


@pytest.mark.parametrize("name", ["RATE_LIMIT_READS", "RATE_LIMIT_WRITES"])
def test_a_malformed_rate_setting_is_a_start_up_error_naming_it(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(f"LEADERBOARD_{name}", "lots")
    with pytest.raises(ValidationError, match=f"LEADERBOARD_{name}"):
        Settings(_env_file=None)


def test_rate_settings_and_trusted_proxies_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEADERBOARD_RATE_LIMIT_READS", "100/s burst 200")
    monkeypatch.setenv("LEADERBOARD_TRUSTED_PROXIES", "10.0.0.0/8, ::1")
    settings = Settings(_env_file=None)
    assert settings.rate_limit_reads == Rate(100, 1, 200)
    assert settings.rate_limit_writes is None
    assert [str(network) for network in settings.trusted_proxies] == ["10.0.0.0/8", "::1/128"]
    monkeypatch.setenv("LEADERBOARD_TRUSTED_PROXIES", "10.0.0.300")
    with pytest.raises(ValidationError, match="LEADERBOARD_TRUSTED_PROXIES"):
        Settings(_env_file=None)


def test_gcra_allows_the_burst_at_once_then_one_request_per_interval() -> None:
    interval, burst = TEN_PER_SECOND.interval_us, TEN_PER_SECOND.burst
    assert interval == 100_000
    tat: int | None = None
    now = 5_000_000
    for _ in range(burst):
        decision, tat = gcra(tat, now, interval, burst)
        assert decision.allowed
    refused, kept = gcra(tat, now, interval, burst)
    assert not refused.allowed
    assert refused.retry_after_us == interval
    assert kept == tat, "a refused request changes nothing"
    # Just before the retry time: still refused, and told the rest of the wait.
    early, _ = gcra(tat, now + interval - 1, interval, burst)
    assert (early.allowed, early.retry_after_us) == (False, 1)
    # At the retry time: exactly one more.
    later, tat = gcra(tat, now + interval, interval, burst)
    assert later.allowed
    assert not gcra(tat, now + interval, interval, burst)[0].allowed


def test_gcra_does_not_save_up_beyond_the_burst() -> None:
    interval, burst = 100_000, 3
    decision, tat = gcra(None, 0, interval, burst)
    assert decision.allowed
    # An hour idle: still only `burst` at once.
    now = 3_600_000_000
    allowed = 0
    while True:
        decision, tat = gcra(tat, now, interval, burst)
        if not decision.allowed:
            break
        allowed += 1
    assert allowed == burst


def test_a_steady_client_at_the_rate_is_never_refused() -> None:
    interval, burst = 100_000, 1
    tat: int | None = None
    for step in range(1000):
        decision, tat = gcra(tat, step * interval, interval, burst)
        assert decision.allowed, step


async def test_the_in_process_limiter_counts_each_key_on_its_own() -> None:
    clock = ManualClock()
    limiter = InProcessRateLimiter(clock)
    results = [(await limiter.check("a", TEN_PER_SECOND)).allowed for _ in range(4)]
    assert results == [True, True, True, False]
    assert (await limiter.check("b", TEN_PER_SECOND)).allowed
    refused = await limiter.check("a", TEN_PER_SECOND)
    assert refused.retry_after_us == 100_000
    clock.advance(0.1)
    assert (await limiter.check("a", TEN_PER_SECOND)).allowed
    assert not (await limiter.check("a", TEN_PER_SECOND)).allowed


async def test_the_in_process_limiter_forgets_clients_whose_time_has_passed() -> None:
    clock = ManualClock()
    limiter = InProcessRateLimiter(clock)
    for number in range(InProcessRateLimiter._SWEEP_EVERY - 1):
        await limiter.check(f"client-{number}", TEN_PER_SECOND)
    assert len(limiter) == InProcessRateLimiter._SWEEP_EVERY - 1
    clock.advance(1.0)
    await limiter.check("last", TEN_PER_SECOND)
    assert len(limiter) == 1
