"""Create a connector, register its configuration schema (REST), fill the generated form, set its
API key id, schedule it, edit its filtering, start and cancel a sync."""

from __future__ import annotations

import httpx
from selenium.webdriver.common.by import By

from tests.browser.console import Console

# A schema as the connectors service registers one: display order, required, sensitive, depends_on,
# validations, every display type.
SCHEMA = {
    "host": {"label": "Host", "display": "textbox", "type": "str", "order": 1, "required": True, "value": ""},
    "port": {
        "label": "Port",
        "display": "numeric",
        "type": "int",
        "order": 2,
        "required": True,
        "value": 5432,
        "validations": [{"type": "greater_than", "constraint": 0}, {"type": "less_than", "constraint": 65536}],
    },
    "password": {"label": "Password", "display": "textbox", "type": "str", "order": 3, "sensitive": True, "value": ""},
    "use_ssl": {"label": "Use SSL", "display": "toggle", "type": "bool", "order": 4, "value": False},
    "ssl_ca": {
        "label": "SSL certificate",
        "display": "textarea",
        "type": "str",
        "order": 5,
        "depends_on": [{"field": "use_ssl", "value": True}],
        "value": "",
    },
    "mode": {
        "label": "Mode",
        "display": "dropdown",
        "type": "str",
        "order": 6,
        "options": [{"label": "Fast", "value": "fast"}, {"label": "Thorough", "value": "thorough"}],
        "value": "fast",
    },
    "tables": {"label": "Tables", "display": "textbox", "type": "list", "order": 0, "value": "*"},
}


def labels_in_order(console: Console) -> list[str]:
    return [el.get_attribute("data-field") for el in console.all(".config-fields > .field") if el.is_displayed()]


def test_connector_configuration_api_key_schedule_filtering_and_sync(console: Console, http: httpx.Client) -> None:
    console.sign_in("elastic", "e2e-password")
    console.go("#/connectors")
    console.button("Create connector").click()
    console.wait_text("main h1", "Create a connector")
    console.fill("Connector id", "my-connector")
    console.fill("Name", "My Postgres")
    console.fill("Index name", "search-pg")
    console.fill("Service type", "postgresql")
    console.button("Create connector").click()
    console.wait_text("main h1", "My Postgres")
    assert "No configuration schema" in console.css("section[aria-labelledby=config-title]").text

    # The schema is registered through the REST API, as the connectors service does.
    answer = http.put("/_connector/my-connector/_configuration", json={"configuration": SCHEMA})
    assert answer.status_code == 200, answer.text
    console.driver.refresh()
    console.wait_for(".config-fields")
    assert labels_in_order(console) == [
        "tables",
        "host",
        "port",
        "password",
        "use_ssl",
        "mode",
    ]  # ssl_ca waits on use_ssl
    assert console.field("Password").get_attribute("type") == "password"
    console.shot("schema-form")

    console.fill("Host (required)", "")
    console.fill("Port (required)", "70000")
    console.button("Save configuration").click()
    error = console.wait_for("section[aria-labelledby=config-title] .error")
    assert "Host is required" in error.text and "Port must be less than 65536" in error.text
    assert console.field("Port (required)").get_attribute("aria-invalid") == "true"
    console.shot("validation")

    console.fill("Host (required)", "db.example.com")
    console.fill("Port (required)", "5433")
    console.fill("Password", "s3cret")
    console.css(".config-fields [data-field=use_ssl] input").click()
    console.wait_until(lambda: "ssl_ca" in labels_in_order(console))
    console.set_text("SSL certificate", "-----BEGIN CERTIFICATE-----")
    console.select("Mode", "thorough")
    console.fill("Tables", "users, orders")
    console.button("Save configuration").click()
    console.wait_text("#status", "Configuration saved")
    console.wait_for(".config-fields")
    connector = http.get("/_connector/my-connector").json()
    values = {k: v["value"] for k, v in connector["configuration"].items()}
    assert values == {
        "host": "db.example.com",
        "port": 5433,
        "password": "s3cret",
        "use_ssl": True,
        "ssl_ca": "-----BEGIN CERTIFICATE-----",
        "mode": "thorough",
        "tables": ["users", "orders"],
    }
    assert connector["status"] == "configured"

    # The docs' update connector API key id example: the key's id and the secret holding it.
    key = http.post("/_security/api_key", json={"name": "my-connector-key"}).json()
    secret = http.post("/_connector/_secret", json={"value": key["encoded"]}).json()
    console.fill("API key id", key["id"])
    console.fill("API key secret id", secret["id"])
    console.button("Save API key").click()
    console.wait_text("#status", "API key id saved")
    connector = http.get("/_connector/my-connector").json()
    assert connector["api_key_id"] == key["id"] and connector["api_key_secret_id"] == secret["id"]

    # Scheduling: the server checks the cron expression.
    console.css("#sched-full-enabled").click()
    console.fill("Full sync schedule (cron)", "not a cron")
    console.button("Save schedule").click()
    assert "cron" in console.wait_for("section[aria-labelledby=sched-title] .error").text.lower()
    console.fill("Full sync schedule (cron)", "0 0 3 * * ?")
    console.button("Save schedule").click()
    console.wait_text("#status", "Schedule saved")
    assert http.get("/_connector/my-connector").json()["scheduling"]["full"] == {
        "enabled": True,
        "interval": "0 0 3 * * ?",
    }

    # Filtering: a draft, its validation, activation.
    rules = (
        '[{"id": "exclude-tmp", "field": "name", "policy": "exclude", "rule": "starts_with", "value": "tmp",'
        ' "order": 0}, {"id": "DEFAULT", "field": "_", "policy": "include", "rule": "regex", "value": ".*",'
        ' "order": 1}]'
    )
    console.set_text("Draft rules (JSON)", rules)
    console.button("Save draft").click()
    console.wait_text("#status", "Draft filtering saved")
    console.wait_for("section[aria-labelledby=filter-title]")
    console.select("Validation state", "valid")
    console.button("Set validation state").click()
    console.wait_text("#status", "Draft validation set to valid")
    console.wait_for("section[aria-labelledby=filter-title]")
    console.button("Activate draft").click()
    console.wait_text("#status", "Draft filtering activated")
    console.wait_for("section[aria-labelledby=filter-title]")
    active = http.get("/_connector/my-connector").json()["filtering"][0]["active"]["rules"]
    assert [r["id"] for r in active] == ["exclude-tmp", "DEFAULT"]
    console.shot("filtering")

    # Start a sync, then cancel it.
    console.button("Start sync").click()
    console.wait_text("#status", "started")
    row = console.wait_for("section[aria-labelledby=sync-title] tbody tr[data-id]")
    assert "pending" in row.text and "full" in row.text
    console.shot("sync-started")
    job_id = row.get_attribute("data-id")
    row.find_element(By.CSS_SELECTOR, "button").click()
    console.confirm()
    console.wait_text("#status", "Sync job canceled")
    assert http.get(f"/_connector/_sync_job/{job_id}").json()["status"] in ("canceled", "canceling")
    for i in range(3):
        http.put(f"/_connector/other-{i}", json={"index_name": f"search-other-{i}", "service_type": "jira"})
    console.go("#/connectors")
    console.wait_text("#connector-count", "of 4")
    console.wait_text("main table.grid tbody", "My Postgres")
    assert "postgresql" in console.css("main table.grid tbody").text
    console.shot("list")
    console.fill("Service type", "jira")
    console.wait_text("#connector-count", "of 3")
    assert "My Postgres" not in console.css("main table.grid tbody").text
