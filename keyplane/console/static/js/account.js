// Who is signed in, and a change of one's own password (any native user may change theirs).

import { basic, call, remember } from "./api.js";
import { busy, errorBox, field, h, notify, pre } from "./dom.js";

export async function account(root, _parts, session) {
  const me = session.user;
  root.append(
    h("h1", { text: "Account" }),
    h(
      "dl",
      { class: "summary" },
      h("dt", { text: "User" }),
      h("dd", { text: me.username }),
      h("dt", { text: "Realm" }),
      h("dd", { text: `${me.authentication_realm?.name ?? "—"} (${me.authentication_realm?.type ?? ""})` }),
      h("dt", { text: "Signed in with" }),
      h("dd", { text: me.authentication_type === "api_key" ? `API key ${me.api_key?.name ?? ""} (${me.api_key?.id ?? ""})` : me.authentication_type }),
      h("dt", { text: "Roles" }),
      h("dd", { text: (me.roles || []).join(", ") || "—" }),
    ),
    h("h2", { text: "What you may do" }),
    pre(session.can),
  );
  if (me.authentication_type === "realm" && me.authentication_realm?.type === "native") {
    const box = errorBox();
    const password = h("input", { type: "password", autocomplete: "new-password", minLength: 6 });
    const submit = h("button", { type: "submit", text: "Change my password" });
    root.append(
      h(
        "form",
        {
          class: "card",
          onsubmit: (e) => {
            e.preventDefault();
            busy(submit, box, async () => {
              await call("POST", "/_security/user/_password", { password: password.value });
              remember(basic(me.username, password.value)); // the old header no longer authenticates
              password.value = "";
              notify("Password changed.");
            });
          },
        },
        h("h2", { text: "Change password" }),
        field("New password", password, "At least 6 characters."),
        box,
        h("div", { class: "actions" }, submit),
      ),
    );
  }
}
