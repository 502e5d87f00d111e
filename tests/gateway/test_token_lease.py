"""Token leases on a fake clock: sized by the credential's recent reads, spent one by one,
lost when they expire."""

from __future__ import annotations

from gateway.token_lease import TokenLeases
from services.auth.ratelimit import Decision


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _decision(remaining: int, allowed: bool = True) -> Decision:
    return Decision(
        allowed, limit=600, remaining=remaining, reset_seconds=30, retry_after_seconds=0
    )


def test_a_quiet_credential_wants_one_token_and_a_busy_one_its_recent_reads_capped() -> None:
    leases = TokenLeases(life_seconds=0.5, max_tokens=64, busy=8, clock=Clock())
    for _ in range(7):
        leases.note("quiet")
    assert leases.wanted("quiet") == 1
    assert leases.wanted("unknown") == 1
    for _ in range(20):
        leases.note("busy")
    assert leases.wanted("busy") == 20
    for _ in range(100):
        leases.note("busy")
    assert leases.wanted("busy") == 64


def test_leased_tokens_are_spent_one_by_one_and_counted_in_remaining() -> None:
    clock = Clock()
    leases = TokenLeases(life_seconds=0.5, max_tokens=64, busy=8, clock=clock)
    first = leases.keep("c", 4, _decision(remaining=100))
    assert first.remaining == 103  # the bucket's 100 and the 3 tokens held here
    spent = [leases.spend("c") for _ in range(4)]
    assert [d.remaining for d in spent if d is not None] == [102, 101, 100]
    assert spent[-1] is None  # none left: the next read goes to the shared bucket


def test_unspent_tokens_are_lost_when_the_lease_expires() -> None:
    clock = Clock()
    leases = TokenLeases(life_seconds=0.5, max_tokens=64, busy=8, clock=clock)
    leases.keep("c", 10, _decision(remaining=50))
    assert leases.spend("c") is not None
    clock.now += 0.5
    assert leases.spend("c") is None


def test_a_refusal_or_a_lease_of_one_holds_nothing() -> None:
    leases = TokenLeases(life_seconds=0.5, max_tokens=64, busy=8, clock=Clock())
    assert leases.keep("c", 1, _decision(remaining=9)).remaining == 9
    assert leases.keep("c", 0, _decision(remaining=0, allowed=False)).remaining == 0
    assert leases.spend("c") is None


def test_leasing_is_off_without_a_life_or_with_one_token_at_most() -> None:
    for leases in (TokenLeases(0.0, 64, 8), TokenLeases(0.5, 1, 8)):
        for _ in range(50):
            leases.note("c")
        assert not leases.enabled and leases.wanted("c") == 1
