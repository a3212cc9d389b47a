"""The key-lifetime policy's rules (keyplane/apikeys/lifetime.py) and the expiring read's request rules."""

from __future__ import annotations

import pytest

from keyplane.apikeys import core
from keyplane.apikeys.expiring import ExpiringSpec, parse_after, spec_messages
from keyplane.apikeys.lifetime import LifetimeLimit, LifetimePolicy, format_duration
from keyplane.errors import InvalidArgument
from keyplane.timevalue import parse_duration_ms

DAY = 86_400_000
REST = LifetimeLimit(
    "API key",
    7 * DAY,
    True,
    max_setting="KEYPLANE_API_KEY_MAX_EXPIRATION",
    require_setting="KEYPLANE_API_KEY_REQUIRE_EXPIRATION",
)


@pytest.mark.parametrize(
    ("ms", "shown"),
    [(7 * DAY, "7d"), (36 * 3_600_000, "36h"), (90 * 60_000, "90m"), (45_000, "45s"), (1500, "1500ms"), (1, "1ms")],
)
def test_limits_are_shown_in_the_largest_unit_that_divides_them(ms: int, shown: str) -> None:
    assert format_duration(ms) == shown
    assert parse_duration_ms(shown, "x") == ms  # Elasticsearch reads it back to the same duration


def test_no_policy_refuses_nothing() -> None:
    policy = LifetimePolicy()
    for kind in (core.REST, core.CROSS_CLUSTER):
        assert policy.limit(kind).messages(None) == []
        assert policy.limit(kind).messages("36500d") == []
        assert policy.limit(kind).inherited_messages(None, 0) == []


def test_an_expiration_over_the_maximum_is_refused_naming_the_setting_and_the_limit() -> None:
    assert REST.messages("30d") == [
        "API key expiration [30d] exceeds the maximum allowed [7d] (KEYPLANE_API_KEY_MAX_EXPIRATION)"
    ]
    assert REST.messages("169h") != []  # one hour past seven days


@pytest.mark.parametrize("expiration", ["7d", "168h", "1d", "1s", "0", "-1"])
def test_expirations_up_to_the_maximum_are_allowed(expiration: str) -> None:
    # 0 and -1 make an already expired key on create; update refuses them with its own message.
    assert REST.messages(expiration) == []


def test_a_key_that_never_expires_is_refused_only_when_expiration_is_required() -> None:
    assert REST.messages(None) == [
        "API key expiration is required: keys that never expire are not allowed (KEYPLANE_API_KEY_REQUIRE_EXPIRATION)"
    ]
    assert LifetimeLimit("API key", 7 * DAY).messages(None) == []
    only_required = LifetimeLimit("API key", None, True, require_setting="S")
    assert only_required.messages("36500d") == []
    assert only_required.messages(None) != []


def test_each_key_type_has_its_own_limits() -> None:
    cross = LifetimeLimit(
        "cross-cluster API key", 30 * DAY, max_setting="KEYPLANE_CROSS_CLUSTER_API_KEY_MAX_EXPIRATION"
    )
    policy = LifetimePolicy(rest=REST, cross_cluster=cross)
    assert policy.limit(core.REST) is REST
    assert policy.limit(core.CROSS_CLUSTER) is cross
    assert policy.limit(core.CROSS_CLUSTER).messages("30d") == []
    assert policy.limit(core.CROSS_CLUSTER).messages(None) == []  # not required for cross-cluster keys here
    assert policy.limit(core.CROSS_CLUSTER).messages("31d") == [
        "cross-cluster API key expiration [31d] exceeds the maximum allowed [30d] "
        "(KEYPLANE_CROSS_CLUSTER_API_KEY_MAX_EXPIRATION)"
    ]


def test_a_clone_keeping_its_source_expiry_is_bounded_from_now() -> None:
    now = 1_800_000_000_000
    assert REST.inherited_messages(now + 7 * DAY, now) == []
    assert REST.inherited_messages(now + DAY, now) == []
    (message,) = REST.inherited_messages(now + 8 * DAY, now)
    assert message == (
        "API key expiration [2027-01-23T08:00:00.000Z] of the source key is more than the maximum allowed [7d] "
        "from now (KEYPLANE_API_KEY_MAX_EXPIRATION)"
    )
    assert REST.inherited_messages(None, now) == REST.messages(None)


def test_expiring_request_rules() -> None:
    assert spec_messages(ExpiringSpec()) == []
    assert spec_messages(ExpiringSpec(within_ms=0, start=-1, size=-2)) == [
        "[within] must be a positive duration",
        "[from] parameter cannot be negative but was [-1]",
        "[size] parameter cannot be negative but was [-2]",
    ]


@pytest.mark.parametrize(
    ("values", "parsed"),
    [
        (None, None),
        ([1800000000000, "abc"], (1800000000000, "abc")),
        (["1800000000000", "abc"], (1800000000000, "abc")),
    ],
)
def test_search_after_is_the_expiration_and_id_of_the_last_key(values: list[object] | None, parsed: object) -> None:
    assert parse_after(values) == parsed


@pytest.mark.parametrize("values", [["abc"], [1, 2], [True, "x"], ["soon", "x"], [1, "x", "y"]])
def test_search_after_of_another_shape_is_refused(values: list[object]) -> None:
    with pytest.raises(InvalidArgument):
        parse_after(values)
