// A connector's configuration form, generated from its registered schema: each field's display
// (textbox, textarea, numeric, toggle, dropdown), type, required flag, sensitivity (masked),
// depends_on (shown only when its conditions hold), validations and display order.

import { field, h, newId } from "./dom.js";

export function orderedFields(configuration) {
  return Object.entries(configuration || {}).sort(([ka, a], [kb, b]) => (a.order ?? 1e9) - (b.order ?? 1e9) || ka.localeCompare(kb));
}

function control(key, spec) {
  const id = newId(`cfg-${key}`);
  const value = spec.value ?? spec.default_value ?? "";
  const display = spec.display || (spec.type === "bool" ? "toggle" : spec.type === "int" ? "numeric" : "textbox");
  let el;
  if (display === "toggle") {
    el = h("input", { type: "checkbox", id, checked: value === true || value === "true" });
  } else if (display === "dropdown") {
    el = h("select", { id }, h("option", { value: "", text: "— choose —" }), (spec.options || []).map((o) => h("option", { value: String(o.value), text: o.label, selected: String(o.value) === String(value) })));
  } else if (display === "textarea") {
    el = h("textarea", { id, rows: 4, value: Array.isArray(value) ? value.join(", ") : String(value) });
  } else if (display === "numeric") {
    el = h("input", { id, type: "number", value: value === "" ? "" : String(value) });
  } else {
    el = h("input", { id, type: spec.sensitive ? "password" : "text", autocomplete: spec.sensitive ? "new-password" : "off", value: Array.isArray(value) ? value.join(", ") : String(value) });
  }
  el.name = key;
  if (spec.placeholder) el.placeholder = spec.placeholder;
  if (spec.required) {
    el.required = true;
    el.setAttribute("aria-required", "true");
  }
  return { el, display };
}

// The value a control holds, typed as its schema says.
function read(spec, el, display) {
  if (display === "toggle") return el.checked;
  const text = el.value;
  if (text === "") return spec.type === "bool" ? false : spec.type === "int" || display === "numeric" ? null : "";
  if (spec.type === "int" || display === "numeric") return Number(text);
  if (spec.type === "list") return text.split(",").map((s) => s.trim()).filter(Boolean);
  if (spec.type === "bool") return text === "true";
  if (display === "dropdown") {
    const option = (spec.options || []).find((o) => String(o.value) === text);
    return option ? option.value : text;
  }
  return text;
}

export function check(spec, value) {
  const errors = [];
  const empty = value === null || value === "" || (Array.isArray(value) && !value.length);
  if (spec.required && empty && spec.type !== "bool") errors.push(`${spec.label} is required.`);
  if (empty) return errors;
  if ((spec.type === "int" || typeof value === "number") && Number.isNaN(value)) errors.push(`${spec.label} must be a number.`);
  for (const rule of spec.validations || []) {
    const c = rule.constraint;
    if (rule.type === "less_than" && !(Number(value) < c)) errors.push(`${spec.label} must be less than ${c}.`);
    if (rule.type === "greater_than" && !(Number(value) > c)) errors.push(`${spec.label} must be greater than ${c}.`);
    if (rule.type === "included_in") {
      const allowed = Array.isArray(c) ? c.map(String) : [String(c)];
      const values = Array.isArray(value) ? value : [value];
      if (values.some((v) => !allowed.includes(String(v)))) errors.push(`${spec.label} must be one of ${allowed.join(", ")}.`);
    }
    if (rule.type === "regex") {
      const values = Array.isArray(value) ? value : [value];
      let re;
      try {
        re = new RegExp(`^(?:${c})$`);
      } catch {
        continue;
      }
      if (values.some((v) => !re.test(String(v)))) errors.push(`${spec.label} must match ${c}.`);
    }
    if (rule.type === "list_type") {
      const values = Array.isArray(value) ? value : [value];
      if (c === "int" && values.some((v) => !/^-?\d+$/.test(String(v)))) errors.push(`${spec.label} must list whole numbers.`);
    }
  }
  return errors;
}

// Builds the form's fields into ``container``; returns ``values()`` ({key: value} of the visible
// fields, or throws with every validation message) for the update configuration API.
export function configurationForm(container, configuration) {
  const entries = orderedFields(configuration);
  const controls = new Map();
  for (const [key, spec] of entries) {
    const { el, display } = control(key, spec);
    const errorId = `${el.id}-error`;
    const error = h("p", { class: "field-error", id: errorId, hidden: true });
    let wrap;
    if (display === "toggle") {
      wrap = h("div", { class: "field toggle" }, h("label", { for: el.id }, el, " ", spec.label), spec.tooltip ? h("p", { class: "help", text: spec.tooltip }) : null, error);
    } else {
      wrap = field(spec.label + (spec.required ? " (required)" : ""), el, spec.tooltip || null);
      wrap.append(error);
    }
    if (spec.sensitive && el.type === "password") {
      const show = h("button", { type: "button", class: "link", text: "Show", "aria-controls": el.id, "aria-pressed": "false" });
      show.addEventListener("click", () => {
        const hidden = el.type === "password";
        el.type = hidden ? "text" : "password";
        show.textContent = hidden ? "Hide" : "Show";
        show.setAttribute("aria-pressed", String(hidden));
      });
      wrap.append(show);
    }
    wrap.dataset.field = key;
    controls.set(key, { spec, el, display, wrap, error });
    container.append(wrap);
  }
  const current = (key) => {
    const c = controls.get(key);
    return c ? read(c.spec, c.el, c.display) : configuration[key]?.value;
  };
  const visible = (spec) => (spec.depends_on || []).every((d) => String(current(d.field)) === String(d.value));
  const refresh = () => {
    for (const c of controls.values()) c.wrap.hidden = !visible(c.spec);
  };
  container.addEventListener("input", refresh);
  container.addEventListener("change", refresh);
  refresh();
  return {
    values() {
      const out = {};
      const messages = [];
      for (const [key, c] of controls) {
        if (c.wrap.hidden) continue;
        const value = read(c.spec, c.el, c.display);
        const errors = check(c.spec, value);
        c.error.hidden = !errors.length;
        c.error.textContent = errors.join(" ");
        if (errors.length) {
          c.el.setAttribute("aria-invalid", "true");
          c.el.setAttribute("aria-describedby", `${c.el.getAttribute("aria-describedby") || ""} ${c.error.id}`.trim());
        } else c.el.removeAttribute("aria-invalid");
        messages.push(...errors);
        out[key] = value;
      }
      if (messages.length) throw new Error(messages.join(" "));
      return out;
    },
  };
}
