"""Elasticsearch 9.4/9.5 additions to roles and privileges: new cluster and index privilege names,
``global.data_source``, implicit index privileges, and ``managed_by`` on authenticated credentials."""

from __future__ import annotations

from typing import Any

import pytest

from keyplane.api.authentication_view import render_authentication
from keyplane.api.privileges import render_user_privileges
from keyplane.api.roles import render_role
from keyplane.errors import InvalidArgument, ParseError
from keyplane.security import implicit_privileges, roles
from keyplane.security import privileges as privs
from keyplane.security.identity import Authentication
from keyplane.security.permission import Permission
from keyplane.security.roles import IndicesPrivileges
from keyplane.security.user_privileges import user_privileges
from keyplane.security.users import reserved_user

CLONE = "cluster:admin/xpack/security/api_key/clone"


def _perm(cluster: list[str] | None = None, indices: list[dict[str, Any]] | None = None) -> Permission:
    return Permission([roles.parse_and_validate("r", {"cluster": cluster or [], "indices": indices or []})])


# -- cluster privileges -------------------------------------------------------------------------------


def test_clone_api_key_grants_the_clone_action_only() -> None:
    clone = _perm(["clone_api_key"])
    assert clone.grants_action(CLONE)
    assert not clone.grants_action("cluster:admin/xpack/security/api_key/create")
    assert not clone.grants_action("cluster:admin/xpack/security/api_key/grant")
    for holder in ("manage_api_key", "manage_security", "all"):
        assert _perm([holder]).has_cluster_privilege("clone_api_key"), holder
    assert not _perm(["manage_own_api_key"]).has_cluster_privilege("clone_api_key")
    assert not _perm(["grant_api_key"]).has_cluster_privilege("clone_api_key")
    assert not _perm(["manage"]).has_cluster_privilege("clone_api_key")


def test_clone_denial_lists_the_privileges_that_would_allow_it() -> None:
    assert privs.privileges_granting(CLONE) == ["clone_api_key", "manage_api_key", "manage_security", "all"]
    # manage_own_api_key never clones (the source key may be anyone's).
    assert "manage_own_api_key" not in privs.privileges_granting(CLONE, own=False)


def test_reindex_privileges() -> None:
    monitor_reindex = _perm(["monitor_reindex"])
    assert monitor_reindex.grants_action("cluster:monitor/reindex/list")
    assert monitor_reindex.grants_action("cluster:monitor/reindex/get")
    assert not monitor_reindex.grants_action("cluster:admin/reindex/cancel")
    manage_reindex = _perm(["manage_reindex"])
    for action in ("cluster:monitor/reindex/list", "cluster:admin/reindex/cancel", "cluster:admin/reindex/rethrottle"):
        assert manage_reindex.grants_action(action), action
    assert manage_reindex.has_cluster_privilege("monitor_reindex")
    assert not monitor_reindex.has_cluster_privilege("manage_reindex")
    # monitor is cluster:monitor/*, manage is cluster:* but security: they hold these too.
    assert _perm(["monitor"]).has_cluster_privilege("monitor_reindex")
    assert not _perm(["monitor"]).has_cluster_privilege("manage_reindex")
    assert _perm(["manage"]).has_cluster_privilege("manage_reindex")
    assert not _perm(["manage_security"]).has_cluster_privilege("monitor_reindex")


def test_new_cluster_names_are_accepted_in_roles_and_listed() -> None:
    rd = roles.parse_and_validate("r", {"cluster": ["clone_api_key", "manage_reindex", "monitor_reindex"]})
    assert rd.cluster == ["clone_api_key", "manage_reindex", "monitor_reindex"]
    message = privs.unknown_cluster_privilege_message("nope")
    for name in ("clone_api_key", "manage_reindex", "monitor_reindex"):
        assert name in privs.CLUSTER_PRIVILEGES
        assert f",{name}," in message


# -- index privileges ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["create_view", "delete_view", "manage_view", "read_view_metadata"])
def test_view_privileges_are_known_and_implied_by_manage_and_all(name: str) -> None:
    assert name in privs.INDEX_PRIVILEGES
    roles.parse_and_validate("r", {"indices": [{"names": ["v-*"], "privileges": [name]}]})
    for holder in (name, "manage_view" if name != "manage_view" else name, "manage", "all"):
        assert _perm(indices=[{"names": ["v-*"], "privileges": [holder]}]).has_index_privilege("v-1", name), holder
    for holder in ("read", "view_index_metadata", "write", "monitor"):
        assert not _perm(indices=[{"names": ["v-*"], "privileges": [holder]}]).has_index_privilege("v-1", name)


def test_manage_view_is_exactly_the_three_view_operations() -> None:
    manage_view = _perm(indices=[{"names": ["v"], "privileges": ["manage_view"]}])
    assert all(manage_view.has_index_privilege("v", p) for p in ("create_view", "delete_view", "read_view_metadata"))
    assert not manage_view.has_index_privilege("v", "manage")
    assert not manage_view.has_index_privilege("v", "read")


# -- global.data_source -------------------------------------------------------------------------------


def test_data_source_round_trip_display_and_user_privileges() -> None:
    body = {
        "global": {
            "data_source": [
                {"names": ["s3-*"], "privileges": ["read", "read_metadata"]},
                {"names": ["gcs"], "privileges": ["manage"]},
            ]
        }
    }
    rd = roles.parse_and_validate("d", body)
    shown = rd.to_dict()["global"]
    assert list(shown) == ["application", "profile", "role", "data_source"]
    assert shown["data_source"] == body["global"]["data_source"]
    assert shown["application"] == {} and shown["role"] == {}
    assert roles.from_stored("d", roles.to_stored(rd)).to_dict() == rd.to_dict()
    assert render_user_privileges(user_privileges([rd]))["global"] == [{"data_source": body["global"]["data_source"]}]
    # With other global privileges, data_source is shown after them.
    both = roles.parse_and_validate(
        "d2",
        {
            "global": {
                "data_source": [{"names": ["a"], "privileges": ["create", "delete"]}],
                "application": {"manage": {"applications": ["app"]}},
            }
        },
    )
    assert list(both.to_dict()["global"]) == ["application", "profile", "role", "data_source"]
    # An empty list grants nothing and is not shown.
    assert "global" not in roles.parse_and_validate("e", {"global": {"data_source": []}}).to_dict()


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ({"names": ["a"]}, ParseError, "expected [START_ARRAY] but found [START_OBJECT]"),
        ([["a"]], ParseError, "expected [START_OBJECT] but found [START_ARRAY]"),
        ([{"names": ["a"], "privileges": ["read"], "x": 1}], ParseError, "expected one of [names, privileges]"),
        ([{"names": "a", "privileges": ["read"]}], ParseError, "expected [START_ARRAY] but found [VALUE_STRING]"),
        ([{"names": ["a"], "privileges": [1]}], ParseError, "expected [VALUE_STRING] but found [VALUE_NUMBER]"),
        ([{"names": ["a"]}], ParseError, "missing required field [privileges]"),
        ([{"names": [], "privileges": ["read"]}], InvalidArgument, "at least one data source name"),
        ([{"names": ["a"], "privileges": []}], InvalidArgument, "at least one privilege"),
        ([{"names": ["a"], "privileges": ["write"]}], InvalidArgument, "unknown data source privilege [write]"),
        ([{"names": ["a"], "privileges": ["all"]}], InvalidArgument, "unknown data source privilege [all]"),
    ],
)
def test_data_source_refusals(value: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as exc:
        roles.parse("d", {"global": {"data_source": value}})
    assert message in str(exc.value)


def test_data_source_counts_as_more_than_index_privileges_for_role_manage() -> None:
    manager = Permission(
        [roles.parse("m", {"global": {"role": {"manage": {"indices": [{"names": ["*"], "privileges": ["all"]}]}}}})]
    )
    with_source = roles.parse("x", {"global": {"data_source": [{"names": ["a"], "privileges": ["read"]}]}})
    assert not manager.may_manage_roles("cluster:admin/xpack/security/role/put", [with_source])


def test_api_key_descriptors_take_the_new_names() -> None:
    rd = roles.parse(
        "k",
        {
            "cluster": ["clone_api_key", "monitor_reindex"],
            "indices": [{"names": ["v"], "privileges": ["manage_view"]}],
            "global": {"data_source": [{"names": ["a"], "privileges": ["read"]}]},
        },
        allow_description=False,
    )
    assert roles.validation_messages(rd) == []


# -- implicit index privileges ------------------------------------------------------------------------


def test_implicitly_granted_is_refused_in_a_role() -> None:
    with pytest.raises(ParseError, match=r"unexpected field \[implicitly_granted\]"):
        roles.parse("r", {"indices": [{"names": ["a"], "privileges": ["read"], "implicitly_granted": True}]})


def test_role_with_implicit_marks_provider_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    rd = roles.parse(
        "k",
        {
            "indices": [{"names": ["own"], "privileges": ["read"]}],
            "applications": [{"application": "app-1", "privileges": ["reader"], "resources": ["*"]}],
        },
    )
    assert render_role(implicit_privileges.role_with_implicit(rd, [])) == rd.to_dict()  # no provider registered

    def provider(role: roles.RoleDescriptor, stored: list[dict[str, Any]]) -> list[IndicesPrivileges]:
        if any("app:read" in p["actions"] for p in stored):
            return [IndicesPrivileges([".app-data-*"], ["read"])]
        return []

    monkeypatch.setattr(implicit_privileges, "PROVIDERS", [provider])
    stored = [{"application": "app-1", "name": "reader", "actions": ["app:read"], "metadata": {}}]
    shown = implicit_privileges.role_with_implicit(rd, stored)
    assert shown.implicit == [IndicesPrivileges([".app-data-*"], ["read"])]
    assert render_role(shown)["indices"] == [
        {"names": ["own"], "privileges": ["read"], "allow_restricted_indices": False},
        {
            "names": [".app-data-*"],
            "privileges": ["read"],
            "allow_restricted_indices": False,
            "implicitly_granted": True,
        },
    ]
    assert render_role(implicit_privileges.role_with_implicit(rd, [])) == rd.to_dict()


# -- authenticate -------------------------------------------------------------------------------------


def _auth(kind: str, **extra: Any) -> Authentication:
    user = reserved_user("elastic")
    realm = {"name": "r", "type": "t"}
    return Authentication(user, user, realm, realm, kind, [], [], Permission([]), **extra)


def test_authenticate_says_elasticsearch_manages_the_credential() -> None:
    key = render_authentication(_auth("api_key", api_key={"id": "k1", "name": "n"}))
    assert key["api_key"] == {"id": "k1", "name": "n", "managed_by": "elasticsearch"}
    assert "internal" not in key["api_key"]
    service = render_authentication(_auth("token", token={"name": "t1", "type": "_service_account_index"}))
    assert service["token"] == {"name": "t1", "type": "_service_account_index", "managed_by": "elasticsearch"}
    assert "api_key" not in render_authentication(_auth("realm")) and "token" not in render_authentication(
        _auth("realm")
    )
