import pytest

from keyplane.errors import ParseError, ValidationError
from keyplane.security import roles
from keyplane.security.permission import LimitedPermission, Permission, Subject, denial_message
from keyplane.security.privileges import privileges_granting


def test_display_form_and_query_string() -> None:
    rd = roles.parse("r", {"indices": [{"names": "a*", "privileges": ["read"], "query": {"term": {"x": 1}}}]})
    assert rd.to_dict() == {
        "cluster": [],
        "indices": [
            {"names": ["a*"], "privileges": ["read"], "query": '{"term":{"x":1}}', "allow_restricted_indices": False}
        ],
        "applications": [],
        "run_as": [],
        "metadata": {},
        "transient_metadata": {"enabled": True},
    }


def test_parse_errors() -> None:
    with pytest.raises(ParseError, match=r"failed to parse role \[r\]. unexpected field \[x\]"):
        roles.parse("r", {"x": 1})
    with pytest.raises(ParseError, match="unexpected field \\[description\\]"):
        roles.parse("r", {"description": "d"}, allow_description=False)
    with pytest.raises(ParseError, match="missing required \\[names\\] field"):
        roles.parse("r", {"indices": [{"privileges": ["read"]}]})
    with pytest.raises(ValidationError) as exc:
        roles.parse_and_validate("r", {"cluster": ["nope"], "metadata": {"_r": 1}})
    assert len(exc.value.messages) == 2


def test_cluster_privileges() -> None:
    p = Permission([roles.parse("r", {"cluster": ["manage"]})])
    assert p.grants_action("cluster:monitor/health")
    assert not p.grants_action("cluster:admin/xpack/security/role/put")
    sec = Permission([roles.parse("r", {"cluster": ["manage_security"]})])
    assert sec.has_cluster_privilege("manage_api_key")
    assert sec.has_cluster_privilege("manage_own_api_key")
    assert not sec.has_cluster_privilege("monitor")
    assert Permission([roles.RESERVED_ROLES["superuser"]]).has_cluster_privilege("manage_connector")
    own = Permission([roles.parse("r", {"cluster": ["manage_own_api_key"]})])
    assert not own.has_cluster_privilege("manage_api_key")


def test_index_privileges_and_restricted_indices() -> None:
    p = Permission([roles.parse("r", {"indices": [{"names": ["logs-*"], "privileges": ["write"]}]})])
    assert p.has_index_privilege("logs-1", "index")
    assert p.has_index_privilege("logs-a*", "create_doc")
    assert not p.has_index_privilege("logs-1", "read")
    assert not p.has_index_privilege("log*", "write")
    star = Permission([roles.parse("r", {"indices": [{"names": ["*"], "privileges": ["all"]}]})])
    assert not star.has_index_privilege(".security-7", "read")
    assert Permission([roles.RESERVED_ROLES["superuser"]]).has_index_privilege(".security-7", "read")
    # Asking about "*" covers restricted indices only when the request says so.
    assert star.has_index_privilege("*", "read")
    assert not star.has_index_privilege("*", "read", allow_restricted=True)
    assert star.has_index_privilege("logs-*", "read", allow_restricted=True)
    assert Permission([roles.RESERVED_ROLES["superuser"]]).has_index_privilege("*", "read", allow_restricted=True)
    limited = LimitedPermission(star, Permission([roles.RESERVED_ROLES["superuser"]]))
    assert not limited.has_index_privilege("*", "read", allow_restricted=True)


def test_limited_permission_is_an_intersection() -> None:
    a = Permission([roles.parse("a", {"cluster": ["all"]})])
    b = Permission([roles.parse("b", {"cluster": ["monitor"]})])
    both = LimitedPermission(a, b)
    assert both.grants_action("cluster:monitor/health")
    assert not both.grants_action("cluster:admin/xpack/security/user/put")


def test_denial_message_order() -> None:
    assert privileges_granting("cluster:admin/xpack/security/api_key/grant") == [
        "grant_api_key",
        "manage_api_key",
        "manage_security",
        "all",
    ]
    msg = denial_message("cluster:admin/xpack/security/role/put", Subject("u", ["b", "a"], ["zz"]))
    assert msg == (
        "action [cluster:admin/xpack/security/role/put] is unauthorized for user [u] with effective roles [a,b] "
        "(assigned roles [zz] were not found), this action is granted by the cluster privileges "
        "[manage_security,all]"
    )
    assert denial_message("x", Subject("u", [], [], api_key_id="k1")) == (
        "action [x] is unauthorized for API key id [k1] of user [u]"
    )
