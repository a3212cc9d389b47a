"""Every role descriptor field: parsed, shown, validated and enforced as Elasticsearch does it."""

from __future__ import annotations

import base64
import re

import orjson
import pytest

from keyplane.api.privileges import render_user_privileges
from keyplane.errors import InvalidArgument, ParseError, ValidationError
from keyplane.security import roles
from keyplane.security.dls_query import RoleQueryError, check
from keyplane.security.permission import LimitedPermission, Permission
from keyplane.security.user_privileges import user_privileges

PRIV = "cluster:admin/xpack/security/privilege/"
PROFILE_DATA = "cluster:admin/xpack/security/profile/put/data"
ROLE = "cluster:admin/xpack/security/role/"


def test_global_privileges_round_trip_and_display() -> None:
    body = {
        "global": {
            "profile": {"write": {"applications": ["kibana-*"]}},
            "application": {"manage": {"applications": ["app-1", "app-*"]}},
        }
    }
    rd = roles.parse_and_validate("g", body)
    shown = rd.to_dict()["global"]
    # Every category is written, in Elasticsearch's order, once any privilege is set.
    assert list(shown) == ["application", "profile", "role"]
    assert shown == {
        "application": {"manage": {"applications": ["app-1", "app-*"]}},
        "profile": {"write": {"applications": ["kibana-*"]}},
        "role": {},
    }
    assert roles.from_stored("g", roles.to_stored(rd)).to_dict() == rd.to_dict()
    # Categories without privileges grant nothing and are not shown.
    assert "global" not in roles.parse_and_validate("g", {"global": {"profile": {}}}).to_dict()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "expected [START_OBJECT] but found [START_ARRAY] instead"),
        ({"cluster": {}}, "expected one of [application, profile, role] but found [cluster] instead"),
        ({"application": {"write": {}}}, "expected field name [manage] but found [write] instead"),
        ({"application": {"manage": {"apps": []}}}, "expected field name [applications] but found [apps] instead"),
        ({"application": {"manage": {"applications": "a"}}}, "expected [START_ARRAY] but found [VALUE_STRING]"),
        ({"profile": {"write": {"applications": [1]}}}, "expected [VALUE_STRING] but found [VALUE_NUMBER]"),
        ({"profile": {"write": {}}}, "expected [FIELD_NAME] but found [END_OBJECT] instead"),
        ({"role": {"manage": {"indices": [{"names": ["a"], "x": []}]}}}, "expected one of [names, privileges]"),
    ],
)
def test_global_parse_errors(value: object, message: str) -> None:
    with pytest.raises(ParseError) as exc:
        roles.parse("g", {"global": value})
    assert str(exc.value).startswith("failed to parse privilege. ")
    assert message in str(exc.value)


def test_global_role_manage_validation() -> None:
    ok = {"global": {"role": {"manage": {"indices": [{"names": ["team-*"], "privileges": ["read"]}]}}}}
    assert roles.parse_and_validate("g", ok).global_["role"]["manage"]["indices"][0]["names"] == ["team-*"]
    with pytest.raises(InvalidArgument, match="must refer to at least one index name"):
        roles.parse("g", {"global": {"role": {"manage": {"indices": [{"names": [], "privileges": ["read"]}]}}}})
    with pytest.raises(InvalidArgument, match="must define at least one privilege"):
        roles.parse("g", {"global": {"role": {"manage": {"indices": [{"names": ["a"], "privileges": []}]}}}})
    with pytest.raises(InvalidArgument, match=r"unknown index privilege \[reed\]"):
        roles.parse("g", {"global": {"role": {"manage": {"indices": [{"names": ["a"], "privileges": ["reed"]}]}}}})


def test_application_manage_gates_privilege_apis_by_application() -> None:
    perm = Permission([roles.parse("g", {"global": {"application": {"manage": {"applications": ["app-*"]}}}})])
    assert perm.grants_for_applications(PRIV + "put", ["app-1", "app-2"])
    assert not perm.grants_for_applications(PRIV + "put", ["app-1", "other"])
    assert perm.grants_for_applications(PRIV + "delete", ["app-9"])
    # A request naming no application (get every privilege) needs "*".
    assert not perm.grants_for_applications(PRIV + "get", [])
    star = Permission([roles.parse("g", {"global": {"application": {"manage": {"applications": ["*"]}}}})])
    assert star.grants_for_applications(PRIV + "get", [])
    # Nothing else: neither other actions nor profile data.
    assert not perm.grants_for_applications(PRIV + "builtin/get", ["app-1"])
    assert not perm.grants_for_applications(PROFILE_DATA, ["app-1"])
    assert not perm.grants_action(PRIV + "put")
    # A cluster privilege still grants whatever the applications.
    sec = Permission([roles.parse("s", {"cluster": ["manage_security"]})])
    assert sec.grants_for_applications(PRIV + "put", ["anything"])


def test_profile_write_gates_profile_data_by_application() -> None:
    perm = Permission([roles.parse("g", {"global": {"profile": {"write": {"applications": ["kibana-*", "/ap+/"]}}}})])
    assert perm.grants_for_applications(PROFILE_DATA, ["kibana-space"])
    assert perm.grants_for_applications(PROFILE_DATA, ["app"])
    assert not perm.grants_for_applications(PROFILE_DATA, ["kibana-space", "other"])
    assert not perm.grants_for_applications(PRIV + "put", ["kibana-space"])


def test_api_keys_need_both_permissions_for_global_privileges() -> None:
    owner = Permission([roles.parse("o", {"global": {"application": {"manage": {"applications": ["app-*"]}}}})])
    key = Permission([roles.parse("k", {"global": {"application": {"manage": {"applications": ["app-1"]}}}})])
    limited = LimitedPermission(key, owner)
    assert limited.grants_for_applications(PRIV + "put", ["app-1"])
    assert not limited.grants_for_applications(PRIV + "put", ["app-2"])


def test_role_manage_allows_index_only_roles_within_its_patterns() -> None:
    body = {"global": {"role": {"manage": {"indices": [{"names": ["team-*"], "privileges": ["read", "write"]}]}}}}
    perm = Permission([roles.parse("g", body)])
    inside = roles.parse("r", {"indices": [{"names": ["team-a"], "privileges": ["read"]}], "description": "d"})
    outside = roles.parse("r", {"indices": [{"names": ["other"], "privileges": ["read"]}]})
    too_much = roles.parse("r", {"indices": [{"names": ["team-a"], "privileges": ["manage"]}]})
    with_cluster = roles.parse(
        "r", {"cluster": ["monitor"], "indices": [{"names": ["team-a"], "privileges": ["read"]}]}
    )
    assert perm.may_manage_roles(ROLE + "put", [inside])
    assert perm.may_manage_roles(ROLE + "bulk_put", [inside, inside])
    assert not perm.may_manage_roles(ROLE + "put", [outside])
    assert not perm.may_manage_roles(ROLE + "put", [too_much])
    assert not perm.may_manage_roles(ROLE + "bulk_put", [inside, with_cluster])
    # Deleting reads role names as index names and needs delete_index, which read/write do not give.
    assert not perm.may_manage_roles(ROLE + "delete", names=["team-a"])
    deleter = Permission(
        [
            roles.parse(
                "g", {"global": {"role": {"manage": {"indices": [{"names": ["team-*"], "privileges": ["all"]}]}}}}
            )
        ]
    )
    assert deleter.may_manage_roles(ROLE + "delete", names=["team-a"])
    assert not deleter.may_manage_roles(ROLE + "bulk_delete", names=["team-a", "x"])
    assert not Permission([]).may_manage_roles(ROLE + "put", [inside])


def test_remote_indices_display_and_validation() -> None:
    rd = roles.parse_and_validate(
        "r",
        {
            "remote_indices": [
                {"names": "logs-*", "privileges": ["read"], "clusters": ["eu-*"], "query": {"match_all": {}}}
            ]
        },
    )
    # clusters comes last, after the local index fields.
    assert rd.to_dict()["remote_indices"] == [
        {
            "names": ["logs-*"],
            "privileges": ["read"],
            "query": '{"match_all":{}}',
            "allow_restricted_indices": False,
            "clusters": ["eu-*"],
        }
    ]
    with pytest.raises(ParseError, match=r"missing required \[clusters\] field"):
        roles.parse("r", {"remote_indices": [{"names": ["a"], "privileges": ["read"]}]})
    with pytest.raises(InvalidArgument, match=r"sub-field \[clusters\] must refer to at least one cluster alias"):
        roles.parse("r", {"remote_indices": [{"names": ["a"], "privileges": ["read"], "clusters": []}]})
    with pytest.raises(ValidationError) as exc:
        roles.parse_and_validate(
            "r",
            {
                "remote_indices": [
                    {"names": ["a"], "privileges": ["read"], "clusters": ["", "x"]},
                    {"names": ["a"], "privileges": ["read_failure_store"], "clusters": ["x"]},
                    {"names": ["a"], "privileges": ["reed"], "clusters": ["x"]},
                ]
            },
        )
    assert exc.value.messages[0] == "remote index cluster alias cannot be an empty string"
    assert exc.value.messages[1] == (
        "remote index privileges cannot contain privileges that grant access to the failure store"
    )
    assert exc.value.messages[2].startswith("unknown index privilege [reed]")


def test_remote_cluster_parse_rules() -> None:
    rd = roles.parse_and_validate("r", {"remote_cluster": [{"privileges": ["monitor_enrich"], "clusters": ["one"]}]})
    assert rd.to_dict()["remote_cluster"] == [{"privileges": ["monitor_enrich"], "clusters": ["one"]}]
    assert "remote_cluster" not in roles.parse("r", {"remote_cluster": []}).to_dict()
    prefix = "failed to parse remote_cluster for role [r]. "
    cases = [
        ([{"privileges": ["monitor_enrich"]}], "[clusters] must be defined when [privileges] are defined"),
        ([{"clusters": ["a"]}], "[privileges] must be defined when [clusters] are defined"),
        (
            [{"privileges": ["monitor_stats", "read_pipeline"], "clusters": ["*"]}],
            "[monitor_enrich, monitor_stats] are the only values allowed for [privileges] within [remote_cluster]. "
            "Found [monitor_stats, read_pipeline]",
        ),
        ({"privileges": []}, "expected field [remote_cluster] value to be an array, but found [START_OBJECT] instead"),
        ([{"privileges": ["monitor_stats"], "clusters": ["a"], "x": 1}], "unexpected field [x]"),
    ]
    for value, message in cases:
        with pytest.raises(ParseError) as exc:
            roles.parse("r", {"remote_cluster": value})
        assert str(exc.value) == prefix + message
    with pytest.raises(InvalidArgument, match="^remote cluster groups must not be null or empty$"):
        roles.parse("r", {"remote_cluster": [{}]})
    with pytest.raises(InvalidArgument, match="^remote cluster groups must not be null or empty$"):
        roles.parse("r", {"remote_cluster": [{"privileges": ["monitor_stats"], "clusters": []}]})


def test_restriction_is_for_api_keys_only() -> None:
    with pytest.raises(ParseError, match=r"^failed to parse role \[r\]. unexpected field \[restriction\]$"):
        roles.parse_and_validate("r", {"restriction": {"workflows": ["search_application_query"]}})
    key = roles.parse("k", {"restriction": {"workflows": ["search_application_query"]}}, allow_description=False)
    assert key.to_dict()["restriction"] == {"workflows": ["search_application_query"]}
    assert roles.parse("k", {"restriction": {}}).restriction is None
    with pytest.raises(ParseError, match=r"\[workflows\] cannot be an empty array"):
        roles.parse("k", {"restriction": {"workflows": []}})
    with pytest.raises(ParseError, match="expected a string array but found null value instead"):
        roles.parse("k", {"restriction": {"workflows": None}})
    unknown = roles.parse("k", {"restriction": {"workflows": ["nope"]}})
    assert roles.validation_messages(unknown) == [
        "Unknown workflow [nope]. A workflow must be one of the predefined workflow names [search_application_query]."
    ]


@pytest.mark.parametrize(
    ("query", "cause"),
    [
        ('{"has_child": {"type": "c", "query": {"match_all": {}}}}', "has_child query isn't supported"),
        ('{"has_parent": {"parent_type": "p", "query": {"match_all": {}}}}', "has_parent query isn't supported"),
        ('{"percolate": {"field": "q", "document": {}}}', "percolate query isn't supported"),
        ('{"bool": {"filter": [{"terms": {"user": {"index": "u", "id": "1", "path": "p"}}}]}}', "terms lookup"),
        ('{"constant_score": {"filter": {"geo_shape": {"f": {"indexed_shape": {"id": "1"}}}}}}', "indexed shapes"),
        ('{"nested": {"path": "p", "query": {"has_child": {"type": "c"}}}}', "has_child query"),
        ('{"dis_max": {"queries": [{"match_all": {}}, {"percolate": {}}]}}', "percolate query"),
        ('{"function_score": {"functions": [{"filter": {"has_parent": {}}}]}}', "has_parent query"),
        ('{"trem": {"a": 1}}', "unknown query [trem]"),
        ('{"term": {"a": 1}, "match_all": {}}', "malformed query"),
        ("{}", "expected [FIELD_NAME]"),
        ("[1]", "must start with start_object"),
        ("not json", "not valid JSON"),
    ],
)
def test_refused_role_queries(query: str, cause: str) -> None:
    with pytest.raises(RoleQueryError, match=re.escape(cause)):
        check(query)
    with pytest.raises(ParseError) as exc:
        roles.parse_and_validate(
            "r",
            {
                "indices": [
                    {"names": ["fine"], "privileges": ["read"], "query": '{"match_all": {}}'},
                    {"names": ["a", "b"], "privileges": ["read"], "query": query},
                ]
            },
        )
    assert str(exc.value) == "failed to parse field 'query' for indices [a,b] at index privilege [1] of role descriptor"


def test_accepted_role_queries() -> None:
    wrapped = base64.b64encode(orjson.dumps({"term": {"a": 1}})).decode()
    for query in (
        {"term": {"owner": "me"}},
        {"terms": {"owner": ["a", "b"], "boost": 2}},
        {"bool": {"must": {"match": {"a": "b"}}, "must_not": [{"exists": {"field": "x"}}]}},
        {"geo_shape": {"f": {"shape": {"type": "point", "coordinates": [0, 0]}}}},
        {"template": {"source": {"term": {"owner": "{{_user.username}}"}}}},
        {"wrapper": {"query": wrapped}},
    ):
        check(orjson.dumps(query).decode())
    bad_wrapper = base64.b64encode(orjson.dumps({"has_child": {}})).decode()
    with pytest.raises(RoleQueryError, match="has_child"):
        check(orjson.dumps({"wrapper": {"query": bad_wrapper}}).decode())


def test_user_privileges_merge_groups_like_elasticsearch() -> None:
    one = roles.parse(
        "one",
        {
            "cluster": ["monitor", "manage"],
            "indices": [
                {"names": ["b", "a"], "privileges": ["read"], "query": {"term": {"x": 1}}},
                {"names": ["c"], "privileges": ["none"]},
            ],
            "global": {"application": {"manage": {"applications": ["app"]}}},
            "remote_cluster": [{"privileges": ["monitor_enrich"], "clusters": ["r1"]}],
        },
    )
    two = roles.parse(
        "two",
        {
            "cluster": ["monitor"],
            "indices": [
                {"names": ["a", "b"], "privileges": ["write"], "query": '{"term":{"y":2}}'},
                {"names": ["z"], "privileges": ["read"], "field_security": {"grant": ["f*"], "except": ["f1"]}},
            ],
            "remote_indices": [{"names": ["r-*"], "privileges": ["read"], "clusters": ["r2", "r1"]}],
        },
    )
    body = render_user_privileges(user_privileges([one, two]))
    assert body == {
        "cluster": ["manage", "monitor"],
        "global": [{"application": {"manage": {"applications": ["app"]}}}],
        "indices": [
            {
                "names": ["a", "b"],
                "privileges": ["read", "write"],
                "query": ['{"term":{"x":1}}', '{"term":{"y":2}}'],
                "allow_restricted_indices": False,
            },
            {
                "names": ["z"],
                "privileges": ["read"],
                "field_security": [{"grant": ["f*"], "except": ["f1"]}],
                "allow_restricted_indices": False,
            },
        ],
        "applications": [],
        "run_as": [],
        "remote_indices": [
            {"names": ["r-*"], "privileges": ["read"], "allow_restricted_indices": False, "clusters": ["r1", "r2"]}
        ],
        "remote_cluster": [{"privileges": ["monitor_enrich"], "clusters": ["r1"]}],
    }
    # A group without a query lifts document-level security for its whole entry.
    three = roles.parse("three", {"indices": [{"names": ["a", "b"], "privileges": ["read"]}]})
    assert "query" not in render_user_privileges(user_privileges([one, three]))["indices"][0]


def test_stored_descriptors_written_before_stricter_checks_still_load() -> None:
    doc = orjson.dumps(
        {
            "cluster": ["monitor"],
            "global": {"foo": {}},
            "remote_cluster": [{"privileges": ["manage"], "clusters": ["*"]}],
            "restriction": {"workflows": []},
        }
    )
    rd = roles.from_stored("old", doc)
    assert rd.cluster == ["monitor"]
    assert rd.global_ == {} and rd.remote_cluster == []
    assert rd.restriction == {"workflows": []}


def test_application_names_and_privilege_names_are_validated() -> None:
    for name in ("kibana-.kibana", "*", "app*", "ab*", "app-x*", "myapp-a_1"):
        assert roles.application_name_message(name) is None, name
    assert roles.application_name_message("ap") == (
        "An application name prefix must be at least 3 characters long (found 'ap')"
    )
    assert roles.application_name_message("Kibana").startswith("An application name prefix must match the pattern")
    assert roles.application_name_message("app*x") == (
        "Application name patterns only support trailing wildcards (found 'app*x')"
    )
    assert roles.application_name_message("app-a/b").startswith("An application name suffix may not contain")
    rd = roles.parse(
        "r", {"applications": [{"application": "a b", "privileges": ["read", "has space"], "resources": ["*"]}]}
    )
    assert roles.validation_messages(rd) == [
        "Application names may not contain whitespace (found 'a b')",
        "Application privilege names and actions must match the pattern ^\\p{Graph}*$ (found 'has space')",
    ]
