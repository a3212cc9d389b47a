// Users: list, create, edit (roles, names, metadata), enable and disable, change password, delete.

import { call, enc, rawBody } from "./api.js";
import { badge, busy, confirm, errorBox, field, h, jsonEditor, notify } from "./dom.js";
import { list, splitList } from "./format.js";

export async function page(root, parts, session) {
  if (parts[0] === "new") return editPage(root, null, session);
  if (parts[0]) return editPage(root, parts[0], session);
  return listPage(root, session);
}

function reserved(user) {
  return !!(user.metadata && user.metadata._reserved);
}

async function listPage(root, session) {
  const users = Object.values(await call("GET", "/_security/user"));
  users.sort((a, b) => a.username.localeCompare(b.username));
  const box = errorBox();
  const rows = users.map((u) => {
    const toggle = h("button", { type: "button", text: u.enabled ? "Disable" : "Enable", hidden: !session.can.manageSecurity || u.username === session.user.username, "aria-label": `${u.enabled ? "Disable" : "Enable"} ${u.username}` });
    toggle.addEventListener("click", () =>
      busy(toggle, box, async () => {
        await call("PUT", `/_security/user/${enc(u.username)}/${u.enabled ? "_disable" : "_enable"}`);
        notify(`${u.username} ${u.enabled ? "disabled" : "enabled"}.`);
        window.dispatchEvent(new HashChangeEvent("hashchange"));
      }),
    );
    return h(
      "tr",
      { "data-id": u.username },
      h("td", {}, h("a", { href: `#/users/${enc(u.username)}`, text: u.username }), reserved(u) ? [" ", badge("reserved", "plain")] : null),
      h("td", { text: u.full_name ?? "—" }),
      h("td", { text: u.email ?? "—" }),
      h("td", { text: list(u.roles) }),
      h("td", {}, u.enabled ? badge("Enabled", "good") : badge("Disabled", "bad")),
      h("td", {}, toggle),
    );
  });
  root.append(
    h("div", { class: "title-row" }, h("h1", { text: "Users" }), session.can.manageSecurity ? h("a", { class: "button primary", href: "#/users/new", text: "Create user" }) : null),
    box,
    h(
      "table",
      { class: "grid" },
      h("caption", { text: `Users (${users.length})` }),
      h("thead", {}, h("tr", {}, ["Username", "Full name", "Email", "Roles", "Status", ""].map((t) => h("th", { scope: "col", text: t })))),
      h("tbody", {}, rows),
    ),
  );
}

async function editPage(root, username, session) {
  const user = username ? (await call("GET", `/_security/user/${enc(username)}`))[username] : null;
  if (username && !user) throw new Error(`No user [${username}].`);
  const manage = session.can.manageSecurity;
  const box = errorBox();
  const name = h("input", { autocomplete: "off", value: username ?? "", readOnly: !!username, required: true });
  const password = h("input", { type: "password", autocomplete: "new-password" });
  const fullName = h("input", { autocomplete: "off", value: user?.full_name ?? "" });
  const email = h("input", { type: "email", autocomplete: "off", value: user?.email ?? "" });
  const roles = h("input", { autocomplete: "off", value: (user?.roles ?? []).join(", ") });
  const metadata = jsonEditor("Metadata (JSON)", user?.metadata ?? {}, null, 4);
  const submit = h("button", { type: "submit", class: "primary", text: username ? "Save user" : "Create user", disabled: !manage || (user && reserved(user)) });
  root.append(
    h("h1", { text: username ? `User ${username}` : "Create a user" }),
    user ? h("p", {}, user.enabled ? badge("Enabled", "good") : badge("Disabled", "bad"), user && reserved(user) ? [" ", badge("reserved: only its password and status can change", "plain")] : null) : "",
    h(
      "form",
      {
        class: "card",
        onsubmit: (e) => {
          e.preventDefault();
          busy(submit, box, async () => {
            const target = name.value.trim();
            const body = rawBody({
              password: username ? undefined : password.value,
              full_name: fullName.value || null,
              email: email.value || null,
              roles: splitList(roles.value),
              metadata: { raw: metadata.area.value },
            });
            await call("PUT", `/_security/user/${enc(target)}`, body);
            notify(username ? "User saved." : `User ${target} created.`);
            location.hash = `#/users/${enc(target)}`;
          });
        },
      },
      h(
        "fieldset",
        { disabled: !manage || (user && reserved(user)) },
        field("Username", name),
        username ? null : field("Password", password, "At least 6 characters."),
        field("Full name", fullName),
        field("Email", email),
        field("Roles", roles, "Comma-separated role names."),
        metadata.wrap,
      ),
      box,
      h("div", { class: "actions" }, submit, h("a", { class: "button", href: "#/users", text: "Back to users" })),
    ),
  );
  if (user && manage) root.append(passwordForm(username), username === session.user.username ? "" : stateActions(user));
}

function passwordForm(username) {
  const box = errorBox();
  const password = h("input", { type: "password", autocomplete: "new-password" });
  const submit = h("button", { type: "submit", text: "Change password" });
  return h(
    "form",
    {
      class: "card",
      "aria-labelledby": "pw-title",
      onsubmit: (e) => {
        e.preventDefault();
        busy(submit, box, async () => {
          await call("POST", `/_security/user/${enc(username)}/_password`, { password: password.value });
          password.value = "";
          notify(`Password of ${username} changed.`);
        });
      },
    },
    h("h2", { id: "pw-title", text: "Change password" }),
    field("New password", password),
    box,
    h("div", { class: "actions" }, submit),
  );
}

function stateActions(user) {
  const box = errorBox();
  const toggle = h("button", { type: "button", text: user.enabled ? "Disable user" : "Enable user" });
  const remove = h("button", { type: "button", class: "danger", text: "Delete user", hidden: reserved(user) });
  toggle.addEventListener("click", () =>
    busy(toggle, box, async () => {
      await call("PUT", `/_security/user/${enc(user.username)}/${user.enabled ? "_disable" : "_enable"}`);
      notify(`${user.username} ${user.enabled ? "disabled" : "enabled"}.`);
      window.dispatchEvent(new HashChangeEvent("hashchange"));
    }),
  );
  remove.addEventListener("click", async () => {
    if (!(await confirm(`Delete user ${user.username}?`, "The user can no longer sign in. Its API keys stay until invalidated.", "Delete"))) return;
    await busy(remove, box, async () => {
      await call("DELETE", `/_security/user/${enc(user.username)}`);
      notify(`User ${user.username} deleted.`);
      location.hash = "#/users";
    });
  });
  return h("section", { class: "card", "aria-labelledby": "state-title" }, h("h2", { id: "state-title", text: "Status" }), box, h("div", { class: "actions" }, toggle, remove));
}
