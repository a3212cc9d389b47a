import pytest

from keyplane.errors import InvalidArgument, ValidationError
from keyplane.security import index_settings as s


def test_update_values_are_stored_as_strings_and_null_resets() -> None:
    changes = s.parse_update({"security": {"index.number_of_replicas": 2, "index.auto_expand_replicas": None}})
    assert changes == {"security": {"index.number_of_replicas": "2", "index.auto_expand_replicas": None}}
    assert s.effective(changes["security"]) == {"index.number_of_replicas": "2"}
    assert s.effective({}) == {"index.auto_expand_replicas": "0-1"}
    assert s.nested({"index.number_of_replicas": "2"}) == {"index": {"number_of_replicas": "2"}}


def test_only_replica_settings_may_be_set() -> None:
    with pytest.raises(ValidationError) as exc:
        s.parse_update({"security": {"index": {"number_of_replicas": 1}}, "security-profile": {"index.codec": "x"}})
    assert exc.value.messages == [
        "illegal settings for index [security]: [index], these settings may not be configured. Only the "
        "following settings may be configured for that index: [index.number_of_replicas, index.auto_expand_replicas]",
        "illegal settings for index [security-profile]: [index.codec], these settings may not be configured. Only "
        "the following settings may be configured for that index: [index.number_of_replicas, "
        "index.auto_expand_replicas]",
    ]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("index.number_of_replicas", "two"),
        ("index.number_of_replicas", -1),
        ("index.number_of_replicas", [1]),
        ("index.auto_expand_replicas", "1"),
        ("index.auto_expand_replicas", "a-b"),
    ],
)
def test_bad_values(key: str, value: object) -> None:
    with pytest.raises(InvalidArgument):
        s.parse_update({"security-tokens": {key: value}})


def test_good_auto_expand_values() -> None:
    for value in ("0-1", "0-all", "false", False):
        s.parse_update({"security": {"index.auto_expand_replicas": value}})
