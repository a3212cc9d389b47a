// Beyond Kibana: active keys that expire within N days, and keys not used for N days (Keyplane's
// ``last_used``; a key never used counts from its creation).

import { call } from "./api.js";
import { errorBox, field, h, showError } from "./dom.js";
import { keyTable } from "./key_table.js";

const ACTIVE = [{ term: { invalidated: true } }];

// Keyplane's own list: live keys expiring within the window, soonest first, read from the expiration index.
function expiring(days) {
  return call("GET", `/_keyplane/api_key/_expiring?within=${days}d&size=100`);
}

function unused(days) {
  return call("POST", "/_security/_query/api_key", { query: unusedQuery(days), sort: UNUSED_SORT, size: 100 });
}

const UNUSED_SORT = [{ creation: { order: "asc" } }, "_doc"];

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

// ``fetchKeys(days)`` answers as the query API does: total, count and api_keys.
function section(title, id, initial, fetchKeys) {
  const days = h("input", { type: "number", min: 1, max: 3650, value: initial, class: "short" });
  const box = errorBox();
  const out = h("div");
  const count = h("p", { class: "muted" });
  async function load() {
    showError(box, null);
    const n = Math.max(1, Math.floor(Number(days.value) || initial));
    try {
      const answer = await fetchKeys(n);
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
  const soon = section("Active keys expiring within N days", "expiring-title", 7, expiring);
  const idle = section("Active keys unused for N days", "unused-title", 30, unused);
  root.append(
    h("h1", { text: "Expiring and unused API keys" }),
    h("p", { class: "muted", text: "Keys to renew before they stop working, and keys nobody uses that could be invalidated." }),
    soon.el,
    idle.el,
  );
  await Promise.all([soon.load(), idle.load()]);
}
