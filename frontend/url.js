// The hash route's path and query: read it, and change the query without re-rendering the page.

export function parseHash(hash = window.location.hash) {
  const raw = hash.replace(/^#/, "") || "/";
  const [path, qs = ""] = raw.split("?");
  return { path, query: new URLSearchParams(qs) };
}

function write(path, qs) {
  const s = qs.toString();
  history.replaceState(null, "", `#${path}${s ? `?${s}` : ""}`);
}

/** Sets the route's whole query (filters) without re-rendering; empty values are left out. */
export function replaceQuery(params) {
  const { path } = parseHash();
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") qs.set(k, v);
  write(path, qs);
}

/** Sets or removes (empty value) some keys of the route's query and keeps the others. */
export function updateQuery(params) {
  const { path, query } = parseHash();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === "") query.delete(k);
    else query.set(k, v);
  }
  write(path, query);
}
