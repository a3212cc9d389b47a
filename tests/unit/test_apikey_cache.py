import pytest

from keyplane.apikeys import core, hashing
from keyplane.apikeys.cache import LastUse, VerifiedKeys
from keyplane.apikeys.core import ApiKey, Creator


def _key(key_id: str = "k1", last_used: int | None = None) -> ApiKey:
    return ApiKey(
        id=key_id,
        name="n",
        type=core.REST,
        creation=0,
        expiration=None,
        invalidated=False,
        invalidation=None,
        hash=hashing.hash_secret("s"),
        creator=Creator("u", None, None, {}, "default_native", "native"),
        last_used=last_used,
    )


def test_last_use_writes_once_per_interval() -> None:
    hour = 3_600_000
    use = LastUse(hour)
    key = _key()
    use.touch(key, 10 * hour + 5)
    use.touch(key, 10 * hour + 500)
    assert use.take() == {"k1": 10 * hour}  # truncated to the interval
    use.touch(key, 10 * hour + 900)
    assert use.take() == {}
    use.touch(key, 11 * hour + 10)
    assert use.take() == {"k1": 11 * hour}
    recent = _key("k2", last_used=11 * hour)
    use.touch(recent, 11 * hour + 20)  # already recorded this hour, by any node
    assert use.take() == {}


def test_verified_keys_match_only_the_right_secret() -> None:
    cache = VerifiedKeys(max_entries=1)
    cache.put(_key("a"), "secret-a")
    assert cache.get("a", "secret-a") is not None
    assert cache.get("a", "secret-b") is None
    cache.put(_key("b"), "secret-b")
    assert cache.get("a", "secret-a") is None  # evicted
    cache.drop("b")
    assert cache.get("b", "secret-b") is None


def test_growth_of_the_cache_is_frozen_out_of_the_collector_a_bounded_number_of_times(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gc

    from keyplane.apikeys import cache as cache_mod

    freezes: list[int] = []
    monkeypatch.setattr(cache_mod, "FREEZE_STEP", 2)
    monkeypatch.setattr(cache_mod, "freeze_long_lived", lambda: freezes.append(1))
    cache = VerifiedKeys(max_entries=4)
    for n in range(10):  # grows to 4, then only replaces
        cache.put(_key(f"k{n}"), "s")
    assert len(freezes) == 2
    cache.clear()
    cache.put(_key("again"), "s")
    cache.put(_key("again2"), "s")
    assert len(freezes) == 2  # refilling below the most ever held freezes nothing more
    before = gc.get_freeze_count()
    try:
        monkeypatch.undo()  # the real freeze moves live objects out of the collector's sight
        cache_mod.freeze_long_lived()
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()
