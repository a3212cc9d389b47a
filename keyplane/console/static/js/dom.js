// Small DOM helpers: elements are built with properties and text, never from HTML strings.

let uid = 0;

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key in el && !key.startsWith("aria") && !key.startsWith("data") && key !== "for" && key !== "list") el[key] = value;
    else el.setAttribute(key === "for" ? "for" : key, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function newId(prefix = "f") {
  uid += 1;
  return `${prefix}-${uid}`;
}

// A labelled control; ``help`` becomes its description.
export function field(labelText, control, help, extraClass) {
  if (!control.id) control.id = newId();
  const wrap = h("div", { class: "field" + (extraClass ? " " + extraClass : "") });
  wrap.append(h("label", { for: control.id, text: labelText }));
  if (help) {
    const helpId = control.id + "-help";
    control.setAttribute("aria-describedby", helpId);
    wrap.append(h("p", { class: "help", id: helpId, text: help }));
  }
  wrap.append(control);
  return wrap;
}

export function errorBox() {
  return h("div", { class: "error", role: "alert", hidden: true });
}

export function showError(box, error) {
  box.hidden = !error;
  box.textContent = error ? (error.message || String(error)) : "";
}

export function badge(text, kind) {
  return h("span", { class: `badge badge-${kind}`, text });
}

// Announced to screen readers and shown at the top of the page.
// A message set just before a navigation (a key invalidated, then the list) outlives it.
let notifiedAt = 0;

export function notify(text) {
  const status = document.getElementById("status");
  status.textContent = text;
  status.hidden = !text;
  notifiedAt = text ? Date.now() : 0;
}

export function clearStaleNotice() {
  if (Date.now() - notifiedAt > 1000) notify("");
}

export function pre(value) {
  return h("pre", { class: "json", tabIndex: 0, text: JSON.stringify(value ?? {}, null, 2) });
}

export function jsonEditor(labelText, value, help, rows = 10) {
  const area = h("textarea", { class: "code", rows, spellcheck: false, autocomplete: "off" });
  area.value = typeof value === "string" ? value : JSON.stringify(value ?? {}, null, 2);
  return { area, wrap: field(labelText, area, help) };
}

// A modal confirmation (the native dialog keeps keyboard focus inside and closes with Escape).
export function confirm(title, text, confirmLabel = "Confirm") {
  return new Promise((resolve) => {
    const dialog = h("dialog", { class: "confirm", "aria-labelledby": "confirm-title" });
    const ok = h("button", { type: "button", class: "danger", text: confirmLabel });
    const cancel = h("button", { type: "button", text: "Cancel" });
    dialog.append(h("h2", { id: "confirm-title", text: title }), h("p", { text }), h("div", { class: "actions" }, cancel, ok));
    const done = (answer) => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    ok.addEventListener("click", () => done(true));
    cancel.addEventListener("click", () => done(false));
    dialog.addEventListener("cancel", (e) => {
      e.preventDefault();
      done(false);
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

export async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // Without the clipboard API (plain http off localhost): copy through a selected text area.
    const area = h("textarea", { class: "offscreen" });
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  const old = button.textContent;
  button.textContent = "Copied";
  setTimeout(() => (button.textContent = old), 1500);
}

// Runs an async action with the button disabled, reporting failures in ``box``.
export async function busy(button, box, action) {
  button.disabled = true;
  if (box) showError(box, null);
  try {
    return await action();
  } catch (error) {
    if (box) showError(box, error);
    else notify(error.message);
    return undefined;
  } finally {
    button.disabled = false;
  }
}
