"""``GET /_security/_authenticate`` keeps its rendered answer per caller: every answer must still be
the caller's own, as it is now, whatever was answered before on the same connection."""

from __future__ import annotations

import httpx

from tests.e2e.server import PASSWORD, Server

URL = "/_security/_authenticate"
VENDOR8 = "application/vnd.elasticsearch+json; compatible-with=8"


def test_a_changed_user_is_answered_as_it_is_now(server: Server, http: httpx.Client) -> None:
    user = {"password": "kay-secret-1", "roles": ["viewer"], "full_name": "Kay One", "metadata": {"n": 1}}
    http.put("/_security/user/kay", json=user).raise_for_status()
    with httpx.Client(base_url=server.url, auth=("kay", "kay-secret-1"), timeout=10) as kay:
        first = kay.get(URL).json()
        assert kay.get(URL).json() == first  # the kept answer
        assert (first["username"], first["full_name"], first["metadata"]) == ("kay", "Kay One", {"n": 1})
        assert (first["roles"], first["authentication_type"]) == (["viewer"], "realm")

        changed_user = {**user, "roles": ["viewer", "editor"], "full_name": "Kay Two", "metadata": {"n": 2}}
        http.put("/_security/user/kay", json=changed_user).raise_for_status()
        changed = kay.get(URL).json()
        assert (changed["full_name"], changed["metadata"]) == ("Kay Two", {"n": 2})
        assert changed["roles"] == ["viewer", "editor"]

        # A query string shapes the answer: never the kept one.
        pretty = kay.get(URL, params={"pretty": "true"})
        assert pretty.text.startswith("{\n") and pretty.json() == changed
        assert kay.get(URL, params={"filter_path": "username"}).json() == {"username": "kay"}
        assert kay.get(URL).text == httpx.get(server.url + URL, auth=("kay", "kay-secret-1")).text

        # The media type follows the request; HEAD answers the length without the body.
        compatible = kay.get(URL, headers={"Accept": VENDOR8})
        assert compatible.headers["content-type"] == VENDOR8.replace(" ", "") and compatible.json() == changed
        plain = kay.get(URL)
        assert plain.headers["content-type"] == "application/json"
        head = kay.head(URL)
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == str(len(plain.content))

        # The credential is still checked on every request.
        assert httpx.get(server.url + URL, auth=("kay", "wrong-password")).status_code == 401
        http.put("/_security/user/kay/_disable").raise_for_status()
        assert kay.get(URL).status_code == 401
        http.put("/_security/user/kay/_enable").raise_for_status()
        assert kay.get(URL).json() == changed


def test_each_credential_kind_and_run_as_get_their_own_answer(server: Server, http: httpx.Client) -> None:
    http.put("/_security/user/lee", json={"password": "lee-secret-1", "roles": ["viewer"]}).raise_for_status()
    token = http.post(
        "/_security/oauth2/token", json={"grant_type": "password", "username": "lee", "password": "lee-secret-1"}
    ).json()["access_token"]
    key = http.post("/_security/api_key", json={"name": "kept-key"}).json()
    service = http.post("/_security/service/elastic/fleet-server/credential/token/kept").json()["token"]["value"]
    by_token = {"Authorization": f"Bearer {token}"}
    by_key = {"Authorization": f"ApiKey {key['encoded']}"}
    by_service = {"Authorization": f"Bearer {service}"}
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for _ in range(2):  # the second round is answered from what the first kept
            as_token = client.get(URL, headers=by_token).json()
            assert (as_token["username"], as_token["authentication_type"]) == ("lee", "token")
            as_user = client.get(URL, auth=("lee", "lee-secret-1")).json()
            assert (as_user["username"], as_user["authentication_type"]) == ("lee", "realm")
            as_key = client.get(URL, headers=by_key).json()
            assert as_key["authentication_type"] == "api_key" and as_key["roles"] == []
            assert as_key["api_key"] == {"id": key["id"], "name": "kept-key", "managed_by": "elasticsearch"}
            run_as = client.get(URL, auth=("elastic", PASSWORD), headers={"es-security-runas-user": "lee"})
            assert run_as.json()["username"] == "lee"
            assert run_as.json()["authentication_realm"]["name"] == "reserved"
            assert client.get(URL, auth=("elastic", PASSWORD)).json()["username"] == "elastic"
            as_service = client.get(URL, headers=by_service).json()
            assert (as_service["username"], as_service["authentication_type"]) == ("elastic/fleet-server", "token")
            shown = {"name": "kept", "type": "_service_account_index", "managed_by": "elasticsearch"}
            assert as_service["token"] == shown
        # Invalidated credentials are refused, kept answers or not.
        http.request("DELETE", "/_security/api_key", json={"ids": [key["id"]]}).raise_for_status()
        assert client.get(URL, headers=by_key).status_code == 401
        http.request("DELETE", "/_security/oauth2/token", json={"token": token}).raise_for_status()
        assert client.get(URL, headers=by_token).status_code == 401
        http.delete("/_security/service/elastic/fleet-server/credential/token/kept").raise_for_status()
        assert client.get(URL, headers=by_service).status_code == 401
