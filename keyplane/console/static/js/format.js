// Dates and durations as people read them.

const UNITS = [
  ["year", 365 * 24 * 3600e3],
  ["day", 24 * 3600e3],
  ["hour", 3600e3],
  ["minute", 60e3],
];

export function relative(ms, now = Date.now()) {
  const diff = ms - now;
  const abs = Math.abs(diff);
  for (const [unit, size] of UNITS) {
    if (abs >= size * 0.95) {
      // Rounded: a key made with a 5d expiration a moment ago "expires in 5 days", not 4.
      const n = Math.max(1, Math.round(abs / size));
      const words = `${n} ${unit}${n === 1 ? "" : "s"}`;
      return diff >= 0 ? `in ${words}` : `${words} ago`;
    }
  }
  return diff >= 0 ? "in less than a minute" : "just now";
}

export function date(ms) {
  if (ms === undefined || ms === null) return "—";
  const d = new Date(ms);
  return d.toISOString().replace("T", " ").slice(0, 16) + " UTC";
}

export function list(values) {
  return values && values.length ? values.join(", ") : "—";
}

export function splitList(text) {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}
