"""What a user may not do is hidden: a user with manage_own_api_key only sees their own keys and
no other section; signing in with an API key works too; users and roles are managed by an admin."""

from __future__ import annotations

import httpx

from tests.browser.console import Console


def test_manage_own_api_key_user_sees_only_own_keys(console: Console, http: httpx.Client) -> None:
    http.put("/_security/role/own_keys", json={"cluster": ["manage_own_api_key"]}).raise_for_status()
    http.put("/_security/user/ann", json={"password": "ann-password", "roles": ["own_keys"]}).raise_for_status()
    http.post("/_security/api_key", json={"name": "elastic-key"}).raise_for_status()
    ann = httpx.Client(base_url=str(http.base_url), auth=("ann", "ann-password"))
    ann.post("/_security/api_key", json={"name": "ann-key"}).raise_for_status()

    console.sign_in("ann", "ann-password")
    assert console.nav() == ["API keys", "Expiring & unused", "Account"]
    console.wait_text("#key-count", "(your own keys)")
    body = console.css("main table.grid tbody").text
    assert "ann-key" in body and "elastic-key" not in body
    assert not [b for b in console.all("main a.button") if "cross-cluster" in b.text]
    assert console.field("Owner").get_attribute("disabled") is not None
    console.shot("own-keys")

    # Hidden sections stay out of reach when their address is typed.
    console.go("#/users")
    assert console.css("main h1").text == "Account"
    # Ann creates and invalidates her own key.
    console.go("#/keys/new")
    console.fill("Name", "ann-second")
    console.button("Create API key").click()
    console.wait_for(".secret")
    encoded = console.css("#secret-encoded").get_attribute("value")
    console.button("Done").click()
    console.wait_text("main h1", "ann-second")
    console.button("Invalidate").click()
    console.confirm()
    console.wait_text("#status", "Invalidated 1 key")
    console.shot("own-invalidated")

    # Signed in with a (now invalidated) key: refused; with a live one: the key's own view.
    console.button("Sign out", "#who").click()
    console.wait_for("#m-key").click()
    console.css("input[name=api_key]").send_keys(encoded)
    console.css("form button[type=submit]").click()
    assert "security_exception" in console.wait_for("form .error").text
    live = ann.post("/_security/api_key", json={"name": "ann-live"}).json()["encoded"]
    console.css("input[name=api_key]").clear()
    console.sign_in_with_key(live)
    assert "API key" in console.css("#who").text
    console.shot("api-key-session")


def test_admin_manages_users_and_roles(console: Console, http: httpx.Client) -> None:
    console.sign_in("elastic", "e2e-password")
    console.go("#/roles")
    console.button("Create role").click()
    console.wait_text("main h1", "Create a role")
    assert "null" not in console.css("main").text
    console.fill("Name", "logs_reader")
    console.set_text("Role descriptor (JSON)", '{"cluster": ["not_a_privilege"]}')
    console.button("Create role").click()
    assert "not_a_privilege" in console.wait_for("main .error").text  # the server's validation
    console.shot("role-error")
    console.set_text(
        "Role descriptor (JSON)", '{"cluster": ["monitor"], "indices": [{"names": ["logs-*"], "privileges": ["read"]}]}'
    )
    console.button("Create role").click()
    console.wait_text("#status", "Role logs_reader created")
    assert http.get("/_security/role/logs_reader").json()["logs_reader"]["cluster"] == ["monitor"]

    console.go("#/users/new")
    assert "null" not in console.css("main").text
    console.fill("Username", "bob")
    console.fill("Password", "bob-password")
    console.fill("Full name", "Bob Example")
    console.fill("Roles", "logs_reader")
    console.button("Create user").click()
    console.wait_text("#status", "User bob created")
    console.wait_text("main h1", "User bob")
    console.fill("New password", "bob-password-2")
    console.button("Change password").click()
    console.wait_text("#status", "Password of bob changed")
    assert httpx.get(str(http.base_url) + "/_security/_authenticate", auth=("bob", "bob-password-2")).status_code == 200
    console.button("Disable user").click()
    console.wait_text("#status", "bob disabled")
    console.go("#/users")
    row = console.wait_for("main tr[data-id=bob]")
    assert "Disabled" in row.text and "Bob Example" in row.text and "logs_reader" in row.text
    console.shot("users")
    assert http.get("/_security/user/bob").json()["bob"]["enabled"] is False
