"""The verified-key cache keeps a key handed over (a new one) itself, and a copy of a key lent."""

from keyplane.apikeys.cache import VerifiedKeys
from tests.unit.test_apikey_cache import _key


def test_a_key_handed_over_is_kept_itself_and_a_key_lent_is_copied() -> None:
    cache = VerifiedKeys()
    lent, handed = _key("k1"), _key("k2")
    lent.metadata = handed.metadata = {"m": 1}
    kept_lent = cache.put(lent, "s1").key
    kept_handed = cache.put(handed, "s2", own=True).key
    assert kept_lent is not lent and lent.hash and lent.metadata == {"m": 1}  # the caller's key untouched
    assert kept_handed is handed
    for kept in (kept_lent, kept_handed):
        # Both kept alike: no stored hash, no metadata, the owner shared with the other key.
        assert kept.hash == "" and kept.metadata is None
    assert kept_lent.creator is kept_handed.creator
    assert cache.get("k2", "s2") is not None and cache.get("k2", "s1") is None
