"""Search pages share the keys (and their rendered objects) of rows read unchanged, never a stale one."""

from __future__ import annotations

import asyncio

from keyplane.api.apikey_view import render_hits, render_key
from keyplane.apikeys import core, hashing
from keyplane.apikeys.backends.sql import SqlApiKeyRepository
from keyplane.apikeys.core import ApiKey, Creator
from keyplane.apikeys.service import QueryHit
from keyplane.query.tree import MATCH_ALL
from keyplane.store.database import Database
from keyplane.store.migrations import migrate


def _key(i: int) -> ApiKey:
    return ApiKey(
        id=f"page-key{i:03d}",
        name=f"k-{i}",
        type=core.REST,
        creation=1000 + i,
        expiration=None,
        invalidated=False,
        invalidation=None,
        hash=hashing.hash_secret("s"),
        creator=Creator("ann", None, None, {}, "default_native", "native"),
        metadata={"n": i},
    )


async def _page(repo: SqlApiKeyRepository) -> list[ApiKey]:
    return (await repo.search(MATCH_ALL, [], 0, 10, None, 0)).keys


def test_unchanged_keys_are_shared_and_changed_ones_read_again(database_url: str) -> None:
    async def go() -> None:
        db = Database(database_url)
        await db.open()
        try:
            await migrate(db)
            repo = SqlApiKeyRepository(db)
            await repo.delete_all()
            for i in range(3):
                await repo.insert(_key(i))
            first = await _page(repo)
            again = await _page(repo)
            assert [k.id for k in first] == [k.id for k in again]
            assert all(a is b for a, b in zip(first, again, strict=True))

            # An update (seq_no), a use (last_used, seq_no unchanged) and an invalidation are all seen.
            changed = first[0]
            updated = ApiKey(**{**changed.__dict__, "metadata": {"n": 99}})
            assert await repo.replace_many([updated]) == {changed.id}
            await repo.record_last_used({first[1].id: 5000})
            await repo.invalidate([first[2].id], 6000)
            now = await _page(repo)
            assert all(a is not b for a, b in zip(first, now, strict=True))
            assert now[0].metadata == {"n": 99} and now[0].seq_no == changed.seq_no + 1
            assert now[1].last_used == 5000 and now[1].seq_no == first[1].seq_no
            assert now[2].invalidated and now[2].invalidation == 6000

            # Rendered objects: each hit its own copy, equal to the key's rendering, _sort last.
            hits = [QueryHit(k, None) for k in now]
            shown = render_hits(hits)
            assert shown == [render_key(k) for k in now]
            shown[0]["profile_uid"] = "u"
            assert "profile_uid" not in render_hits(hits)[0]
            sorted_hits = render_hits([QueryHit(now[0], [1])], with_limited_by=True)
            assert sorted_hits == [{**render_key(now[0], with_limited_by=True), "_sort": [1]}]
            assert list(sorted_hits[0])[-1] == "_sort" and "limited_by" in sorted_hits[0]
        finally:
            await db.close()

    asyncio.run(go())
