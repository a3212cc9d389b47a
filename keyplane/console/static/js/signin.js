// Sign in with a username and password or with an encoded API key. The header is checked with
// ``_authenticate`` before it is kept (in sessionStorage, for this tab only).

import { apiKey, basic, call, remember } from "./api.js";
import { busy, errorBox, field, h } from "./dom.js";

export function signIn(onDone) {
  const box = errorBox();
  const username = h("input", { name: "username", autocomplete: "username", required: true });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const key = h("input", { name: "api_key", type: "password", autocomplete: "off", required: true, class: "code" });
  const withPassword = h("input", { type: "radio", name: "method", value: "password", checked: true, id: "m-password" });
  const withKey = h("input", { type: "radio", name: "method", value: "api_key", id: "m-key" });
  const passwordFields = h("div", {}, field("Username", username), field("Password", password));
  const keyFields = h("div", { hidden: true }, field("API key (encoded)", key, "The encoded value returned when the key was created."));
  const toggle = () => {
    passwordFields.hidden = !withPassword.checked;
    keyFields.hidden = withPassword.checked;
  };
  withPassword.addEventListener("change", toggle);
  withKey.addEventListener("change", toggle);
  const submit = h("button", { type: "submit", class: "primary", text: "Sign in" });
  const form = h(
    "form",
    {
      class: "card narrow",
      novalidate: true,
      onsubmit: (event) => {
        event.preventDefault();
        busy(submit, box, async () => {
          const header = withPassword.checked ? basic(username.value, password.value) : apiKey(key.value);
          if (withPassword.checked ? !username.value : !key.value.trim()) throw new Error("Enter your credentials.");
          await call("GET", "/_security/_authenticate", undefined, header);
          remember(header);
          password.value = "";
          key.value = "";
          await onDone();
        });
      },
    },
    h("h1", { text: "Sign in to Keyplane" }),
    h(
      "fieldset",
      { class: "choice" },
      h("legend", { text: "Sign in with" }),
      h("label", { for: "m-password" }, withPassword, " Username and password"),
      h("label", { for: "m-key" }, withKey, " API key"),
    ),
    passwordFields,
    keyFields,
    box,
    h("div", { class: "actions" }, submit),
    h("p", { class: "help", text: "Your credentials stay in this browser tab and are forgotten when you close it or sign out." }),
  );
  queueMicrotask(() => username.focus());
  return form;
}
