// A browser for the hosted pages, shared by the relying-party scripts: fetch with a cookie
// jar, never following redirects, and the first form of a page read and posted back.

export const jar = new Map();

/// `fetch` with the jar's cookies; keeps the cookies the answer sets (a `Max-Age=0` or an
/// empty value removes one).
export async function browse(url, init = {}) {
  const headers = new Headers(init.headers);
  if (jar.size) headers.set("cookie", [...jar].map(([k, v]) => `${k}=${v}`).join("; "));
  const response = await fetch(url, { ...init, headers, redirect: "manual" });
  for (const line of response.headers.getSetCookie()) {
    const [pair, ...attributes] = line.split(";");
    const eq = pair.indexOf("=");
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    const expired = attributes.some((a) => a.trim().toLowerCase() === "max-age=0");
    if (expired || value === "") jar.delete(name);
    else jar.set(name, value);
  }
  return response;
}

function unescapeHtml(text) {
  return text
    .replaceAll("&quot;", '"')
    .replaceAll("&#39;", "'")
    .replaceAll("&#x27;", "'")
    .replaceAll("&lt;", "<")
    .replaceAll("&gt;", ">")
    .replaceAll("&amp;", "&");
}

function attribute(tag, name) {
  const match = tag.match(new RegExp(`\\s${name}="([^"]*)"`));
  return match ? unescapeHtml(match[1]) : undefined;
}

/// The first form of a page: its action and its named inputs with their values.
export function parseForm(html) {
  const form = html.match(/<form\b[^>]*>/);
  if (!form) throw new Error("check failed: the page has a form");
  const fields = new URLSearchParams();
  for (const [tag] of html.matchAll(/<input\b[^>]*>/g)) {
    const name = attribute(tag, "name");
    const value = attribute(tag, "value");
    if (name !== undefined && value !== undefined) fields.set(name, value);
  }
  return { action: attribute(form[0], "action"), fields };
}

/// Posts the first form of `html` (a page of `base`) with `extra` fields set.
export async function submit(base, html, extra) {
  const { action, fields } = parseForm(html);
  for (const [name, value] of Object.entries(extra)) fields.set(name, value);
  return browse(new URL(action, base), {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: fields.toString(),
  });
}
