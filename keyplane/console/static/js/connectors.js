// Connectors: the list, create, and a connector's page (configuration form from its schema, API key
// id, scheduling, filtering, sync jobs).

import { call, enc, rawBody } from "./api.js";
import { badge, busy, confirm, errorBox, field, h, jsonEditor, notify, pre, showError } from "./dom.js";
import { date, relative } from "./format.js";
import { configurationForm } from "./connector_form.js";

export async function page(root, parts, session) {
  if (parts[0] === "new") return createPage(root, session);
  if (parts[0]) return connectorPage(root, parts[0], session);
  return listPage(root, session);
}

const STATUS_KIND = { connected: "good", configured: "info", created: "plain", needs_configuration: "warn", error: "bad" };
const SYNC_KIND = { completed: "good", in_progress: "info", pending: "info", canceling: "warn", canceled: "plain", suspended: "warn", error: "bad" };

function when(ms) {
  if (!ms) return "—";
  const t = typeof ms === "string" ? Date.parse(ms) : ms;
  return h("span", { title: date(t), text: relative(t) });
}

const PAGE = 50;

async function listPage(root, session) {
  const state = { query: "", serviceType: "", from: 0 };
  const box = errorBox();
  const count = h("p", { class: "muted", id: "connector-count" });
  const results = h("div");
  const search = h("input", { type: "search", autocomplete: "off", placeholder: "Name, index or description" });
  const serviceType = h("input", { autocomplete: "off", placeholder: "for example jira, github" });
  const prev = h("button", { type: "button", text: "← Previous", disabled: true });
  const next = h("button", { type: "button", text: "Next →", disabled: true });
  async function load() {
    showError(box, null);
    const params = new URLSearchParams({ from: String(state.from), size: String(PAGE) });
    if (state.query) params.set("query", state.query);
    if (state.serviceType) params.set("service_type", state.serviceType);
    try {
      const answer = await call("GET", `/_connector?${params}`);
      const rows = answer.results.map((c) =>
        h(
          "tr",
          { "data-id": c.id },
          h("td", {}, h("a", { href: `#/connectors/${enc(c.id)}`, text: c.name || c.id }), h("div", { class: "muted mono", text: c.id })),
          h("td", { text: c.service_type ?? "—" }),
          h("td", { class: "mono", text: c.index_name ?? "—" }),
          h("td", {}, badge(c.status, STATUS_KIND[c.status] || "plain")),
          h("td", {}, c.last_sync_status ? badge(c.last_sync_status, SYNC_KIND[c.last_sync_status] || "plain") : "Never synced", " ", c.last_synced ? when(c.last_synced) : ""),
        ),
      );
      if (!rows.length) rows.push(h("tr", {}, h("td", { colSpan: 5, class: "empty", text: "No connectors match." })));
      count.textContent = answer.count ? `Connectors ${state.from + Math.min(1, answer.results.length)}–${state.from + answer.results.length} of ${answer.count}` : "No connectors";
      results.replaceChildren(
        h(
          "table",
          { class: "grid" },
          h("caption", { class: "sr-only", text: "Connectors" }),
          h("thead", {}, h("tr", {}, ["Name", "Service type", "Index", "Status", "Last sync"].map((t) => h("th", { scope: "col", text: t })))),
          h("tbody", {}, rows),
        ),
      );
      prev.disabled = state.from === 0;
      next.disabled = state.from + answer.results.length >= answer.count || state.from + PAGE >= 10_000;
    } catch (error) {
      showError(box, error);
    }
  }
  let timer;
  const restart = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      state.query = search.value.trim();
      state.serviceType = serviceType.value.trim();
      state.from = 0;
      load();
    }, 250);
  };
  search.addEventListener("input", restart);
  serviceType.addEventListener("input", restart);
  prev.addEventListener("click", () => {
    state.from = Math.max(0, state.from - PAGE);
    load();
  });
  next.addEventListener("click", () => {
    state.from += PAGE;
    load();
  });
  root.append(
    h("div", { class: "title-row" }, h("h1", { text: "Connectors" }), session.can.manageConnectors ? h("a", { class: "button primary", href: "#/connectors/new", text: "Create connector" }) : null),
    h("form", { class: "toolbar", role: "search", onsubmit: (e) => e.preventDefault() }, field("Search", search, null, "grow"), field("Service type", serviceType)),
    box,
    h("div", { class: "table-actions" }, count, h("div", { class: "actions" }, prev, next)),
    results,
  );
  await load();
}

async function createPage(root, session) {
  if (!session.can.manageConnectors) throw new Error("Creating connectors needs the manage_connector privilege.");
  const box = errorBox();
  const id = h("input", { autocomplete: "off", placeholder: "generated when empty" });
  const name = h("input", { autocomplete: "off" });
  const index = h("input", { autocomplete: "off", placeholder: "search-…" });
  const service = h("input", { autocomplete: "off", placeholder: "for example google_drive, sharepoint_online, dir" });
  const description = h("input", { autocomplete: "off" });
  const submit = h("button", { type: "submit", class: "primary", text: "Create connector" });
  root.append(
    h("h1", { text: "Create a connector" }),
    h(
      "form",
      {
        class: "card",
        onsubmit: (e) => {
          e.preventDefault();
          busy(submit, box, async () => {
            const body = { name: name.value || undefined, index_name: index.value || undefined, service_type: service.value || undefined, description: description.value || undefined };
            const answer = id.value.trim() ? await call("PUT", `/_connector/${enc(id.value.trim())}`, body) : await call("POST", "/_connector", body);
            location.hash = `#/connectors/${enc(answer.id ?? id.value.trim())}`;
          });
        },
      },
      field("Connector id", id),
      field("Name", name),
      field("Index name", index, "The content index the connector writes to."),
      field("Service type", service),
      field("Description", description),
      box,
      h("div", { class: "actions" }, submit, h("a", { class: "button", href: "#/connectors", text: "Cancel" })),
    ),
  );
  id.focus();
}

async function connectorPage(root, id, session) {
  const c = await call("GET", `/_connector/${enc(id)}`);
  const manage = session.can.manageConnectors;
  const reload = () => window.dispatchEvent(new HashChangeEvent("hashchange"));
  const remove = h("button", { type: "button", class: "danger", text: "Delete connector", hidden: !manage });
  const box = errorBox();
  remove.addEventListener("click", async () => {
    if (!(await confirm(`Delete connector "${c.name || c.id}"?`, "Its sync jobs are deleted with it; its index is kept.", "Delete"))) return;
    await busy(remove, box, async () => {
      await call("DELETE", `/_connector/${enc(c.id)}`);
      notify("Connector deleted.");
      location.hash = "#/connectors";
    });
  });
  root.append(
    h("div", { class: "title-row" }, h("h1", { text: c.name || c.id }), h("div", { class: "actions" }, remove)),
    h(
      "dl",
      { class: "summary" },
      [
        ["ID", c.id],
        ["Status", badge(c.status, STATUS_KIND[c.status] || "plain")],
        ["Service type", c.service_type ?? "—"],
        ["Index", c.index_name ?? "—"],
        ["Last sync", c.last_sync_status ? [badge(c.last_sync_status, SYNC_KIND[c.last_sync_status] || "plain"), " ", when(c.last_synced)] : "Never synced"],
        ["Last seen", when(c.last_seen)],
        ["Error", c.error ?? "—"],
      ].map(([k, v]) => [h("dt", { text: k }), h("dd", {}, v)]),
    ),
    box,
    configurationSection(c, manage, reload),
    apiKeySection(c, manage),
    schedulingSection(c, manage),
    filteringSection(c, manage, reload),
  );
  await syncSection(root, c, manage);
}

function section(title, id, ...children) {
  return h("section", { class: "card", "aria-labelledby": id }, h("h2", { id, text: title }), ...children);
}

function configurationSection(c, manage, reload) {
  const box = errorBox();
  const fields = h("div", { class: "config-fields" });
  const configuration = c.configuration || {};
  if (!Object.keys(configuration).length) {
    return section("Configuration", "config-title", h("p", { class: "muted", text: "No configuration schema is registered yet (the connector service registers it, or PUT _connector/{id}/_configuration with a configuration)." }));
  }
  const form = configurationForm(fields, configuration);
  const submit = h("button", { type: "submit", class: "primary", text: "Save configuration", disabled: !manage });
  const formEl = h(
    "form",
    {
      novalidate: true,
      onsubmit: (e) => {
        e.preventDefault();
        busy(submit, box, async () => {
          const values = form.values();
          await call("PUT", `/_connector/${enc(c.id)}/_configuration`, { values });
          notify("Configuration saved.");
          reload();
        });
      },
    },
    h("fieldset", { disabled: !manage }, fields),
    box,
    h("div", { class: "actions" }, submit),
  );
  return section("Configuration", "config-title", formEl);
}

function apiKeySection(c, manage) {
  const box = errorBox();
  const keyId = h("input", { autocomplete: "off", value: c.api_key_id ?? "", class: "code" });
  const secretId = h("input", { autocomplete: "off", value: c.api_key_secret_id ?? "", class: "code" });
  const submit = h("button", { type: "submit", text: "Save API key", disabled: !manage });
  return section(
    "API key",
    "apikey-title",
    h(
      "form",
      {
        onsubmit: (e) => {
          e.preventDefault();
          busy(submit, box, async () => {
            await call("PUT", `/_connector/${enc(c.id)}/_api_key_id`, { api_key_id: keyId.value.trim() || null, api_key_secret_id: secretId.value.trim() || null });
            notify("API key id saved.");
          });
        },
      },
      h("fieldset", { disabled: !manage }, field("API key id", keyId, "The id of the API key the connector service uses for this connector."), field("API key secret id", secretId, "The id of the connector secret that holds the key's encoded value (_connector/_secret).")),
      box,
      h("div", { class: "actions" }, submit),
    ),
  );
}

function schedulingSection(c, manage) {
  const box = errorBox();
  const rows = ["full", "incremental", "access_control"].map((kind) => {
    const current = c.scheduling?.[kind] || {};
    const enabled = h("input", { type: "checkbox", checked: !!current.enabled, id: `sched-${kind}-enabled` });
    const interval = h("input", { autocomplete: "off", value: current.interval ?? "", class: "code", id: `sched-${kind}-interval` });
    const label = kind.replace("_", " ");
    return {
      kind,
      enabled,
      interval,
      el: h("div", { class: "sched-row" }, h("label", { for: enabled.id }, enabled, ` ${label[0].toUpperCase()}${label.slice(1)} sync`), field(`${label[0].toUpperCase()}${label.slice(1)} sync schedule (cron)`, interval)),
    };
  });
  const submit = h("button", { type: "submit", text: "Save schedule", disabled: !manage });
  return section(
    "Scheduling",
    "sched-title",
    h("p", { class: "help", text: "Quartz cron expressions, for example 0 0 0 * * ? (every day at midnight). The server checks them." }),
    h(
      "form",
      {
        onsubmit: (e) => {
          e.preventDefault();
          busy(submit, box, async () => {
            const scheduling = {};
            for (const r of rows) scheduling[r.kind] = { enabled: r.enabled.checked, interval: r.interval.value.trim() };
            await call("PUT", `/_connector/${enc(c.id)}/_scheduling`, { scheduling });
            notify("Schedule saved.");
          });
        },
      },
      h("fieldset", { disabled: !manage }, rows.map((r) => r.el)),
      box,
      h("div", { class: "actions" }, submit),
    ),
  );
}

function filteringSection(c, manage, reload) {
  const box = errorBox();
  const filtering = (c.filtering || [])[0] || {};
  const draft = filtering.draft || {};
  const active = filtering.active || {};
  const rules = jsonEditor("Draft rules (JSON)", draft.rules ?? [], "Basic sync rules: id, field, policy (include/exclude), rule (equals, contains, regex, <, >, starts_with, ends_with), value, order.", 8);
  const snippet = jsonEditor("Draft advanced rules (JSON)", draft.advanced_snippet?.value ?? {}, "The service-specific advanced sync rules.", 5);
  const save = h("button", { type: "submit", text: "Save draft", disabled: !manage });
  const state = h("select", { disabled: !manage }, ["valid", "invalid", "edited"].map((s) => h("option", { value: s, text: s, selected: draft.validation?.state === s })));
  const setState = h("button", { type: "button", text: "Set validation state", disabled: !manage });
  const activate = h("button", { type: "button", class: "primary", text: "Activate draft", disabled: !manage });
  setState.addEventListener("click", () =>
    busy(setState, box, async () => {
      await call("PUT", `/_connector/${enc(c.id)}/_filtering/_validation`, { validation: { state: state.value, errors: [] } });
      notify(`Draft validation set to ${state.value}.`);
      reload();
    }),
  );
  activate.addEventListener("click", () =>
    busy(activate, box, async () => {
      await call("PUT", `/_connector/${enc(c.id)}/_filtering/_activate`);
      notify("Draft filtering activated.");
      reload();
    }),
  );
  const validation = draft.validation || {};
  return section(
    "Filtering (sync rules)",
    "filter-title",
    h(
      "div",
      { class: "columns" },
      h("div", {}, h("h3", { text: "Active rules" }), pre(active.rules ?? []), active.advanced_snippet?.value && Object.keys(active.advanced_snippet.value).length ? pre(active.advanced_snippet.value) : null),
      h(
        "div",
        {},
        h("h3", { text: "Draft" }),
        h("p", {}, "Validation: ", badge(validation.state ?? "—", validation.state === "valid" ? "good" : validation.state === "invalid" ? "bad" : "warn")),
        (validation.errors || []).length ? h("ul", { class: "field-error" }, validation.errors.map((e) => h("li", { text: `${(e.ids || []).join(", ")}: ${(e.messages || []).join("; ")}` }))) : null,
      ),
    ),
    h(
      "form",
      {
        onsubmit: (e) => {
          e.preventDefault();
          busy(save, box, async () => {
            await call("PUT", `/_connector/${enc(c.id)}/_filtering`, rawBody({ rules: { raw: rules.area.value }, advanced_snippet: { raw: `{"value":${snippet.area.value.trim() || "{}"}}` } }));
            notify("Draft filtering saved.");
            reload();
          });
        },
      },
      h("fieldset", { disabled: !manage }, rules.wrap, snippet.wrap),
      box,
      h("div", { class: "actions" }, save, field("Validation state", state, null, "inline-field"), setState, activate),
    ),
  );
}

async function syncSection(root, c, manage) {
  const box = errorBox();
  const table = h("div");
  const jobType = h("select", {}, ["full", "incremental", "access_control"].map((t) => h("option", { value: t, text: t.replace("_", " ") })));
  const start = h("button", { type: "button", class: "primary", text: "Start sync", disabled: !manage });
  const refresh = h("button", { type: "button", text: "Refresh" });
  async function load() {
    try {
      const answer = await call("GET", `/_connector/_sync_job?connector_id=${enc(c.id)}&size=20`);
      const rows = answer.results.map((job) => {
        const cancellable = ["pending", "in_progress", "suspended"].includes(job.status);
        const cancel = h("button", { type: "button", text: "Cancel", "aria-label": `Cancel sync job ${job.id}`, hidden: !manage || !cancellable });
        cancel.addEventListener("click", async () => {
          if (!(await confirm("Cancel this sync job?", "The connector service stops the job at its next check.", "Cancel job"))) return;
          await busy(cancel, box, async () => {
            await call("PUT", `/_connector/_sync_job/${enc(job.id)}/_cancel`);
            notify("Sync job canceled.");
            await load();
          });
        });
        return h(
          "tr",
          { "data-id": job.id },
          h("td", { class: "mono", text: job.id }),
          h("td", { text: job.job_type }),
          h("td", { text: job.trigger_method }),
          h("td", {}, badge(job.status, SYNC_KIND[job.status] || "plain")),
          h("td", { class: "num", text: job.indexed_document_count ?? 0 }),
          h("td", { class: "num", text: job.deleted_document_count ?? 0 }),
          h("td", {}, when(job.created_at)),
          h("td", {}, when(job.completed_at)),
          h("td", { text: job.error ?? "" }),
          h("td", {}, cancel),
        );
      });
      if (!rows.length) rows.push(h("tr", {}, h("td", { colSpan: 10, class: "empty", text: "No sync jobs yet." })));
      table.replaceChildren(
        h(
          "table",
          { class: "grid" },
          h("caption", { text: `Sync jobs (${answer.count})` }),
          h("thead", {}, h("tr", {}, ["Job", "Type", "Trigger", "Status", "Indexed", "Deleted", "Created", "Completed", "Error", ""].map((t) => h("th", { scope: "col", text: t })))),
          h("tbody", {}, rows),
        ),
      );
    } catch (error) {
      showError(box, error);
    }
  }
  start.addEventListener("click", () =>
    busy(start, box, async () => {
      const job = await call("POST", "/_connector/_sync_job", { id: c.id, job_type: jobType.value, trigger_method: "on_demand" });
      notify(`Sync job ${job.id} started.`);
      await load();
    }),
  );
  refresh.addEventListener("click", () => busy(refresh, box, load));
  root.append(section("Sync jobs", "sync-title", h("div", { class: "toolbar" }, field("Job type", jobType), start, refresh), box, table));
  await load();
}


