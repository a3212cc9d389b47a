// API keys: the list (search, filters, sort, paging), create (REST and cross-cluster), view, update
// and invalidate. Every call is Keyplane's public API with the signed-in user's credentials; a user
// with manage_own_api_key only is served their own keys by the server itself.

import { call, enc, rawBody } from "./api.js";
import { badge, busy, confirm, copyText, errorBox, field, h, jsonEditor, notify, pre, showError } from "./dom.js";
import { date, splitList } from "./format.js";
import { expiry, keyTable, keyType, lastUsed, statusBadges } from "./key_table.js";

export async function page(root, parts, session) {
  const [first] = parts;
  if (first === "new") return createPage(root, session, false);
  if (first === "new-cross-cluster") return createPage(root, session, true);
  if (first) return viewPage(root, first, session);
  return listPage(root, session);
}

// -- the list ---------------------------------------------------------------------------------------

const SORTS = {
  "creation:desc": "Newest first",
  "creation:asc": "Oldest first",
  "name:asc": "Name (A–Z)",
  "name:desc": "Name (Z–A)",
  "expiration:asc": "Expiring soonest",
  "last_used:desc": "Recently used",
  "last_used:asc": "Least recently used",
};

// The query shapes were chosen by measuring them over 1,000,000 keys: a name prefix, an owner or an
// id are served by indexes (a few ms), where a "*text*" wildcard reads every key (seconds). A
// wildcard runs only when the user types * or ? themselves.
export function buildQuery(state) {
  const filter = [];
  const mustNot = [];
  const bool = {};
  const text = state.text.trim();
  if (text) {
    const byName = /[*?]/.test(text) ? { wildcard: { name: { value: text } } } : { prefix: { name: text } };
    filter.push({ bool: { should: [byName, { term: { username: text } }, { ids: { values: [text] } }], minimum_should_match: 1 } });
  }
  if (state.type === "rest" || state.type === "cross_cluster") filter.push({ term: { type: state.type } });
  else if (state.type === "managed") filter.push({ term: { "metadata.managed": true } });
  if (state.owner.trim()) filter.push({ term: { username: state.owner.trim() } });
  if (state.status === "active") {
    filter.push({ term: { invalidated: false } });
    bool.should = [{ range: { expiration: { gt: "now" } } }, { bool: { must_not: { exists: { field: "expiration" } } } }];
    bool.minimum_should_match = 1;
  } else if (state.status === "expired") {
    filter.push({ term: { invalidated: false } }, { range: { expiration: { lte: "now" } } });
  } else if (state.status === "invalidated") filter.push({ term: { invalidated: true } });
  if (!filter.length && !mustNot.length && !bool.should) return { match_all: {} };
  if (filter.length) bool.filter = filter;
  if (mustNot.length) bool.must_not = mustNot;
  return { bool };
}

function sortClause(value) {
  const [fieldName, order] = value.split(":");
  // _doc breaks ties, so that search_after never skips or repeats a key between pages.
  return [{ [fieldName]: { order } }, "_doc"];
}

async function listPage(root, session) {
  const state = { text: "", type: "", owner: "", status: "", sort: "creation:desc", size: 25, pages: [undefined], raw: null };
  const selected = new Set();
  const box = errorBox();
  const results = h("div", { class: "results", "aria-live": "polite" });
  const summary = h("p", { class: "muted", id: "key-count" });

  const search = h("input", { type: "search", placeholder: "Name, owner or id", autocomplete: "off" });
  const type = h("select", {}, [["", "Any type"], ["rest", "REST"], ["cross_cluster", "Cross-cluster"], ["managed", "Managed"]].map(([v, t]) => h("option", { value: v, text: t })));
  const owner = h("input", { placeholder: "username", autocomplete: "off", disabled: !session.can.allKeys });
  const status = h("select", {}, [["", "Any status"], ["active", "Active"], ["expired", "Expired"], ["invalidated", "Invalidated"]].map(([v, t]) => h("option", { value: v, text: t })));
  const sort = h("select", {}, Object.entries(SORTS).map(([v, t]) => h("option", { value: v, text: t })));
  const size = h("select", {}, [10, 25, 50, 100].map((n) => h("option", { value: n, text: `${n} per page`, selected: n === 25 })));
  const dsl = jsonEditor("Query DSL (edit and run to search with any query)", buildQuery(state), "Sent as the query of POST /_security/_query/api_key; the server reports errors.", 8);
  const runDsl = h("button", { type: "button", text: "Run query" });
  const prev = h("button", { type: "button", text: "← Previous", disabled: true });
  const next = h("button", { type: "button", text: "Next →", disabled: true });
  const invalidate = h("button", { type: "button", class: "danger", text: "Invalidate selected", disabled: true });

  const refreshSelection = () => {
    invalidate.disabled = selected.size === 0;
    invalidate.textContent = selected.size ? `Invalidate selected (${selected.size})` : "Invalidate selected";
  };

  async function load() {
    showError(box, null);
    const query = state.raw ?? buildQuery(state);
    if (!state.raw) dsl.area.value = JSON.stringify(query, null, 2);
    const after = state.pages[state.pages.length - 1];
    const body = rawBody({
      query: state.raw ? { raw: state.raw } : query,
      sort: sortClause(state.sort),
      size: state.size,
      search_after: after,
    });
    try {
      const answer = await call("POST", "/_security/_query/api_key", body);
      const start = (state.pages.length - 1) * state.size;
      summary.textContent = answer.count
        ? `Keys ${start + 1}–${start + answer.count} of ${answer.total}${session.can.allKeys ? "" : " (your own keys)"}`
        : `No keys (${answer.total} in all)`;
      results.replaceChildren(keyTable(answer.api_keys, { selected, onSelect: refreshSelection, caption: "API keys" }));
      const last = answer.api_keys[answer.api_keys.length - 1];
      next.disabled = !last || start + answer.count >= answer.total;
      next.onclick = () => {
        state.pages.push(last._sort);
        load();
      };
      prev.disabled = state.pages.length <= 1;
    } catch (error) {
      showError(box, error);
      results.replaceChildren();
      summary.textContent = "";
    }
  }

  const restart = () => {
    state.pages = [undefined];
    state.raw = null;
    load();
  };
  let timer;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      state.text = search.value;
      restart();
    }, 250);
  });
  owner.addEventListener("change", () => {
    state.owner = owner.value;
    restart();
  });
  for (const [el, key] of [[type, "type"], [status, "status"], [sort, "sort"]]) {
    el.addEventListener("change", () => {
      state[key] = el.value;
      restart();
    });
  }
  size.addEventListener("change", () => {
    state.size = Number(size.value);
    restart();
  });
  prev.addEventListener("click", () => {
    state.pages.pop();
    load();
  });
  runDsl.addEventListener("click", () => {
    state.pages = [undefined];
    state.raw = dsl.area.value;
    load();
  });
  invalidate.addEventListener("click", async () => {
    const ids = [...selected];
    if (!(await confirm(`Invalidate ${ids.length} API key${ids.length === 1 ? "" : "s"}?`, "Requests made with these keys will be refused from now on. This cannot be undone.", "Invalidate"))) return;
    await busy(invalidate, box, async () => {
      const answer = await invalidateKeys(ids, session);
      selected.clear();
      refreshSelection();
      notify(invalidationSummary(answer));
      await load();
    });
    refreshSelection(); // busy() re-enabled the button; with nothing selected it stays off
  });

  root.append(
    h(
      "div",
      { class: "title-row" },
      h("h1", { text: "API keys" }),
      h(
        "div",
        { class: "actions" },
        h("a", { class: "button primary", href: "#/keys/new", text: "Create API key" }),
        session.can.crossClusterKeys ? h("a", { class: "button", href: "#/keys/new-cross-cluster", text: "Create cross-cluster key" }) : null,
      ),
    ),
    h(
      "form",
      { class: "toolbar", role: "search", onsubmit: (e) => e.preventDefault() },
      field("Search", search, null, "grow"),
      field("Type", type),
      field("Owner", owner),
      field("Status", status),
      field("Sort", sort),
      field("Page size", size),
    ),
    h("details", { class: "dsl" }, h("summary", { text: "Query DSL" }), dsl.wrap, runDsl),
    box,
    h("div", { class: "table-actions" }, summary, h("div", { class: "actions" }, invalidate, prev, next)),
    results,
  );
  await load();
}

async function invalidateKeys(ids, session) {
  // With manage_own_api_key only, Elasticsearch wants owner=true beside the ids.
  return call("DELETE", "/_security/api_key", session.can.allKeys ? { ids } : { ids, owner: true });
}

function invalidationSummary(answer) {
  const done = answer.invalidated_api_keys?.length ?? 0;
  const before = answer.previously_invalidated_api_keys?.length ?? 0;
  let text = `Invalidated ${done} key${done === 1 ? "" : "s"}`;
  if (before) text += `, ${before} already invalidated`;
  if (answer.error_count) text += `, ${answer.error_count} error(s): ${(answer.error_details || []).map((e) => e.reason).join("; ")}`;
  return text + ".";
}

// -- create -----------------------------------------------------------------------------------------

// Cross-cluster access: index names for search and replication, or the whole access object as JSON
// (for query, field_security and allow_restricted_indices, as in the docs' examples).
function accessFields(access = {}) {
  const names = (kind) => (access[kind] || []).flatMap((entry) => entry.names || []).join(", ");
  const searchNames = h("input", { autocomplete: "off", value: names("search"), class: "code" });
  const replicationNames = h("input", { autocomplete: "off", value: names("replication"), class: "code" });
  const fromNames = () => {
    const out = {};
    const s = splitList(searchNames.value);
    const r = splitList(replicationNames.value);
    if (s.length) out.search = [{ names: s }];
    if (r.length) out.replication = [{ names: r }];
    return out;
  };
  const asJson = h("input", { type: "checkbox" });
  const editor = jsonEditor("Access (JSON)", access, "search and replication entries as the cross-cluster API key APIs take them.", 8);
  const simple = h(
    "div",
    {},
    field("Search: index names or patterns", searchNames, "Comma-separated, for example logs-*, metrics-*."),
    field("Replication: index names or patterns", replicationNames, "Comma-separated indices a remote cluster may replicate (cross-cluster replication)."),
  );
  editor.wrap.hidden = true;
  asJson.addEventListener("change", () => {
    if (asJson.checked) editor.area.value = JSON.stringify({ ...access, ...fromNames() }, null, 2);
    simple.hidden = asJson.checked;
    editor.wrap.hidden = !asJson.checked;
  });
  const wrap = h("fieldset", {}, h("legend", { text: "Access" }), simple, h("label", { class: "check" }, asJson, " Edit access as JSON (queries, field security)"), editor.wrap);
  // The JSON text goes to the server as written, so its parser reports mistakes.
  const value = () => (asJson.checked ? { raw: editor.area.value } : fromNames());
  return { wrap, value };
}

async function createPage(root, session, crossCluster) {
  if (crossCluster && !session.can.crossClusterKeys) throw new Error("Creating cross-cluster API keys needs the manage_security privilege.");
  const box = errorBox();
  const name = h("input", { required: true, autocomplete: "off", "aria-required": "true" });
  const expiration = h("input", { autocomplete: "off", placeholder: "for example 30d, 12h; empty: never" });
  const roles = jsonEditor("Role descriptors (JSON)", {}, "Limits the key to these roles, within your own privileges. {} gives the key a snapshot of your privileges.", 12);
  const metadata = jsonEditor("Metadata (JSON)", {}, "Any JSON object; keys starting with _ are reserved.", 5);
  const access = accessFields();
  const submit = h("button", { type: "submit", class: "primary", text: crossCluster ? "Create cross-cluster key" : "Create API key" });
  const secret = h("div");
  const form = h(
    "form",
    {
      class: "card",
      onsubmit: (event) => {
        event.preventDefault();
        busy(submit, box, async () => {
          const members = { name: name.value, expiration: expiration.value.trim() || undefined, metadata: { raw: metadata.area.value } };
          let created;
          if (crossCluster) {
            created = await call("POST", "/_security/cross_cluster/api_key", rawBody({ ...members, access: access.value() }));
          } else {
            created = await call("POST", "/_security/api_key", rawBody({ ...members, role_descriptors: { raw: roles.area.value } }));
          }
          form.hidden = true;
          secret.replaceChildren(secretPanel(created));
          secret.querySelector("h2").focus();
        });
      },
    },
    field("Name", name),
    field("Expiration", expiration, "A time value: 90d, 24h, 30m. Leave empty for a key that never expires."),
    crossCluster ? access.wrap : roles.wrap,
    metadata.wrap,
    box,
    h("div", { class: "actions" }, submit, h("a", { class: "button", href: "#/keys", text: "Cancel" })),
  );
  root.append(h("h1", { text: crossCluster ? "Create a cross-cluster API key" : "Create an API key" }), form, secret);
  name.focus();
}

// The secret, shown once: it is kept nowhere but this panel, which goes when the page changes.
function secretPanel(created) {
  const idKey = `${created.id}:${created.api_key}`;
  const curl = `curl -H "Authorization: ApiKey ${created.encoded}" ${location.origin}/_security/_authenticate`;
  const row = (label, value, cls) => {
    const input = h("input", { readOnly: true, value, class: "code " + (cls || ""), spellcheck: false });
    const copy = h("button", { type: "button", text: "Copy", "aria-label": `Copy ${label}`, onclick: () => copyText(value, copy) });
    return h("div", { class: "field copy-row" }, h("label", { for: (input.id = `secret-${cls}`), text: label }), h("div", { class: "inline" }, input, copy));
  };
  return h(
    "section",
    { class: "card secret", "aria-labelledby": "secret-title" },
    h("h2", { id: "secret-title", tabIndex: -1, text: `API key "${created.name}" created` }),
    h("p", { class: "warning", text: "Copy the key now: its secret is not shown again. Anyone with it can act as this key." }),
    row("Encoded (for the Authorization: ApiKey header)", created.encoded, "encoded"),
    row("id:api_key", idKey, "idkey"),
    row("curl", curl, "curl"),
    h("div", { class: "actions" }, h("a", { class: "button primary", href: `#/keys/${enc(created.id)}`, text: "Done, view the key" })),
  );
}

// -- view, update, invalidate -------------------------------------------------------------------------

async function getKey(id, session) {
  const base = `/_security/api_key?id=${enc(id)}${session.can.allKeys ? "" : "&owner=true"}`;
  try {
    return (await call("GET", base + "&with_limited_by=true")).api_keys[0];
  } catch (error) {
    if (error.status !== 403) throw error;
    return (await call("GET", base)).api_keys[0]; // limited-by needs manage_api_key
  }
}

// ``outcome``: the answer of an update just made, shown above the refreshed key.
async function viewPage(root, id, session, outcome) {
  const key = await getKey(id, session);
  if (!key) throw new Error(`No API key [${id}].`);
  const crossCluster = key.type === "cross_cluster";
  const usable = !key.invalidated && !(key.expiration && key.expiration <= Date.now());
  const box = errorBox();
  const invalidate = h("button", { type: "button", class: "danger", text: "Invalidate", disabled: key.invalidated });
  invalidate.addEventListener("click", async () => {
    if (!(await confirm(`Invalidate API key "${key.name}"?`, "Requests made with this key will be refused from now on. This cannot be undone.", "Invalidate"))) return;
    await busy(invalidate, box, async () => {
      notify(invalidationSummary(await invalidateKeys([key.id], session)));
      location.hash = "#/keys";
    });
  });
  root.append(
    h("div", { class: "title-row" }, h("h1", { text: key.name || key.id }), h("div", { class: "actions" }, invalidate)),
    h("p", {}, statusBadges(key), " ", badge(keyType(key), "info")),
    h(
      "dl",
      { class: "summary" },
      [
        ["ID", key.id],
        ["Owner", `${key.username} (${key.realm})`],
        ["Created", date(key.creation)],
        ["Expiry", expiry(key)],
        ["Last used", key.last_used ? `${lastUsed(key)} (${date(key.last_used)})` : "Never"],
        ["Invalidated", key.invalidated ? date(key.invalidation) : "No"],
      ].map(([k, v]) => [h("dt", { text: k }), h("dd", {}, v)]),
    ),
    box,
  );
  const sections = h("div", { class: "columns" });
  if (crossCluster) sections.append(h("section", {}, h("h2", { text: "Access" }), pre(key.access)));
  else sections.append(h("section", {}, h("h2", { text: "Role descriptors" }), pre(key.role_descriptors)));
  if (key.limited_by) sections.append(h("section", {}, h("h2", { text: "Limited by (owner's roles)" }), pre(key.limited_by)));
  sections.append(h("section", {}, h("h2", { text: "Metadata" }), pre(key.metadata)));
  root.append(sections);
  // Elasticsearch lets only the key's owner update it, and not through an API key credential.
  const me = session.user;
  const owner = key.username === me.username && me.authentication_type !== "api_key";
  if (usable && owner && (!crossCluster || session.can.crossClusterKeys)) {
    const rerender = async (answer) => {
      root.replaceChildren();
      await viewPage(root, id, session, answer);
      root.querySelector("p.result")?.focus();
    };
    root.append(updateForm(key, crossCluster, outcome, rerender));
  }
  else if (usable && !owner) root.append(h("p", { class: "muted", text: "Only the key's owner, signed in with a password, can update it." }));
}

function updateForm(key, crossCluster, outcome, onUpdated) {
  const box = errorBox();
  const result = h("p", { class: "result", role: "status", tabIndex: -1 });
  if (outcome) {
    result.textContent = outcome.updated ? "updated: true — the key was changed." : "updated: false — nothing changed (the request matched the key).";
    result.dataset.updated = String(outcome.updated);
  }
  // transient_metadata is the server's own annotation, not something an update sets.
  const descriptors = Object.fromEntries(
    Object.entries(key.role_descriptors ?? {}).map(([name, d]) => {
      const { transient_metadata: _ignored, ...rest } = d;
      return [name, rest];
    }),
  );
  const roles = jsonEditor("Role descriptors (JSON)", descriptors, "Replaces the key's role descriptors. {} removes them: the key then has its owner's privileges.", 12);
  const metadata = jsonEditor("Metadata (JSON)", key.metadata ?? {}, "Replaces the key's metadata.", 5);
  const expiration = h("input", { autocomplete: "off", placeholder: "for example 30d; empty: unchanged" });
  const access = accessFields(key.access);
  const submit = h("button", { type: "submit", class: "primary", text: "Update key" });
  return h(
    "form",
    {
      class: "card",
      "aria-labelledby": "update-title",
      onsubmit: (event) => {
        event.preventDefault();
        busy(submit, box, async () => {
          result.textContent = "";
          const members = { metadata: { raw: metadata.area.value }, expiration: expiration.value.trim() || undefined };
          const answer = crossCluster
            ? await call("PUT", `/_security/cross_cluster/api_key/${enc(key.id)}`, rawBody({ access: access.value(), ...members }))
            : await call("PUT", `/_security/api_key/${enc(key.id)}`, rawBody({ role_descriptors: { raw: roles.area.value }, ...members }));
          await onUpdated(answer); // the key as it now is, with the outcome
        });
      },
    },
    h("h2", { id: "update-title", text: crossCluster ? "Update cross-cluster key" : "Update key" }),
    crossCluster ? access.wrap : roles.wrap,
    metadata.wrap,
    field("New expiration", expiration, "Counted from now, for example 30d. Leave empty to keep the current expiry."),
    box,
    h("div", { class: "actions" }, submit),
    result,
  );
}

