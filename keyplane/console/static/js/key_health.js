// Beyond Kibana: active keys that expire within N days, and keys not used for N days (Keyplane's
// ``last_used``; a key never used counts from its creation).

import { call } from "./api.js";
import { errorBox, field, h, showError } from "./dom.js";
import { keyTable } from "./key_table.js";

const ACTIVE = [{ term: { invalidated: true } }];

function expiringQuery(days) {
  return { bool: { must_not: ACTIVE, filter: [{ range: { expiration: { gt: "now", lte: `now+${days}d` } } }] } };
}

function unusedQuery(days) {
  const before = `now-${days}d`;
  return {
    bool: {
      must_not: ACTIVE,
      filter: [
        {
          bool: {
            should: [
              { range: { last_used: { lt: before } } },
              { bool: { must_not: { exists: { field: "last_used" } }, filter: { range: { creation: { lt: before } } } } },
            ],
            minimum_should_match: 1,
          },
        },
        { bool: { should: [{ bool: { must_not: { exists: { field: "expiration" } } } }, { range: { expiration: { gt: "now" } } }], minimum_should_match: 1 } },
      ],
    },
  };
}

function section(title, id, initial, makeQuery, sort) {
  const days = h("input", { type: "number", min: 1, max: 3650, value: initial, class: "short" });
  const box = errorBox();
  const out = h("div");
  const count = h("p", { class: "muted" });
  async function load() {
    showError(box, null);
    const n = Math.max(1, Math.floor(Number(days.value) || initial));
    try {
      const answer = await call("POST", "/_security/_query/api_key", { query: makeQuery(n), sort, size: 100 });
      count.textContent = `${answer.total} key${answer.total === 1 ? "" : "s"}${answer.total > answer.count ? ` (first ${answer.count} shown)` : ""}`;
      out.replaceChildren(keyTable(answer.api_keys));
    } catch (error) {
      showError(box, error);
    }
  }
  days.addEventListener("change", load);
  const el = h(
    "section",
    { class: "card", "aria-labelledby": id },
    h("h2", { id, text: title }),
    h("form", { class: "toolbar", onsubmit: (e) => (e.preventDefault(), load()) }, field("Days", days), h("button", { type: "submit", text: "Show" })),
    box,
    count,
    out,
  );
  return { el, load };
}

export async function page(root) {
  const expiring = section("Active keys expiring within N days", "expiring-title", 7, expiringQuery, [{ expiration: { order: "asc" } }, "_doc"]);
  const unused = section("Active keys unused for N days", "unused-title", 30, unusedQuery, [{ creation: { order: "asc" } }, "_doc"]);
  root.append(
    h("h1", { text: "Expiring and unused API keys" }),
    h("p", { class: "muted", text: "Keys to renew before they stop working, and keys nobody uses that could be invalidated." }),
    expiring.el,
    unused.el,
  );
  await Promise.all([expiring.load(), unused.load()]);
}
