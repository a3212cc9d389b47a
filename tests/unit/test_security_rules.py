"""The rules of users, roles, application privileges and the record query, as pure functions."""

from __future__ import annotations

from typing import Any

import pytest

from keyplane.api.bulk import errors_body
from keyplane.errors import InvalidArgument, KeyplaneError, NotFound, ParseError, ValidationError
from keyplane.security import app_privileges, query
from keyplane.security import roles as role_mod
from keyplane.security import users as user_mod
from keyplane.security.permission import Permission
from keyplane.security.privilege_service import check_own_account, listed_descriptors
from keyplane.security.query import RecordQuery
from keyplane.security.users import User, UserPut

# -- users -------------------------------------------------------------------------------------------


def test_put_body_shape_and_username() -> None:
    assert user_mod.put_roles("ann", {"roles": "a,,b"}) == ["a", "b"]
    assert user_mod.put_roles("ann", {"roles": ["a"], "username": "ann"}) == ["a"]
    assert user_mod.put_roles("ann", {}) is None
    with pytest.raises(ParseError, match="expected an object"):
        user_mod.put_roles("ann", [])
    with pytest.raises(ParseError, match=r"unexpected field \[nick\]"):
        user_mod.put_roles("ann", {"nick": "x"})
    with pytest.raises(ParseError, match=r"expected \[ann\] but got \[bob\]"):
        user_mod.put_roles("ann", {"username": "bob"})
    with pytest.raises(ParseError, match=r"expected field \[roles\] to be of type string array"):
        user_mod.put_roles("ann", {"roles": [1]})


def test_only_an_update_may_leave_the_roles_out() -> None:
    with pytest.raises(ValidationError, match="roles are missing"):
        user_mod.user_put("ann", {}, None, exists=False)
    put = user_mod.user_put("ann", {"enabled": False, "full_name": "Ann"}, None, exists=True)
    assert put.user == User("ann", roles=[], full_name="Ann", enabled=False)
    assert put.password is None and put.password_hash is None


def test_the_roles_check_comes_before_the_field_types() -> None:
    # The order the API has always reported a body with both faults in.
    with pytest.raises(ValidationError, match="roles are missing"):
        user_mod.user_put("ann", {"enabled": "yes"}, None, exists=False)
    with pytest.raises(
        ParseError, match=r"expected field \[enabled\] to be of type boolean, but found \[VALUE_STRING\]"
    ):
        user_mod.user_put("ann", {"enabled": "yes"}, ["r"], exists=False)
    with pytest.raises(ParseError, match=r"\[full_name\] to be of type string"):
        user_mod.user_put("ann", {"full_name": True}, ["r"], exists=False)


def _put(username: str = "ann", **fields: Any) -> UserPut:
    password, password_hash = fields.pop("password", None), fields.pop("password_hash", None)
    return UserPut(User(username, **fields), password, password_hash)


def test_user_write_checks() -> None:
    user_mod.check_put(_put(password="long-enough"), exists=False)
    user_mod.check_put(_put(), exists=True)  # an update keeps the stored password
    with pytest.raises(ValidationError, match="password must be specified unless"):
        user_mod.check_put(_put(), exists=False)
    with pytest.raises(ValidationError, match=r"user \[elastic\] is reserved"):
        user_mod.check_put(_put("elastic", password="long-enough"), exists=True)
    with pytest.raises(ValidationError) as caught:
        user_mod.check_put(_put(" ann", password="short", password_hash="x", metadata={"_k": 1}), exists=False)
    assert len(caught.value.messages) == 4  # every message of one request at once


def test_password_change_body() -> None:
    assert user_mod.password_change({"password": "p"}) == ("p", None)
    assert user_mod.password_change({"password_hash": "h"}) == (None, "h")
    with pytest.raises(ParseError, match=r"unexpected field \[roles\]"):
        user_mod.password_change({"roles": []})
    with pytest.raises(ValidationError, match="password must be specified"):
        user_mod.check_password_change(None, None)
    with pytest.raises(ValidationError, match="at least"):
        user_mod.check_password_change("short", None)


def test_users_may_not_disable_themselves_nor_delete_built_in_users() -> None:
    user_mod.check_set_enabled("ann", True, "ann")
    user_mod.check_set_enabled("bob", False, "ann")
    with pytest.raises(ValidationError, match="their own account"):
        user_mod.check_set_enabled("ann", False, "ann")
    user_mod.check_delete("ann")
    with pytest.raises(InvalidArgument, match=r"user \[kibana_system\] is reserved and cannot be deleted"):
        user_mod.check_delete("kibana_system")


def test_user_query_fields_and_realm() -> None:
    assert user_mod.queryable_field("username") == "username"
    assert user_mod.queryable_field("metadata.x") is None and user_mod.queryable_field("password") is None
    assert user_mod.realm_of({"metadata": {"_reserved": True}}) == "reserved"
    assert user_mod.realm_of({"metadata": {}}) == "default_native"


# -- roles -------------------------------------------------------------------------------------------


def test_reserved_roles_are_neither_written_nor_deleted() -> None:
    role_mod.check_writable("mine")
    role_mod.check_deletable("mine")
    with pytest.raises(ValidationError, match=r"Role \[superuser\] is reserved and may not be used."):
        role_mod.check_writable("superuser")
    with pytest.raises(InvalidArgument, match=r"role \[superuser\] is reserved and cannot be deleted"):
        role_mod.check_deletable("superuser")


def test_bulk_authorization_sees_the_roles_that_parse() -> None:
    parsed = role_mod.parsable({"a": {"cluster": ["monitor"]}, "b": {"nope": 1}, "c": {"restriction": {}}})
    assert [rd.name for rd in parsed] == ["a"]  # restriction is for API keys only


def test_role_query_fields() -> None:
    for name in ("name", "description", "cluster", "run_as", "applications.application", "metadata.team"):
        assert role_mod.queryable_field(name) == name
    assert role_mod.queryable_field("indices.names") is None
    record = role_mod.query_record(role_mod.parse("r", {"cluster": ["monitor"]}))
    assert record["name"] == "r" and record["cluster"] == ["monitor"]


# -- application privileges ------------------------------------------------------------------------------


def test_application_privileges_body() -> None:
    body = {"myapp": {"read": {"actions": ["data:read/*"], "metadata": {"k": 1}}, "none": {"actions": ["a:b"]}}}
    assert app_privileges.parse_put(body) == [
        {"application": "myapp", "name": "read", "actions": ["data:read/*"], "metadata": {"k": 1}},
        {"application": "myapp", "name": "none", "actions": ["a:b"], "metadata": {}},
    ]
    assert app_privileges.applications_named(body) == ["myapp"]
    assert app_privileges.applications_named([]) == []


def test_application_privileges_messages_come_together() -> None:
    with pytest.raises(ValidationError) as caught:
        app_privileges.parse_put({"Ap": {"p": {"actions": ["plain"], "metadata": {"_x": 1}}, "q": {}}})
    assert caught.value.messages == [
        "action [plain] must contain one of [/*:] in application privilege [Ap:p]",
        "metadata keys may not start with [_]",
        "Application names must match the pattern ^[a-z][A-Za-z0-9_-]{2,}$ (found 'Ap')",
        "application privilege [Ap:q] must have at least one action",
        "Application names must match the pattern ^[a-z][A-Za-z0-9_-]{2,}$ (found 'Ap')",
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "expected an object of applications"),
        ({"app": []}, r"expected an object of privileges for application \[app\]"),
        ({"app": {"p": 1}}, r"expected an object for privilege \[app:p\]"),
        ({"app": {"p": {"x": 1}}}, r"unexpected field \[x\]"),
        ({"app": {"p": {"application": "other"}}}, r"has application name \[other\] which does not match"),
        ({"app": {"p": {"name": "q"}}}, r"Application privilege \[p\] has name \[q\] which does not match"),
        ({"app": {"p": {"actions": ["a:b"], "metadata": 1}}}, r"\[metadata\] must be an object"),
    ],
)
def test_application_privileges_structural_faults(body: Any, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        app_privileges.parse_put(body)


# -- the caller's own privileges ----------------------------------------------------------------------


class _Auth:
    """The parts of an Authentication these rules read."""

    def __init__(
        self,
        username: str,
        permission: Any,
        api_key: dict[str, Any] | None = None,
        api_key_has_descriptors: bool = False,
    ) -> None:
        self.user = User(username)
        self.permission = permission
        self.api_key = api_key
        self.api_key_has_descriptors = api_key_has_descriptors


def test_own_account_only() -> None:
    auth: Any = _Auth("ann", Permission([]))
    check_own_account(auth, None)
    check_own_account(auth, "ann")
    with pytest.raises(InvalidArgument, match="only check the privileges of their own account"):
        check_own_account(auth, "bob")


def test_listed_descriptors() -> None:
    rd = role_mod.parse("r", {"cluster": ["monitor"]})
    user: Any = _Auth("ann", Permission([rd]))
    assert listed_descriptors(user) == [rd]

    class Limited:
        limited_by = Permission([rd])

    owner_privileges: Any = _Auth("ann", Limited(), api_key={"id": "k"})
    assert listed_descriptors(owner_privileges) == [rd]  # a key without descriptors has its owner's
    own: Any = _Auth("ann", Limited(), api_key={"id": "k"}, api_key_has_descriptors=True)
    with pytest.raises(InvalidArgument, match="API keys with assigned role descriptors"):
        listed_descriptors(own)


# -- the record query ---------------------------------------------------------------------------------


def _records() -> list[dict[str, Any]]:
    return [{"username": name, "enabled": name != "b"} for name in ("c", "a", "b", "d")]


def test_record_query_filters_sorts_and_pages() -> None:
    spec = RecordQuery({"term": {"enabled": True}}, None, lambda: (1, 1))
    predicate = query.matcher(query.USER_RULES, spec.query)
    page = query.page(_records(), predicate, spec, query.USER_RULES, "username")
    assert page.total == 3 and [h.record["username"] for h in page.hits] == ["c"]
    by_name_desc = RecordQuery(None, [{"username": "desc"}], lambda: (0, 10))
    page = query.page(_records(), query.matcher(query.USER_RULES, None), by_name_desc, query.USER_RULES, "username")
    assert [h.record["username"] for h in page.hits] == ["d", "c", "b", "a"]
    assert page.hits[0].sort == ["d"]


def test_record_query_reads_its_window_after_the_query_and_sort() -> None:
    def window() -> tuple[int, int]:
        raise ValidationError("[from] parameter cannot be negative but was [-1]")

    with pytest.raises(InvalidArgument, match=r"Field \[password\] is not allowed"):
        query.matcher(query.USER_RULES, {"term": {"password": "x"}})
    spec = RecordQuery(None, None, window)
    with pytest.raises(ValidationError):
        query.page(_records(), query.matcher(query.USER_RULES, None), spec, query.USER_RULES, "username")


# -- the bulk errors answer ---------------------------------------------------------------------------


def test_bulk_errors_body() -> None:
    assert errors_body({}) == {}
    failures: dict[str, KeyplaneError] = {
        "a": NotFound("profile document not found for uid [a]"),
        "b": ValidationError("one", "two"),
    }
    assert errors_body(failures) == {
        "errors": {
            "count": 2,
            "details": {
                "a": {"type": "resource_not_found_exception", "reason": "profile document not found for uid [a]"},
                "b": {"type": "action_request_validation_exception", "reason": "Validation Failed: 1: one;2: two;"},
            },
        }
    }
