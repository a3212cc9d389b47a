"""Privilege answers: the domain's typed results, and how the edge renders them."""

from __future__ import annotations

from keyplane.api.privileges import render_has_privileges, render_user_privileges
from keyplane.security import roles
from keyplane.security.permission import Permission
from keyplane.security.privilege_check import PrivilegeCheck, PrivilegeRequest, check
from keyplane.security.privilege_service import ApplicationDefinitions
from keyplane.security.user_privileges import user_privileges


def test_check_is_typed_and_has_all_requested_covers_every_answer() -> None:
    rd = roles.parse("r", {"cluster": ["monitor"], "indices": [{"names": ["logs-*"], "privileges": ["read"]}]})
    wanted = PrivilegeRequest.parse(
        {"cluster": ["monitor"], "index": [{"names": ["logs-a", "other"], "privileges": ["read"]}]}
    )
    result = check(Permission([rd]), wanted, ApplicationDefinitions({}))
    assert result.cluster == {"monitor": True}
    assert result.index == {"logs-a": {"read": True}, "other": {"read": False}}
    assert result.has_all_requested is False
    assert PrivilegeCheck(cluster={"monitor": True}).has_all_requested is True


def test_has_privileges_answer_in_order() -> None:
    body = render_has_privileges("ann", PrivilegeCheck({"monitor": True}, {}, {"app": {"*": {"read": False}}}))
    assert list(body) == ["username", "has_all_requested", "cluster", "index", "application"]
    assert body["has_all_requested"] is False


def test_user_privileges_body_merges_and_shows_remote_parts_only_when_granted() -> None:
    one = roles.parse(
        "one",
        {
            "cluster": ["monitor"],
            "global": {"application": {"manage": {"applications": ["app"]}}},
            "indices": [{"names": ["b", "a"], "privileges": ["read"], "query": '{"match_all":{}}'}],
            "applications": [{"application": "app", "privileges": ["read"], "resources": ["*"]}],
        },
    )
    two = roles.parse(
        "two",
        {
            "indices": [{"names": ["a", "b"], "privileges": ["write"], "query": '{"term":{"x":1}}'}],
            "applications": [{"application": "app", "privileges": ["read"], "resources": ["*"]}],
            "remote_indices": [{"clusters": ["c"], "names": ["r"], "privileges": ["read"]}],
        },
    )
    listed = user_privileges([one, two])
    assert len(listed.applications) == 1 and listed.indices[0].query == ['{"match_all":{}}', '{"term":{"x":1}}']
    body = render_user_privileges(listed)
    assert list(body) == ["cluster", "global", "indices", "applications", "run_as", "remote_indices"]
    assert body["global"] == [{"application": {"manage": {"applications": ["app"]}}}]
    assert body["indices"] == [
        {
            "names": ["a", "b"],
            "privileges": ["read", "write"],
            "query": ['{"match_all":{}}', '{"term":{"x":1}}'],
            "allow_restricted_indices": False,
        }
    ]
    assert body["remote_indices"][0]["clusters"] == ["c"]
    assert "remote_indices" not in render_user_privileges(user_privileges([one]))
