from typing import Any

import pytest

from keyplane import ids, jsontext
from keyplane.apikeys import core, grants, hashing
from keyplane.apikeys.backends import sql as api_key_rows
from keyplane.apikeys.query import parse_aggs, parse_query, parse_sort
from keyplane.apikeys.service import KeySpec
from keyplane.errors import InvalidArgument, ParseError
from keyplane.query.aggs import MissingAgg, TermsAgg
from keyplane.query.dates import parse_date
from keyplane.query.tree import Bool, Exists, Range, Term
from keyplane.security import roles as role_mod
from keyplane.security.roles import IndicesPrivileges
from keyplane.timevalue import now_ms, parse_duration_ms


def test_ids_secrets_and_hashes() -> None:
    key_id, secret = ids.new_id(), ids.new_secret()
    assert len(key_id) == 20 and len(secret) == 22
    for algorithm in hashing.ALGORITHMS:
        stored = hashing.hash_secret(secret, algorithm)
        assert secret not in stored
        assert hashing.verify_secret(secret, stored)
        assert not hashing.verify_secret(secret + "x", stored)
    assert hashing.hash_secret(secret).startswith("{SSHA256}")
    assert hashing.is_slow(hashing.hash_secret(secret, hashing.PBKDF2))
    assert not hashing.verify_secret(secret, "{UNKNOWN}abc")
    with pytest.raises(ValueError):
        hashing.hash_secret(secret, "md5")


def test_durations() -> None:
    assert parse_duration_ms("1d", "e") == 86_400_000
    assert parse_duration_ms("30m", "e") == 1_800_000
    assert parse_duration_ms("500ms", "e") == 500
    assert parse_duration_ms("-1", "e") == -1
    with pytest.raises(ParseError, match="unit is missing or unrecognized"):
        parse_duration_ms("10", "e")


def test_name_and_metadata_rules() -> None:
    assert core.name_messages("") == ["api key name is required"]
    assert core.name_messages(" a") == ["api key name may not begin or end with whitespace"]
    assert core.name_messages("_a") == ["api key name may not begin with an underscore"]
    assert core.name_messages("x" * 257) == ["api key name may not be more than 256 characters long"]
    assert core.metadata_messages({"_a": 1}) == ["API key metadata keys may not start with [_]"]


def test_cross_cluster_translation() -> None:
    search = [IndicesPrivileges(["logs*"], [], None, '{"match_all":{}}')]
    replication = [IndicesPrivileges(["archive"], [])]
    rd = core.descriptor_from_access(search, replication)
    assert rd.name == "cross_cluster"
    assert rd.cluster == ["cross_cluster_search", "monitor_enrich", "cross_cluster_replication"]
    assert [g.privileges for g in rd.indices] == [core.CCS_INDEX_PRIVILEGES, core.CCR_INDEX_PRIVILEGES]
    access = core.access_from_descriptors([rd])
    assert access["replication"] == [{"names": ["archive"], "allow_restricted_indices": False}]
    assert access["search"][0]["query"] == '{"match_all":{}}'
    with pytest.raises(InvalidArgument, match="must specify non-empty access"):
        core.descriptor_from_access([], [])
    with pytest.raises(InvalidArgument, match="replication does not support"):
        core.descriptor_from_access([], [IndicesPrivileges(["a"], [], {"grant": ["x"]})])


def test_query_parsing() -> None:
    node = parse_query(
        {"bool": {"must": [{"term": {"username": "a"}}], "must_not": {"exists": {"field": "expiration"}}}}
    )
    assert isinstance(node, Bool) and isinstance(node.must_not[0], Exists)
    assert isinstance(parse_query({"match": {"name": "k"}}), Term)
    since = parse_query({"range": {"creation": {"gte": "now-1d"}}})
    assert isinstance(since, Range) and dict(since.bounds)["gte"] <= now_ms() - 86_399_000
    with pytest.raises(InvalidArgument, match="Field name pattern"):
        parse_query({"term": {"meta*": "a"}})
    with pytest.raises(InvalidArgument, match="terms lookup"):
        parse_query({"terms": {"name": {"index": "x"}}})
    with pytest.raises(InvalidArgument, match="relation"):
        parse_query({"range": {"creation": {"gte": 1, "relation": "within"}}})
    sqs = parse_query({"simple_query_string": {"query": "re* -cross_cluster", "fields": ["ty*"]}})
    assert isinstance(sqs, Bool)


def test_dates_sort_aggs() -> None:
    assert parse_date("2026-01-01T00:00:00Z") == 1767225600000
    assert parse_date("1767225600000") == 1767225600000
    assert parse_date("2026-01-01T12:34:00Z||/d") == 1767225600000
    keys = parse_sort(["expiration", {"name": {"order": "desc"}}, "_doc"])
    assert [(k.field.name, k.desc) for k in keys] == [("expiration", False), ("name", True), ("_doc", False)]
    with pytest.raises(InvalidArgument, match="nested sorting"):
        parse_sort([{"name": {"nested": {}}}])
    aggs = parse_aggs({"t": {"terms": {"field": "username"}, "aggs": {"m": {"missing": {"field": "expiration"}}}}})
    assert isinstance(aggs[0], TermsAgg) and aggs[0].field.name == "username"
    assert isinstance(aggs[0].subs[0], MissingAgg)
    with pytest.raises(InvalidArgument, match="Unsupported API Keys agg \\[g\\] of type \\[global\\]"):
        parse_aggs({"g": {"global": {}}})
    with pytest.raises(InvalidArgument, match="Unsupported script value source"):
        parse_aggs({"s": {"terms": {"script": "x"}}})


def test_cross_cluster_access_and_update_rules() -> None:
    group = [IndicesPrivileges(["a"], [])]
    assert core.access_messages([], []) == ["must specify non-empty access for either [search] or [replication]"]
    assert core.access_messages(group, []) == [] and core.access_messages([], group) == []
    nothing = ["must update either [access] or [metadata] for cross-cluster API keys"]
    assert core.cross_cluster_update_messages(None, None, sets_certificate_identity=False) == nothing
    assert core.cross_cluster_update_messages(([], []), None, sets_certificate_identity=False) == []
    assert core.cross_cluster_update_messages(None, {}, sets_certificate_identity=False) == []
    assert core.cross_cluster_update_messages(None, None, sets_certificate_identity=True) == []


def test_grant_refuses_a_name_that_was_not_a_string() -> None:
    assert grants.key_messages(None) == ["api key name is required"]
    assert grants.key_messages(KeySpec("5", name_is_string=False)) == ["api key name is required"]
    assert grants.key_messages(KeySpec("k")) == []
    assert grants.bulk_key_messages([KeySpec("5", name_is_string=False)]) == []  # bulk grant reads it as text


def test_descriptors_stored_form_is_written_once_per_descriptor() -> None:
    group = {"names": ["a*"], "privileges": ["read"], "query": {"term": {"x": "é"}}}
    body = {"cluster": ["monitor"], "indices": [group]}
    rd = role_mod.parse("r", body)
    text = core.stored_form(rd)
    assert text == role_mod.to_stored(rd)
    assert core.stored_form(rd) is text  # kept for this descriptor object
    same, other = role_mod.parse("r", body), role_mod.parse("r", {"cluster": ["all"]})
    assert core.stored_form(other) == role_mod.to_stored(other) != text
    assert core.same_descriptors([rd, other], [other, same]) and not core.same_descriptors([rd], [other])


def test_stored_doc_is_the_descriptors_and_creator_as_json() -> None:
    # The row's doc embeds each descriptor's kept JSON (core.stored_form): the bytes are those of the
    # whole document written at once, a creator's metadata past orjson's depth included.
    deep: dict[str, Any] = {"leaf": 1}
    for _ in range(300):
        deep = {"d": deep}
    rd = role_mod.parse("r", {"cluster": ["all"], "metadata": {"k": [1, 2.5, None, "☃"]}})
    owner = role_mod.RESERVED_ROLES["superuser"]
    creator = core.Creator("u", "F", None, {"m": deep}, "realm", "native")
    key = core.ApiKey("id", "n", core.REST, 1, None, False, None, "h", creator, [rd], [owner], {"managed": True})
    key.certificate_identity = "CN=x"
    doc = {
        "role_descriptors": {"r": rd.to_dict(transient=False)},
        "role_descriptor_order": ["r"],
        "limited_by": {"superuser": owner.to_dict(transient=False)},
        "creator": creator.to_dict(),
        "version": key.version,
        "certificate_identity": "CN=x",
    }
    row = api_key_rows._row(key)
    assert row["doc"] == jsontext.dumps(doc).decode()
    assert set(row) == {c.name for c in api_key_rows.t.columns} and row["managed"] is True
