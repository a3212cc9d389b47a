// The console's shell: sign-in state, what the user may do (``_has_privileges``), and hash routing.

import { authorization, call, forget } from "./api.js";
import { clearStaleNotice, h, notify } from "./dom.js";
import { signIn } from "./signin.js";
import * as keys from "./keys.js";
import * as health from "./key_health.js";
import * as connectors from "./connectors.js";
import * as users from "./users.js";
import * as roles from "./roles.js";
import { account } from "./account.js";

const CLUSTER = [
  "manage_security",
  "read_security",
  "manage_api_key",
  "manage_own_api_key",
  "manage_connector",
  "monitor_connector",
];

export const session = { user: null, can: {} };

async function loadSession() {
  const [me, privileges] = await Promise.all([
    call("GET", "/_security/_authenticate"),
    call("POST", "/_security/user/_has_privileges", { cluster: CLUSTER }),
  ]);
  const c = privileges.cluster;
  session.user = me;
  session.can = {
    ownKeys: c.manage_own_api_key || c.manage_api_key || c.manage_security,
    allKeys: c.manage_api_key || c.manage_security,
    crossClusterKeys: c.manage_security, // creating and updating cross-cluster keys needs manage_security
    viewConnectors: c.monitor_connector || c.manage_connector,
    manageConnectors: c.manage_connector,
    viewSecurity: c.read_security || c.manage_security,
    manageSecurity: c.manage_security,
  };
}

const SECTIONS = [
  ["keys", "API keys", () => session.can.ownKeys],
  ["key-health", "Expiring & unused", () => session.can.ownKeys],
  ["connectors", "Connectors", () => session.can.viewConnectors],
  ["users", "Users", () => session.can.viewSecurity],
  ["roles", "Roles", () => session.can.viewSecurity],
  ["account", "Account", () => true],
];

function renderNav(current) {
  const nav = document.getElementById("nav");
  nav.replaceChildren(
    h(
      "ul",
      {},
      SECTIONS.filter(([, , allowed]) => allowed()).map(([path, label]) =>
        h("li", {}, h("a", { href: `#/${path}`, "aria-current": path === current ? "page" : null, text: label })),
      ),
    ),
  );
  nav.hidden = false;
  const who = document.getElementById("who");
  const kind = session.user.authentication_type === "api_key" ? "API key" : session.user.authentication_realm?.name;
  who.replaceChildren(
    h("span", { class: "user", text: `${session.user.username}` }),
    h("span", { class: "realm", text: kind ? ` (${kind})` : "" }),
    h("button", { type: "button", class: "link", onclick: signOut, text: "Sign out" }),
  );
}

export function signOut() {
  forget();
  session.user = null;
  session.can = {};
  document.getElementById("nav").hidden = true;
  document.getElementById("who").replaceChildren();
  notify("");
  history.replaceState(null, "", location.pathname); // no hashchange: one render of the sign-in form
  route();
}

const PAGES = {
  keys: keys.page,
  "key-health": health.page,
  connectors: connectors.page,
  users: users.page,
  roles: roles.page,
  account,
};

let generation = 0;

export async function route() {
  const mine = ++generation;
  const main = document.getElementById("main");
  if (!authorization()) {
    main.replaceChildren(signIn(async () => {
      await loadSession();
      location.hash = session.can.ownKeys ? "#/keys" : "#/account";
      route();
    }));
    return;
  }
  if (!session.user) {
    try {
      await loadSession();
    } catch (error) {
      forget();
      notify(`Signed out: ${error.message}`);
      return route();
    }
  }
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  let section = parts[0] || (session.can.ownKeys ? "keys" : "account");
  if (!PAGES[section] || !SECTIONS.find(([p, , allowed]) => p === section && allowed())) section = "account";
  renderNav(section);
  const content = h("div", { class: "page" });
  main.replaceChildren(content);
  try {
    await PAGES[section](content, parts.slice(1), session);
  } catch (error) {
    if (mine === generation) content.append(h("div", { class: "error", role: "alert", text: error.message }));
  }
  const heading = content.querySelector("h1");
  if (heading) document.title = `${heading.textContent} · Keyplane console`;
}

window.addEventListener("hashchange", () => {
  clearStaleNotice();
  route().then(() => document.getElementById("main").focus({ preventScroll: true }));
});
route();
