// Tessera's session-expiry warning (R33): "expires in 5 minutes — extend?", then "your
// session has expired" with a way to sign in again. No dependencies; no inline script is
// needed (the pages' CSP forbids it). Documented in docs/pages.md.
//
// On Tessera's own pages it drives the hidden markup the page carries (#session-expiry).
// A relying party embeds it with data attributes on the script element:
//   <script src="https://id.example.com/assets/session-expiry.js" defer
//           data-status-url="https://id.example.com/auth/session"
//           data-extend-url="https://id.example.com/auth/session/extend"
//           data-sign-in-url="/login" data-lang="ko"></script>
// and, for endpoints that want the user's access token, calls
//   TesseraSessionExpiry.start({ statusUrl, extendUrl, signInUrl, lang,
//                                headers: () => ({ authorization: "Bearer " + token }) })
// The status URL answers {idleExpiresAt, absoluteExpiresAt, now, warnBeforeSecs}
// (Unix seconds); the extend URL answers the same after a POST.
(() => {
  "use strict";

  const TEXTS = {
    en: {
      warning: "Your session expires soon because you have been inactive. Time left:",
      extend: "Stay signed in",
      expired: "Your session has expired. Sign in again to continue where you were.",
      signIn: "Sign in again",
    },
    ko: {
      warning: "한동안 활동이 없어 곧 로그아웃됩니다. 남은 시간:",
      extend: "로그인 유지",
      expired: "세션이 만료되었습니다. 다시 로그인하면 보던 페이지로 돌아갑니다.",
      signIn: "다시 로그인",
    },
  };

  function minutesSeconds(total) {
    const secs = Math.max(0, Math.ceil(total));
    const m = Math.floor(secs / 60);
    const s = secs % 60;
    return `${m}:${String(s).padStart(2, "0")}`;
  }

  // The banner of an embedding page, built with DOM calls (no HTML strings).
  function buildBanner(texts, signInUrl) {
    const section = document.createElement("section");
    section.className = "tessera-session-expiry";
    section.hidden = true;
    const warning = document.createElement("div");
    warning.setAttribute("role", "alert");
    warning.hidden = true;
    const p = document.createElement("p");
    p.textContent = `${texts.warning} `;
    const remaining = document.createElement("strong");
    p.append(remaining);
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = texts.extend;
    warning.append(p, button);
    const ended = document.createElement("div");
    ended.setAttribute("role", "alert");
    ended.hidden = true;
    const q = document.createElement("p");
    q.textContent = texts.expired;
    const link = document.createElement("a");
    link.href = signInUrl || window.location.href;
    link.textContent = texts.signIn;
    ended.append(q, link);
    section.append(warning, ended);
    document.body.prepend(section);
    return { section, warning, ended, remaining, trigger: button };
  }

  function start(options) {
    const headers = typeof options.headers === "function" ? options.headers : () => ({});
    const ui = options.ui;
    let idle = Number(options.idleExpiresAt);
    let absolute = Number(options.absoluteExpiresAt);
    let warnBefore = Number(options.warnBeforeSecs) || 300;
    // Server time minus this browser's time, so a wrong local clock does not matter.
    let skew = Number.isFinite(Number(options.now)) ? Number(options.now) - Date.now() / 1000 : 0;
    let state = "quiet";
    let checking = false;

    const serverNow = () => Date.now() / 1000 + skew;
    const endsAt = () => Math.min(idle, absolute);

    function accept(body) {
      if (!body || !Number.isFinite(body.idleExpiresAt)) return false;
      idle = body.idleExpiresAt;
      absolute = body.absoluteExpiresAt;
      if (Number.isFinite(body.warnBeforeSecs)) warnBefore = body.warnBeforeSecs;
      if (Number.isFinite(body.now)) skew = body.now - Date.now() / 1000;
      return true;
    }

    function show(next) {
      if (state === next) return;
      state = next;
      ui.section.hidden = next === "quiet";
      ui.warning.hidden = next !== "warning";
      ui.ended.hidden = next !== "ended";
    }

    // Another tab may have extended the session: ask before warning or giving up.
    async function refresh() {
      if (!options.statusUrl || checking) return;
      checking = true;
      try {
        const response = await fetch(options.statusUrl, {
          credentials: "include",
          headers: { accept: "application/json", ...headers() },
        });
        if (response.ok) accept(await response.json());
        else if (response.status === 401) idle = Math.min(idle, serverNow());
      } catch {
        // Offline: keep counting with what is known.
      } finally {
        checking = false;
      }
    }

    async function extend(event) {
      if (event) event.preventDefault();
      try {
        const init = {
          method: "POST",
          credentials: "include",
          headers: { accept: "application/json", ...headers() },
        };
        if (options.csrf) {
          init.headers["content-type"] = "application/x-www-form-urlencoded";
          init.body = new URLSearchParams({ csrf: options.csrf }).toString();
        }
        const response = await fetch(options.extendUrl, init);
        if (response.ok && accept(await response.json())) {
          tick();
          return;
        }
      } catch {
        // Fall through: the session could not be extended.
      }
      idle = Math.min(idle, serverNow());
      tick();
    }

    let lastRefresh = 0;
    function tick() {
      const left = endsAt() - serverNow();
      if (left <= 0) {
        if (state !== "ended" && Date.now() - lastRefresh > 2000) {
          lastRefresh = Date.now();
          refresh().then(() => {
            if (endsAt() - serverNow() <= 0) show("ended");
          });
        }
        return;
      }
      if (left <= warnBefore) {
        if (state === "quiet" && Date.now() - lastRefresh > 2000) {
          lastRefresh = Date.now();
          refresh();
        }
        ui.remaining.textContent = minutesSeconds(left);
        show("warning");
      } else {
        show("quiet");
      }
    }

    if (ui.form) ui.form.addEventListener("submit", extend);
    if (ui.trigger) ui.trigger.addEventListener("click", () => extend());
    tick();
    window.setInterval(tick, 1000);
    return { extend: () => extend() };
  }

  function fromMarkup(section) {
    const warning = section.querySelector(".expiry-warning");
    const form = warning && warning.querySelector("form");
    const csrf = form && form.querySelector("input[name=csrf]");
    if (!warning || !form || !csrf) return;
    start({
      idleExpiresAt: section.dataset.idleExpiresAt,
      absoluteExpiresAt: section.dataset.absoluteExpiresAt,
      now: section.dataset.now,
      warnBeforeSecs: section.dataset.warnBefore,
      statusUrl: section.dataset.statusUrl,
      extendUrl: form.action,
      csrf: csrf.value,
      ui: {
        section,
        warning,
        ended: section.querySelector(".expiry-ended"),
        remaining: section.querySelector("[data-remaining]"),
        form,
      },
    });
  }

  // Embedded by a relying party: lifetimes come from its status URL.
  async function embedded(options) {
    const texts = TEXTS[options.lang] || TEXTS.en;
    const headers = typeof options.headers === "function" ? options.headers : () => ({});
    const response = await fetch(options.statusUrl, {
      credentials: "include",
      headers: { accept: "application/json", ...headers() },
    });
    if (!response.ok) return null;
    const body = await response.json();
    return start({
      ...options,
      idleExpiresAt: body.idleExpiresAt,
      absoluteExpiresAt: body.absoluteExpiresAt,
      now: body.now,
      warnBeforeSecs: body.warnBeforeSecs,
      ui: buildBanner(texts, options.signInUrl),
    });
  }

  window.TesseraSessionExpiry = { start: embedded };

  const script = document.currentScript;
  function boot() {
    const section = document.getElementById("session-expiry");
    if (section) {
      fromMarkup(section);
    } else if (script && script.dataset.statusUrl) {
      embedded({
        statusUrl: script.dataset.statusUrl,
        extendUrl: script.dataset.extendUrl,
        signInUrl: script.dataset.signInUrl,
        lang: script.dataset.lang,
      });
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
  else boot();
})();
