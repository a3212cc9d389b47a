// Roles: list, create and edit a role's descriptor as JSON (the server validates it), delete.

import { call, enc } from "./api.js";
import { badge, busy, confirm, errorBox, field, h, jsonEditor, notify } from "./dom.js";
import { list } from "./format.js";

export async function page(root, parts, session) {
  if (parts[0] === "new") return editPage(root, null, session);
  if (parts[0]) return editPage(root, parts[0], session);
  return listPage(root, session);
}

const reserved = (role) => !!(role.metadata && role.metadata._reserved);

async function listPage(root, session) {
  const roles = Object.entries(await call("GET", "/_security/role")).sort(([a], [b]) => a.localeCompare(b));
  const rows = roles.map(([name, role]) =>
    h(
      "tr",
      { "data-id": name },
      h("td", {}, h("a", { href: `#/roles/${enc(name)}`, text: name }), reserved(role) ? [" ", badge("reserved", "plain")] : null),
      h("td", { text: list(role.cluster) }),
      h("td", { text: list((role.indices || []).map((i) => `${list(i.names)}: ${list(i.privileges)}`)) }),
    ),
  );
  root.append(
    h("div", { class: "title-row" }, h("h1", { text: "Roles" }), session.can.manageSecurity ? h("a", { class: "button primary", href: "#/roles/new", text: "Create role" }) : null),
    h(
      "table",
      { class: "grid" },
      h("caption", { text: `Roles (${roles.length})` }),
      h("thead", {}, h("tr", {}, ["Name", "Cluster privileges", "Index privileges"].map((t) => h("th", { scope: "col", text: t })))),
      h("tbody", {}, rows),
    ),
  );
}

const TEMPLATE = { cluster: [], indices: [{ names: ["logs-*"], privileges: ["read"] }], applications: [], run_as: [], metadata: {} };

async function editPage(root, name, session) {
  const role = name ? (await call("GET", `/_security/role/${enc(name)}`))[name] : null;
  if (name && !role) throw new Error(`No role [${name}].`);
  const locked = !session.can.manageSecurity || (role && reserved(role));
  const box = errorBox();
  const nameInput = h("input", { autocomplete: "off", value: name ?? "", readOnly: !!name, required: true });
  const body = role ? { ...role } : TEMPLATE;
  delete body.transient_metadata;
  const editor = jsonEditor("Role descriptor (JSON)", body, "cluster, indices, applications, run_as, metadata, remote_indices… as PUT /_security/role/{name} takes them; the server validates it.", 18);
  const submit = h("button", { type: "submit", class: "primary", text: name ? "Save role" : "Create role", disabled: locked });
  const remove = h("button", { type: "button", class: "danger", text: "Delete role", hidden: !name || locked });
  remove.addEventListener("click", async () => {
    if (!(await confirm(`Delete role ${name}?`, "Users and API keys that use it lose what it grants.", "Delete"))) return;
    await busy(remove, box, async () => {
      await call("DELETE", `/_security/role/${enc(name)}`);
      notify(`Role ${name} deleted.`);
      location.hash = "#/roles";
    });
  });
  root.append(
    h("div", { class: "title-row" }, h("h1", { text: name ? `Role ${name}` : "Create a role" }), h("div", { class: "actions" }, remove)),
    role && reserved(role) ? h("p", {}, badge("reserved: built in, cannot be changed", "plain")) : "",
    h(
      "form",
      {
        class: "card",
        onsubmit: (e) => {
          e.preventDefault();
          busy(submit, box, async () => {
            const target = nameInput.value.trim();
            if (!target) throw new Error("A role needs a name.");
            const answer = await call("PUT", `/_security/role/${enc(target)}`, editor.area.value);
            notify(answer.role?.created ? `Role ${target} created.` : `Role ${target} saved.`);
            location.hash = `#/roles/${enc(target)}`;
          });
        },
      },
      h("fieldset", { disabled: locked }, field("Name", nameInput), editor.wrap),
      box,
      h("div", { class: "actions" }, submit, h("a", { class: "button", href: "#/roles", text: "Back to roles" })),
    ),
  );
}
