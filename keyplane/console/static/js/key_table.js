// The table of API keys shared by the key list and the expiring/unused views.

import { badge, h } from "./dom.js";
import { date, relative } from "./format.js";

export function keyType(key) {
  if (key.metadata && key.metadata.managed === true) return "managed";
  return key.type === "cross_cluster" ? "cross_cluster" : "rest";
}

export function statusBadges(key, now = Date.now()) {
  const out = [];
  if (key.invalidated) out.push(badge("Invalidated", "bad"));
  else if (key.expiration && key.expiration <= now) out.push(badge("Expired", "warn"));
  else out.push(badge("Active", "good"));
  return out;
}

export function expiry(key, now = Date.now()) {
  if (!key.expiration) return "Never";
  const text = key.expiration <= now ? `expired ${relative(key.expiration, now)}` : `expires ${relative(key.expiration, now)}`;
  return h("span", { title: date(key.expiration), text });
}

// Keyplane records last_used at a granularity (an hour by default): a recent use reads as such.
export function lastUsed(key, now = Date.now()) {
  if (!key.last_used) return "Never";
  return now - key.last_used < 3600e3 ? "within the last hour" : relative(key.last_used, now);
}

const TYPE_LABELS = { rest: "REST", cross_cluster: "Cross-cluster", managed: "Managed" };

// ``selected`` (a Set of ids) adds a selection column when given.
export function keyTable(keysList, { selected, onSelect, caption } = {}) {
  const now = Date.now();
  const boxes = [];
  const selectAll = h("input", {
    type: "checkbox",
    "aria-label": "Select every key on this page",
    onchange: (e) => {
      for (const box of boxes) {
        if (box.disabled || box.checked === e.target.checked) continue;
        box.checked = e.target.checked;
        box.dispatchEvent(new Event("change"));
      }
    },
  });
  const head = h(
    "tr",
    {},
    selected ? h("th", { scope: "col" }, selectAll) : null,
    ["Name", "Type", "Owner", "Created", "Expiry", "Last used", "Status"].map((t) => h("th", { scope: "col", text: t })),
  );
  const rows = keysList.map((key) => {
    const usable = !key.invalidated;
    const box = selected
      ? h("input", {
          type: "checkbox",
          "aria-label": `Select ${key.name ?? key.id}`,
          checked: selected.has(key.id),
          disabled: !usable,
          onchange: (e) => {
            if (e.target.checked) selected.add(key.id);
            else selected.delete(key.id);
            onSelect && onSelect();
          },
        })
      : null;
    if (box) boxes.push(box);
    return h(
      "tr",
      { "data-id": key.id },
      selected ? h("td", {}, box) : null,
      h("td", {}, h("a", { href: `#/keys/${encodeURIComponent(key.id)}`, text: key.name || "(no name)" }), h("div", { class: "muted mono", text: key.id })),
      h("td", {}, badge(TYPE_LABELS[keyType(key)], keyType(key) === "rest" ? "plain" : "info")),
      h("td", {}, key.username ?? "—", h("div", { class: "muted", text: key.realm ?? "" })),
      h("td", { title: date(key.creation), text: relative(key.creation, now) }),
      h("td", {}, expiry(key, now)),
      h("td", { title: key.last_used ? date(key.last_used) : "", text: lastUsed(key, now) }),
      h("td", {}, statusBadges(key, now)),
    );
  });
  if (!rows.length) rows.push(h("tr", {}, h("td", { colSpan: selected ? 8 : 7, class: "empty", text: "No API keys match." })));
  return h("table", { class: "grid" }, caption ? h("caption", { text: caption }) : null, h("thead", {}, head), h("tbody", {}, rows));
}
