"""How the edge shows API keys: the create answer and the ApiKey object, keys in Elasticsearch's order."""

from __future__ import annotations

import base64

from keyplane.api.apikey_view import render_created, render_hits, render_key
from keyplane.apikeys import core
from keyplane.apikeys.core import ApiKey, CreatedKey, Creator
from keyplane.apikeys.service import QueryHit
from keyplane.security.roles import IndicesPrivileges, RoleDescriptor


def _key(**kw: object) -> ApiKey:
    creator = Creator("ann", None, None, {}, "native1", "native")
    fields: dict[str, object] = dict(
        id="k1",
        name="one",
        type=core.REST,
        creation=1000,
        expiration=None,
        invalidated=False,
        invalidation=None,
        hash="h",
        creator=creator,
        role_descriptors=[RoleDescriptor("r", cluster=["monitor"])],
        limited_by=[RoleDescriptor("owner", cluster=["all"])],
    )
    fields.update(kw)
    return ApiKey(**fields)  # type: ignore[arg-type]


def test_created_key_shows_expiration_only_when_set_and_the_encoded_credential() -> None:
    body = render_created(CreatedKey("id1", "n", None, "s3cret"))
    assert list(body) == ["id", "name", "api_key", "encoded"]
    assert base64.b64decode(body["encoded"]) == b"id1:s3cret"
    assert list(render_created(CreatedKey("id1", "n", 5, "s"))) == ["id", "name", "expiration", "api_key", "encoded"]


def test_key_fields_in_order_with_limited_by_for_rest_keys_only() -> None:
    key = _key(expiration=2000, invalidated=True, invalidation=1500, last_used=1200)
    shown = render_key(key, with_limited_by=True)
    assert list(shown) == [
        "id",
        "name",
        "type",
        "creation",
        "expiration",
        "invalidated",
        "invalidation",
        "username",
        "realm",
        "realm_type",
        "metadata",
        "role_descriptors",
        "limited_by",
        "last_used",
    ]
    assert shown["limited_by"] == [{"owner": RoleDescriptor("owner", cluster=["all"]).to_dict()}]
    assert "limited_by" not in render_key(key)


def test_cross_cluster_key_shows_access_and_no_owner_roles() -> None:
    descriptor = core.descriptor_from_access([IndicesPrivileges(["logs"], [])], [])
    key = _key(type=core.CROSS_CLUSTER, role_descriptors=[descriptor], limited_by=[], certificate_identity="CN=a")
    shown = render_key(key, with_limited_by=True)
    assert shown["access"] == {"search": [{"names": ["logs"], "allow_restricted_indices": False}]}
    assert shown["certificate_identity"] == "CN=a" and "limited_by" not in shown


def test_query_hit_carries_sort_values_only_when_sorted() -> None:
    plain, sorted_ = render_hits([QueryHit(_key(), None), QueryHit(_key(), ["one", 1000])])
    assert "_sort" not in plain
    assert sorted_["_sort"] == ["one", 1000]
