"""Sign in, create an API key and read its secret once, update it as the docs' example does,
invalidate it; sign-in failures and sign-out; the key health views."""

from __future__ import annotations

import json

import httpx
from selenium.webdriver.common.keys import Keys

from tests.browser.console import Console

# The role descriptors of the docs' create API key example, and the update of the update example.
CREATE_ROLES = {
    "role-a": {"cluster": ["all"], "indices": [{"names": ["index-a*"], "privileges": ["read"]}]},
    "role-b": {"cluster": ["all"], "indices": [{"names": ["index-b*"], "privileges": ["all"]}]},
}
UPDATE_ROLES = {"role-a": {"indices": [{"names": ["*"], "privileges": ["write"]}]}}
UPDATE_METADATA = {"environment": {"level": 2, "trusted": True, "tags": ["production"]}}


def test_sign_in_refuses_bad_password_then_signs_in_and_out(console: Console) -> None:
    console.wait_for("input[name=username]")
    console.shot("sign-in")
    console.css("input[name=username]").send_keys("elastic")
    console.css("input[name=password]").send_keys("wrong")
    console.css("form button[type=submit]").click()
    error = console.wait_for("form .error")
    assert "security_exception" in error.text
    console.shot("refused")
    assert console.driver.execute_script("return sessionStorage.length") == 0
    # Keyboard: Tab moves from the username to the password, Enter signs in.
    console.css("input[name=password]").clear()
    console.css("input[name=username]").clear()
    console.css("input[name=username]").click()
    active = console.driver.switch_to.active_element
    active.send_keys("elastic")
    active.send_keys(Keys.TAB)
    console.driver.switch_to.active_element.send_keys("e2e-password", Keys.ENTER)
    console.wait_for("#who .user")
    assert console.nav() == ["API keys", "Expiring & unused", "Connectors", "Users", "Roles", "Account"]
    stored = console.driver.execute_script("return Object.keys(localStorage).length + document.cookie.length")
    assert stored == 0  # the credentials live in sessionStorage only
    console.button("Sign out", "#who").click()
    console.wait_for("input[name=username]")
    assert console.driver.execute_script("return sessionStorage.length") == 0


def test_create_read_secret_once_update_and_invalidate(console: Console, http: httpx.Client, server_url: str) -> None:
    console.sign_in("elastic", "e2e-password")
    console.button("Create API key").click()
    console.wait_text("main h1", "Create an API key")
    console.fill("Name", "my-api-key")
    console.fill("Expiration", "1d")
    # A syntax error in the editor: the server's parser says what is wrong.
    console.set_text("Role descriptors (JSON)", '{"role-a": {"cluster": ["all"],}}')
    console.set_text("Metadata (JSON)", '{"application": "my-application"}')
    console.button("Create API key").click()
    error = console.wait_for("main .error")
    assert "parse" in error.text
    console.shot("server-error")
    console.set_text("Role descriptors (JSON)", json.dumps(CREATE_ROLES, indent=2))
    console.shot("create-form")
    console.button("Create API key").click()
    console.wait_for(".secret")
    console.shot("secret-once")
    encoded = console.css("#secret-encoded").get_attribute("value")
    id_key = console.css("#secret-idkey").get_attribute("value")
    curl = console.css("#secret-curl").get_attribute("value")
    assert encoded and id_key and ":" in id_key
    key_id = id_key.split(":", 1)[0]
    assert curl == f'curl -H "Authorization: ApiKey {encoded}" {server_url}/_security/_authenticate'
    me = httpx.get(server_url + "/_security/_authenticate", headers={"Authorization": f"ApiKey {encoded}"})
    assert me.json()["api_key"]["id"] == key_id
    console.button("Copy", ".secret").click()
    console.wait_text(".secret", "Copied")

    console.button("Done").click()
    console.wait_text("main h1", "my-api-key")
    page = console.css("main").text
    assert encoded not in console.driver.page_source  # the secret is shown once, then gone
    assert "Active" in page and "expires in 1 day" in page
    assert "index-a*" in console.css("main .columns").text  # role descriptors; limited_by is shown beside them
    assert "Limited by" in page and "superuser" in page
    console.shot("view")

    # The docs' update API key example: new role descriptors, metadata and expiration.
    console.set_text("Role descriptors (JSON)", json.dumps(UPDATE_ROLES))
    console.set_text("Metadata (JSON)", json.dumps(UPDATE_METADATA))
    console.fill("New expiration", "30d")
    console.button("Update key").click()
    console.wait_text("p.result", "updated: true")
    assert "expires in 30 days" in console.css("dl.summary").text  # the page shows the key as it now is
    console.shot("updated")
    key = http.get("/_security/api_key", params={"id": key_id}).json()["api_keys"][0]
    assert list(key["role_descriptors"]) == ["role-a"]
    assert key["role_descriptors"]["role-a"]["indices"][0]["privileges"] == ["write"]
    assert key["metadata"] == UPDATE_METADATA
    console.fill("New expiration", "")
    console.button("Update key").click()
    console.wait_text("p.result", "updated: false")
    console.shot("noop")

    console.go(f"#/keys/{key_id}")
    console.button("Invalidate").click()
    console.confirm()
    console.wait_text("#status", "Invalidated 1 key")
    console.wait_for("main table.grid")
    console.shot("after-invalidate")
    assert http.get("/_security/api_key", params={"id": key_id}).json()["api_keys"][0]["invalidated"] is True


def test_list_search_filter_page_and_invalidate_many(console: Console, http: httpx.Client) -> None:
    for i in range(12):
        http.post("/_security/api_key", json={"name": f"batch-{i:02d}", **({"expiration": "3d"} if i % 3 == 0 else {})})
    http.post("/_security/api_key", json={"name": "other"})
    cross = http.post(
        "/_security/cross_cluster/api_key", json={"name": "cc", "access": {"search": [{"names": ["logs-*"]}]}}
    )
    assert cross.status_code == 200, cross.text
    console.sign_in("elastic", "e2e-password")
    console.wait_text("#key-count", "of 14")
    console.select("Page size", "10")
    console.wait_text("#key-count", "Keys 1–10 of 14")
    console.button("Next").click()
    console.wait_text("#key-count", "Keys 11–14 of 14")
    console.button("Previous").click()
    console.wait_text("#key-count", "Keys 1–10 of 14")
    console.fill("Search", "batch")
    console.wait_text("#key-count", "of 12")
    console.select("Type", "cross_cluster")
    console.fill("Search", "")
    console.wait_text("#key-count", "Keys 1–1 of 1")
    assert "Cross-cluster" in console.css("main table.grid tbody").text
    console.select("Type", "")
    console.select("Sort", "expiration:asc")
    console.wait_until(lambda: "expires in 3 days" in console.css("main table.grid tbody tr").text)
    assert "of 14" in console.css("#key-count").text
    console.shot("list")
    # Select three keys and invalidate them at once.
    console.css("main thead input[type=checkbox]").click()  # the whole page, then all but three again
    console.wait_text("main", "Invalidate selected (10)")
    for box in console.all("main tbody input[type=checkbox]")[3:]:
        box.click()
    console.button("Invalidate selected (3)").click()
    console.confirm()
    console.wait_text("#status", "Invalidated 3 keys")
    console.select("Status", "invalidated")
    console.wait_text("#key-count", "of 3")
    assert len(console.all("main tbody .badge-bad")) == 3
    console.shot("invalidated")
    # The query DSL box runs any query; the server reports a bad one.
    console.css("details.dsl summary").click()
    console.set_text("Query DSL (edit and run to search with any query)", '{"match": {"bogus_field": "x"}}')
    console.button("Run query").click()
    assert "bogus_field" in console.wait_for("main .error").text
    console.shot("dsl-error")


def test_expiring_and_unused_views(console: Console, http: httpx.Client) -> None:
    http.post("/_security/api_key", json={"name": "soon", "expiration": "2d"})
    http.post("/_security/api_key", json={"name": "later", "expiration": "40d"})
    gone = http.post("/_security/api_key", json={"name": "gone-soon", "expiration": "1d"}).json()
    http.request("DELETE", "/_security/api_key", json={"ids": [gone["id"]]}).raise_for_status()
    console.sign_in("elastic", "e2e-password")
    console.go("#/key-health")
    console.wait_text("#expiring-title", "expiring")
    section = console.css("section[aria-labelledby=expiring-title]")
    console.wait_until(lambda: "soon" in section.text)
    # GET /_keyplane/api_key/_expiring: live keys only, within the window
    assert "later" not in section.text and "gone-soon" not in section.text and "expires in 2 days" in section.text
    console.shot("health")


def test_cross_cluster_key_create_and_update(console: Console, http: httpx.Client) -> None:
    console.sign_in("elastic", "e2e-password")
    console.button("Create cross-cluster key").click()
    console.wait_text("main h1", "cross-cluster")
    console.fill("Name", "my-cc-key")
    console.fill("Search: index names or patterns", "logs*, metrics*")
    console.fill("Replication: index names or patterns", "archive*")
    console.button("Create cross-cluster key").click()
    console.wait_for(".secret")
    key_id = console.css("#secret-idkey").get_attribute("value").split(":", 1)[0]
    console.button("Done").click()
    console.wait_text("main h1", "my-cc-key")
    console.fill("Search: index names or patterns", "logs*")
    console.set_text("Metadata (JSON)", '{"tags": ["cc"]}')
    console.button("Update key").click()
    console.wait_text("p.result", "updated: true")
    console.shot("cc-updated")
    key = http.get("/_security/api_key", params={"id": key_id}).json()["api_keys"][0]
    assert key["access"]["search"][0]["names"] == ["logs*"]
    assert key["metadata"] == {"tags": ["cc"]}
    # The docs' update cross-cluster example: access given whole, with a query.
    console.css("label.check input").click()
    access = {"search": [{"names": ["logs*"], "query": {"term": {"tag": "public"}}}]}
    console.set_text("Access (JSON)", json.dumps(access))
    console.button("Update key").click()
    console.wait_text("p.result", "updated: true")
    key = http.get("/_security/api_key", params={"id": key_id}).json()["api_keys"][0]
    query = key["access"]["search"][0]["query"]  # Elasticsearch answers the query as JSON text
    assert (json.loads(query) if isinstance(query, str) else query) == {"term": {"tag": "public"}}
    assert "replication" not in key["access"]
