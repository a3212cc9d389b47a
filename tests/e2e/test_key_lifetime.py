"""The key-lifetime policy and the expiring-keys read, against a real server and the official client.

The policed server starts first without the policy to leave keys the policy would refuse (a key that
never expires, a year-long one), then again with it on the same store: updates that leave
``expiration`` out must still work on those keys.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import ApiError, BadRequestError, Elasticsearch
from sqlalchemy import text
from sqlalchemy.dialects import sqlite

from keyplane.apikeys.backends.expiring.base import ExpiringWindow
from keyplane.apikeys.backends.expiring.sql import parameters, statements
from keyplane.store.database import Database
from keyplane.store.migrations import migrate
from tests.e2e.server import PASSWORD, Server, on_store, store_database

DAY = 86_400_000
POLICY = {
    "KEYPLANE_API_KEY_MAX_EXPIRATION": "7d",
    "KEYPLANE_API_KEY_REQUIRE_EXPIRATION": "true",
    "KEYPLANE_CROSS_CLUSTER_API_KEY_MAX_EXPIRATION": "30d",
    "KEYPLANE_CROSS_CLUSTER_API_KEY_REQUIRE_EXPIRATION": "true",
}
REST_MAX = "API key expiration [{}] exceeds the maximum allowed [7d] (KEYPLANE_API_KEY_MAX_EXPIRATION)"
REST_REQUIRED = (
    "API key expiration is required: keys that never expire are not allowed (KEYPLANE_API_KEY_REQUIRE_EXPIRATION)"
)
CC_MAX = (
    "cross-cluster API key expiration [{}] exceeds the maximum allowed [30d] "
    "(KEYPLANE_CROSS_CLUSTER_API_KEY_MAX_EXPIRATION)"
)
CC_REQUIRED = (
    "cross-cluster API key expiration is required: keys that never expire are not allowed "
    "(KEYPLANE_CROSS_CLUSTER_API_KEY_REQUIRE_EXPIRATION)"
)
ACCESS = {"search": [{"names": ["logs-*"]}]}
PATH = "/_keyplane/api_key/_expiring"
JSON = {"content-type": "application/json", "accept": "application/json"}


@dataclass
class Policed:
    server: Server
    old_rest: dict[str, Any]  # created before the policy: never expires
    old_year: dict[str, Any]  # created before the policy: expires in a year
    old_cc: dict[str, Any]  # a cross-cluster key created before the policy: never expires


def _client(url: str, **auth: Any) -> Elasticsearch:
    return Elasticsearch(url, **(auth or {"basic_auth": ("elastic", PASSWORD)}))


@pytest.fixture(scope="module")
def policed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Policed]:
    data: Path = tmp_path_factory.mktemp("lifetime")
    with store_database() as url:
        before = Server(data, url).start(timeout=60)  # a loaded machine imports slowly
        try:
            with _client(before.url) as es:
                old_rest = dict(es.security.create_api_key(name="old-forever"))
                old_year = dict(es.security.create_api_key(name="old-year", expiration="365d"))
                old_cc = dict(es.security.create_cross_cluster_api_key(name="old-cc", access=ACCESS))
        finally:
            before.stop()
        srv = Server(data, url, extra_env=POLICY).start(timeout=60)
        try:
            yield Policed(srv, old_rest, old_year, old_cc)
        finally:
            srv.stop()


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server without the policy."""
    with on_store(tmp_path_factory.mktemp("plain")) as srv:
        yield srv


@pytest.fixture
def es(plain: Server) -> Iterator[Elasticsearch]:
    """The elastic user's client on ``plain``, wiped first."""
    with _client(plain.url) as client:
        client.perform_request("POST", "/_keyplane/_reset", headers={"accept": "application/json"})
        yield client


@pytest.fixture
def pes(policed: Policed) -> Iterator[Elasticsearch]:
    with _client(policed.server.url) as client:
        yield client


def _refused(exc: pytest.ExceptionInfo[ApiError], *messages: str) -> None:
    """The official client's view of a validation refusal: 400 and Elasticsearch's envelope."""
    assert exc.value.meta.status == 400
    assert exc.value.error == "action_request_validation_exception"
    listed = "".join(f"{n}: {m};" for n, m in enumerate(messages, 1))
    assert exc.value.info["error"]["reason"] == f"Validation Failed: {listed}"
    assert exc.value.info["error"]["root_cause"][0]["type"] == "action_request_validation_exception"


def _update_cc(es: Elasticsearch, key_id: str, body: dict[str, Any]) -> Any:
    # The client insists on ``access``; Elasticsearch does not (metadata alone is an update).
    return es.security.update_cross_cluster_api_key(id=key_id, body=body)


def _expiration(es: Elasticsearch, key_id: str) -> int | None:
    keys = es.security.get_api_key(id=key_id)["api_keys"]
    value = keys[0].get("expiration")
    return None if value is None else int(value)


# -- create, grant, clone ----------------------------------------------------------------------------


def test_create_over_the_maximum_or_without_expiration_is_refused(pes: Elasticsearch) -> None:
    with pytest.raises(BadRequestError) as exc:
        pes.security.create_api_key(name="long", expiration="30d")
    _refused(exc, REST_MAX.format("30d"))
    with pytest.raises(BadRequestError) as exc:
        pes.security.create_api_key(name="forever")
    _refused(exc, REST_REQUIRED)
    with pytest.raises(BadRequestError) as exc:
        pes.security.create_api_key(name="one-hour-too-long", expiration="169h")
    _refused(exc, REST_MAX.format("169h"))
    # Other validation messages are listed with the policy's, as Elasticsearch lists them all.
    with pytest.raises(BadRequestError) as exc:
        pes.security.create_api_key(name="_bad", expiration="8d")
    _refused(exc, "api key name may not begin with an underscore", REST_MAX.format("8d"))
    assert pes.security.query_api_keys(query={"prefix": {"name": "long"}})["total"] == 0


def test_create_within_the_maximum_is_accepted(pes: Elasticsearch) -> None:
    before = int(time.time() * 1000)
    week = pes.security.create_api_key(name="week", expiration="7d")
    assert before + 7 * DAY <= week["expiration"] <= int(time.time() * 1000) + 7 * DAY
    assert pes.security.create_api_key(name="hour", expiration="1h")["expiration"] > before


def test_grant_is_refused_before_the_grantee_is_authenticated_and_accepted_within_the_limit(
    pes: Elasticsearch,
) -> None:
    with pytest.raises(BadRequestError) as exc:
        pes.security.grant_api_key(
            grant_type="password", username="elastic", password=PASSWORD, api_key={"name": "g", "expiration": "8d"}
        )
    _refused(exc, REST_MAX.format("8d"))
    # A wrong password is not even tried: the policy refuses the request first.
    with pytest.raises(BadRequestError) as exc:
        pes.security.grant_api_key(grant_type="password", username="elastic", password="wrong", api_key={"name": "g"})
    _refused(exc, REST_REQUIRED)
    granted = pes.security.grant_api_key(
        grant_type="password", username="elastic", password=PASSWORD, api_key={"name": "g", "expiration": "2d"}
    )
    assert _expiration(pes, granted["id"]) == granted["expiration"]


def test_bulk_grant_refuses_the_whole_request_when_one_key_breaks_the_policy(pes: Elasticsearch) -> None:
    body = {
        "grant_type": "password",
        "username": "elastic",
        "password": PASSWORD,
        "api_keys": [{"name": "bulk-ok", "expiration": "1d"}, {"name": "bulk-forever"}],
    }
    with pytest.raises(BadRequestError) as exc:
        pes.perform_request("POST", "/_security/api_key/_bulk_grant", body=body, headers=JSON)
    _refused(exc, REST_REQUIRED)
    assert pes.security.query_api_keys(query={"prefix": {"name": "bulk-"}})["total"] == 0
    body["api_keys"] = [{"name": "bulk-ok", "expiration": "1d"}, {"name": "bulk-week", "expiration": "7d"}]
    answer = pes.perform_request("POST", "/_security/api_key/_bulk_grant", body=body, headers=JSON)
    assert [k["name"] for k in answer["created"]] == ["bulk-ok", "bulk-week"]


def test_clone_is_a_new_key_and_is_bounded(pes: Elasticsearch, policed: Policed) -> None:
    # Keeping the source's expiry: a source that never expires, or expires in a year, gives a refused clone.
    with pytest.raises(BadRequestError) as exc:
        pes.security.clone_api_key(api_key=policed.old_rest["encoded"], name="clone-forever")
    _refused(exc, REST_REQUIRED)
    with pytest.raises(BadRequestError) as exc:
        pes.security.clone_api_key(api_key=policed.old_year["encoded"], name="clone-year")
    assert exc.value.meta.status == 400
    assert "of the source key is more than the maximum allowed [7d] from now" in exc.value.info["error"]["reason"]
    with pytest.raises(BadRequestError) as exc:
        pes.security.clone_api_key(api_key=policed.old_rest["encoded"], name="clone-long", expiration="8d")
    _refused(exc, REST_MAX.format("8d"))
    clone = pes.security.clone_api_key(api_key=policed.old_rest["encoded"], name="clone-day", expiration="1d")
    assert _expiration(pes, clone["id"]) == clone["expiration"]


# -- update --------------------------------------------------------------------------------------------


def test_update_setting_expiration_is_bounded(pes: Elasticsearch) -> None:
    key = pes.security.create_api_key(name="to-update", expiration="1d")
    with pytest.raises(BadRequestError) as exc:
        pes.security.update_api_key(id=key["id"], expiration="30d")
    _refused(exc, REST_MAX.format("30d"))
    assert _expiration(pes, key["id"]) == key["expiration"]
    assert pes.security.update_api_key(id=key["id"], expiration="3d")["updated"] is True
    assert _expiration(pes, key["id"]) > key["expiration"] + DAY  # type: ignore[operator]
    # Elasticsearch's own rule on update comes first; the policy adds nothing to it.
    with pytest.raises(BadRequestError) as exc:
        pes.security.update_api_key(id=key["id"], expiration="0")
    _refused(exc, "API key expiration must be in the future")


def test_update_leaving_expiration_out_keeps_old_keys_editable(pes: Elasticsearch, policed: Policed) -> None:
    forever, year = policed.old_rest["id"], policed.old_year["id"]
    year_expiry = _expiration(pes, year)
    assert _expiration(pes, forever) is None
    assert pes.security.update_api_key(id=forever, metadata={"team": "a"})["updated"] is True
    assert pes.security.update_api_key(id=year, metadata={"team": "a"})["updated"] is True
    assert pes.security.update_api_key(id=year)["updated"] is False  # a noop stays a noop
    assert _expiration(pes, forever) is None
    assert _expiration(pes, year) == year_expiry
    answer = pes.security.bulk_update_api_keys(ids=[forever, year], metadata={"team": "b"})
    assert sorted(answer["updated"]) == sorted([forever, year])
    assert "errors" not in answer


def test_bulk_update_setting_expiration_is_bounded_for_the_whole_request(pes: Elasticsearch) -> None:
    a = pes.security.create_api_key(name="bulk-a", expiration="1d")["id"]
    b = pes.security.create_api_key(name="bulk-b", expiration="1d")["id"]
    with pytest.raises(BadRequestError) as exc:
        pes.security.bulk_update_api_keys(ids=[a, b], expiration="14d")
    _refused(exc, REST_MAX.format("14d"))
    answer = pes.security.bulk_update_api_keys(ids=[a, b], expiration="7d")
    assert sorted(answer["updated"]) == sorted([a, b])
    now = int(time.time() * 1000)
    for key_id in (a, b):
        assert now + 6 * DAY < _expiration(pes, key_id) <= now + 7 * DAY  # type: ignore[operator]


# -- cross-cluster --------------------------------------------------------------------------------------


def test_cross_cluster_keys_have_their_own_limits(pes: Elasticsearch, policed: Policed) -> None:
    with pytest.raises(BadRequestError) as exc:
        pes.security.create_cross_cluster_api_key(name="cc-long", access=ACCESS, expiration="31d")
    _refused(exc, CC_MAX.format("31d"))
    with pytest.raises(BadRequestError) as exc:
        pes.security.create_cross_cluster_api_key(name="cc-forever", access=ACCESS)
    _refused(exc, CC_REQUIRED)
    # 30d is over the REST limit (7d) but within the cross-cluster one.
    key = pes.security.create_cross_cluster_api_key(name="cc-month", access=ACCESS, expiration="30d")
    with pytest.raises(BadRequestError) as exc:
        _update_cc(pes, key["id"], {"metadata": {"a": 1}, "expiration": "60d"})
    _refused(exc, CC_MAX.format("60d"))
    assert _update_cc(pes, key["id"], {"metadata": {"a": 1}, "expiration": "20d"})["updated"] is True
    # An old cross-cluster key that never expires stays editable while its expiration is left out.
    old = policed.old_cc["id"]
    assert _update_cc(pes, old, {"metadata": {"a": 2}})["updated"] is True
    assert _expiration(pes, old) is None


# -- no policy: unchanged ----------------------------------------------------------------------------------


def test_without_settings_nothing_is_bounded(es: Elasticsearch) -> None:
    forever = es.security.create_api_key(name="forever")
    assert "expiration" not in forever
    long = es.security.create_api_key(name="century", expiration="36500d")
    assert es.security.update_api_key(id=long["id"], expiration="3650d")["updated"] is True
    cc = es.security.create_cross_cluster_api_key(name="cc", access=ACCESS)
    assert "expiration" not in cc
    assert _update_cc(es, cc["id"], {"metadata": {}, "expiration": "3650d"})["updated"] is True
    answer = es.security.bulk_update_api_keys(ids=[forever["id"], long["id"]], expiration="1000d")
    assert sorted(answer["updated"]) == sorted([forever["id"], long["id"]])


# -- expiring keys --------------------------------------------------------------------------------------


def _expiring(es: Elasticsearch, **params: Any) -> Any:
    return es.perform_request("GET", PATH, params=params or None).body


@pytest.fixture
def spread(es: Elasticsearch) -> dict[str, str]:
    """Keys expiring in 1d and 10d, one that never expires, one expired, one invalidated, a cross-cluster one."""
    ids = {
        "in-1d": es.security.create_api_key(name="in-1d", expiration="1d")["id"],
        "in-10d": es.security.create_api_key(name="in-10d", expiration="10d")["id"],
        "never": es.security.create_api_key(name="never")["id"],
        "expired": es.security.create_api_key(name="expired", expiration="0")["id"],
        "invalidated": es.security.create_api_key(name="invalidated", expiration="1d")["id"],
        "cc-in-5d": es.security.create_cross_cluster_api_key(name="cc-in-5d", access=ACCESS, expiration="5d")["id"],
    }
    es.security.invalidate_api_key(ids=[ids["invalidated"]])
    return ids


def test_expiring_lists_live_keys_in_the_window_soonest_first(es: Elasticsearch, spread: dict[str, str]) -> None:
    week = _expiring(es, within="7d")
    assert [k["name"] for k in week["api_keys"]] == ["in-1d", "cc-in-5d"]
    assert (week["total"], week["count"]) == (2, 2)
    first = week["api_keys"][0]
    assert first["id"] == spread["in-1d"] and first["invalidated"] is False
    assert first["_sort"] == [first["expiration"], first["id"]]
    assert week["api_keys"][1]["type"] == "cross_cluster"
    assert [k["name"] for k in _expiring(es, within="11d")["api_keys"]] == ["in-1d", "cc-in-5d", "in-10d"]
    assert _expiring(es, within="12h") == {"total": 0, "count": 0, "api_keys": []}
    # The default window is seven days.
    assert [k["name"] for k in _expiring(es)["api_keys"]] == ["in-1d", "cc-in-5d"]


def test_expiring_pages_by_from_size_and_search_after(es: Elasticsearch, spread: dict[str, str]) -> None:
    page1 = _expiring(es, within="11d", size=2)
    assert (page1["total"], [k["name"] for k in page1["api_keys"]]) == (3, ["in-1d", "cc-in-5d"])
    last = page1["api_keys"][-1]["_sort"]
    page2 = _expiring(es, within="11d", size=2, search_after=f"{last[0]},{last[1]}")
    assert (page2["total"], [k["name"] for k in page2["api_keys"]]) == (3, ["in-10d"])
    assert [k["name"] for k in _expiring(es, within="11d", size=1, **{"from": 2})["api_keys"]] == ["in-10d"]
    assert _expiring(es, within="11d", size=0) == {"total": 3, "count": 0, "api_keys": []}


def test_expiring_breaks_ties_by_id_across_pages(es: Elasticsearch) -> None:
    # Bulk-granted keys created within the same millisecond share an expiration: search_after must
    # neither repeat nor skip them.
    body = {
        "grant_type": "password",
        "username": "elastic",
        "password": PASSWORD,
        "api_keys": [{"name": f"tie-{n}", "expiration": "1d"} for n in range(12)],
    }
    es.perform_request("POST", "/_security/api_key/_bulk_grant", body=body, headers=JSON)
    seen: list[str] = []
    after = None
    while True:
        params: dict[str, Any] = {"within": "2d", "size": 5}
        if after:
            params["search_after"] = f"{after[0]},{after[1]}"
        page = _expiring(es, **params)
        if not page["api_keys"]:
            break
        seen += [k["id"] for k in page["api_keys"]]
        after = page["api_keys"][-1]["_sort"]
    assert len(seen) == len(set(seen)) == 12
    assert seen == [k["id"] for k in _expiring(es, within="2d", size=100)["api_keys"]]


def test_expiring_shows_manage_own_api_key_users_their_own_keys_only(es: Elasticsearch, plain: Server) -> None:
    es.security.put_role(name="own_keys", cluster=["manage_own_api_key"])
    es.security.put_role(name="nothing", cluster=[])
    for user, role in (("ann", "own_keys"), ("bob", "own_keys"), ("eve", "nothing")):
        es.security.put_user(username=user, password=f"{user}-secret", roles=[role])
    ann = _client(plain.url, basic_auth=("ann", "ann-secret"))
    bob = _client(plain.url, basic_auth=("bob", "bob-secret"))
    eve = _client(plain.url, basic_auth=("eve", "eve-secret"))
    ann_key = ann.security.create_api_key(name="ann-key", expiration="2d")
    bob.security.create_api_key(name="bob-key", expiration="3d")
    es.security.create_api_key(name="elastic-key", expiration="1d")
    assert [k["name"] for k in _expiring(es)["api_keys"]] == ["elastic-key", "ann-key", "bob-key"]
    assert [k["name"] for k in _expiring(ann)["api_keys"]] == ["ann-key"]
    assert _expiring(ann)["total"] == 1
    assert [k["name"] for k in _expiring(bob)["api_keys"]] == ["bob-key"]
    # An API key sees itself only, as with the query API.
    encoded = base64.b64encode(f"{ann_key['id']}:{ann_key['api_key']}".encode()).decode()
    with _client(plain.url, api_key=encoded) as as_key:
        assert [k["id"] for k in _expiring(as_key)["api_keys"]] == [ann_key["id"]]
    with pytest.raises(ApiError) as exc:
        _expiring(eve)
    assert exc.value.meta.status == 403
    assert exc.value.error == "security_exception"
    for client in (ann, bob, eve):
        client.close()


@pytest.mark.parametrize(
    ("params", "kind", "reason"),
    [
        ({"within": "0"}, "action_request_validation_exception", "[within] must be a positive duration"),
        ({"within": "soon"}, "parse_exception", "failed to parse setting [within] with value [soon]"),
        ({"size": -1}, "action_request_validation_exception", "[size] parameter cannot be negative"),
        ({"search_after": "x,y"}, "illegal_argument_exception", "[search_after] expiration [x]"),
        ({"search_after": "123"}, "illegal_argument_exception", "[search_after] must be the [expiration, id]"),
        ({"from": 9999, "size": 2}, "illegal_argument_exception", "Result window is too large"),
        ({"search_after": "1,x", "size": 10001}, "illegal_argument_exception", "Result window is too large"),
        ({"active_only": "true"}, "illegal_argument_exception", "unrecognized parameter: [active_only]"),
    ],
)
def test_expiring_refuses_bad_parameters(es: Elasticsearch, params: dict[str, Any], kind: str, reason: str) -> None:
    with pytest.raises(ApiError) as exc:
        _expiring(es, **params)
    assert exc.value.meta.status == 400
    assert exc.value.error == kind
    assert reason in exc.value.info["error"]["reason"]


# -- the expiring read's SQL ----------------------------------------------------------------------------


def _sqlite_plans(tmp_path: Path, windows: list[ExpiringWindow]) -> list[list[str]]:
    """SQLite's plans of the count and page of each window, on a migrated store without statistics
    (Keyplane never runs ANALYZE, so the plan must come from the statement's shape alone)."""

    async def run() -> list[list[str]]:
        db = Database.for_data_dir(tmp_path)
        await db.open()
        try:
            await migrate(db)
            plans = []
            for window in windows:
                for stmt in statements(window):
                    bound = stmt.params(**parameters(window)).compile(
                        dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}
                    )
                    async with db.transaction() as conn:
                        rows = (await conn.execute(text(f"EXPLAIN QUERY PLAN {bound}"))).rows
                    plans.append([row["detail"] for row in rows])
            return plans
        finally:
            await db.close()

    return asyncio.run(run())


def test_expiring_sql_is_an_index_range_on_sqlite(tmp_path: Path) -> None:
    now = int(time.time() * 1000)
    every = ExpiringWindow(now, now + 7 * DAY, 0, 100)
    later_page = ExpiringWindow(now, now + 7 * DAY, 0, 100, after=(now + DAY, "some-id"))
    own = ExpiringWindow(now, now + 7 * DAY, 0, 100, owner=("ann", "native1"))
    count, page, _, after_page, own_count, own_page = _sqlite_plans(tmp_path, [every, later_page, own])
    # Every key's count reads the covering index alone; pages walk the expiration index in its order.
    assert count == [
        "SEARCH api_keys USING COVERING INDEX api_keys_live_by_expiration "
        "(invalidated=? AND type=? AND expiration>? AND expiration<?)"
    ]
    for plan in (page, after_page):
        assert plan == [
            "SEARCH api_keys USING INDEX api_keys_expiration (expiration>? AND expiration<?)",
            "USE TEMP B-TREE FOR RIGHT PART OF ORDER BY",  # ties only, and the LIMIT stops it early
        ]
    # A caller's own keys: the owner's index, never a scan of all keys.
    assert own_count == ["SEARCH api_keys USING INDEX api_keys_owner (username=? AND realm=?)"]
    assert own_page[0] == "SEARCH api_keys USING INDEX api_keys_owner (username=? AND realm=?)"
