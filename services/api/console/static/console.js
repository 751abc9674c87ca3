// The console's one script: local times, copy buttons, live regions kept
// fresh by the server's activity stream, and the page actions, which call the
// JSON API with the session's CSRF token.
"use strict";

(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content;
  const refreshMs = Number(
    document.querySelector('meta[name="refresh-ms"]')?.content || 3000,
  );
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  const pad = (n, width = 2) => String(n).padStart(width, "0");

  // Times arrive in UTC; show them in the viewer's zone, UTC stays on hover.
  function localizeTimes(root) {
    const zoneName = new Intl.DateTimeFormat(undefined, {
      timeZoneName: "short",
    });
    for (const el of root.querySelectorAll("time[datetime]")) {
      const at = new Date(el.getAttribute("datetime"));
      if (Number.isNaN(at.getTime())) continue;
      let text =
        `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())} ` +
        `${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())}`;
      if (el.hasAttribute("data-precise")) text += `.${pad(at.getMilliseconds(), 3)}`;
      const part = zoneName.formatToParts(at).find((p) => p.type === "timeZoneName");
      el.textContent = part ? `${text} ${part.value}` : text;
    }
  }

  async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return;
    }
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "absolute";
    area.style.left = "-9999px";
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }

  function setUpCopyButtons() {
    document.addEventListener("click", async (event) => {
      const button = event.target.closest("[data-copy]");
      if (!button) return;
      const source = document.querySelector(button.dataset.copy);
      if (!source) return;
      const before = button.getAttribute("aria-label") || button.textContent;
      try {
        await copyText(source.textContent.trim());
        button.dataset.copied = "true";
        button.setAttribute("title", "Copied");
      } catch {
        button.setAttribute("title", "Copy failed: select the text instead");
      }
      setTimeout(() => {
        delete button.dataset.copied;
        button.setAttribute("title", before);
      }, 2000);
    });
  }

  // Filter forms send the viewer's zone, and leave empty fields out of the URL.
  function setUpFilters() {
    for (const form of document.querySelectorAll("form[data-filters]")) {
      const zoneField = form.querySelector("[data-zone]");
      if (zoneField && !zoneField.value) zoneField.value = zone;
      form.addEventListener("submit", () => {
        for (const field of form.elements) {
          if (field.name && !field.value) field.disabled = true;
        }
      });
    }
  }

  // --- Actions through the API -------------------------------------------

  async function callApi(method, url, body) {
    const headers = { "x-csrf-token": csrf || "" };
    const init = { method, headers, credentials: "same-origin" };
    if (body !== undefined) {
      headers["content-type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(url, init);
    // Some answers (204) have no body whatever their content type says.
    const text = await response.text();
    const type = response.headers.get("content-type") || "";
    const answer = text && type.includes("application/json") ? JSON.parse(text) : null;
    return { response, answer };
  }

  function problemText(response, answer) {
    if (answer && answer.message) {
      const problems = (answer.problems || []).join("; ");
      let text = problems ? `${answer.message}: ${problems}` : answer.message;
      const wait = response.headers.get("retry-after");
      if (response.status === 429 && wait) text += ` (try again in ${wait} s)`;
      return text.charAt(0).toUpperCase() + text.slice(1) + ".";
    }
    if (response.status === 401) return "Your session has ended; sign in again.";
    return `The server answered ${response.status}.`;
  }

  function formBody(form) {
    if (form.dataset.body === "json") {
      const text = form.querySelector('[name="body"]').value;
      return JSON.parse(text);
    }
    const body = {};
    let any = false;
    for (const field of form.elements) {
      if (!field.name || field.name.startsWith("_") || field.type === "submit") continue;
      body[field.name] =
        field.dataset.type === "bool" ? field.value === "true" : field.value;
      any = true;
    }
    return any ? body : undefined;
  }

  function formUrl(form) {
    return form.dataset.url.replace(/\{(_\w+)\}/g, (_, name) =>
      encodeURIComponent(form.querySelector(`[name="${name}"]`).value.trim()),
    );
  }

  // One listener for the whole page, so forms inside live regions, which are
  // replaced as they refresh, keep working.
  function setUpApiForms() {
    document.addEventListener("submit", async (event) => {
      const form = event.target;
      if (!(form instanceof HTMLFormElement) || !form.matches("form[data-api]")) return;
      event.preventDefault();
      if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
      const problem = form.querySelector("[data-problem]");
      const button = form.querySelector('[type="submit"]');
      const show = (text) => {
        if (!problem) return;
        problem.textContent = text;
        problem.hidden = !text;
      };
      let body;
      try {
        body = formBody(form);
      } catch {
        show("The values are not valid JSON.");
        return;
      }
      show("");
      button.disabled = true;
      try {
        const { response, answer } = await callApi(
          form.dataset.api,
          formUrl(form),
          body,
        );
        if (!response.ok) {
          show(problemText(response, answer));
          return;
        }
        if (form.dataset.then === "run" && answer && answer.run_id) {
          window.location.assign(`/console/runs/${answer.run_id}?requested=true`);
        } else if (form.dataset.then === "reveal" && answer) {
          // A secret the server shows once: kept on screen, never stored by
          // the page, and no reload until "Done".
          form.querySelector("[data-revealed]").textContent =
            answer[form.dataset.reveal];
          form.querySelector("[data-issued]").hidden = false;
          form.reset();
        } else if (form.dataset.then === "sign-in") {
          window.location.assign("/console/sign-in");
        } else {
          window.location.reload();
        }
      } catch {
        show("The server could not be reached; try again.");
      } finally {
        button.disabled = false;
      }
    });
  }

  // --- Selecting runs and re-running them ----------------------------------

  const chosen = new Set();

  function syncSelection() {
    const bulk = document.querySelector("[data-bulk]");
    if (!bulk) return;
    for (const box of document.querySelectorAll('input[name="run"]')) {
      box.checked = chosen.has(box.value);
    }
    const count = bulk.querySelector("[data-selected-count]");
    count.textContent = chosen.size
      ? `${chosen.size} run${chosen.size === 1 ? "" : "s"} selected.`
      : "Select runs to re-run them.";
    bulk.querySelector("[data-rerun-selected]").disabled = chosen.size === 0;
  }

  function setUpSelection() {
    const bulk = document.querySelector("[data-bulk]");
    if (!bulk) return;
    document.addEventListener("change", (event) => {
      const box = event.target;
      if (box.matches('input[name="run"]')) {
        if (box.checked) chosen.add(box.value);
        else chosen.delete(box.value);
      } else if (box.matches("[data-select-all]")) {
        for (const one of document.querySelectorAll('input[name="run"]')) {
          if (box.checked) chosen.add(one.value);
          else chosen.delete(one.value);
        }
      } else {
        return;
      }
      syncSelection();
    });
    const result = bulk.querySelector("[data-bulk-result]");
    bulk.querySelector("[data-rerun-selected]").addEventListener("click", async () => {
      const ids = [...chosen];
      let started = 0;
      const refused = [];
      for (const id of ids) {
        try {
          const { response, answer } = await callApi("POST", `/api/runs/${id}/rerun`);
          if (response.ok) started += 1;
          else refused.push(`${id.slice(0, 8)}: ${problemText(response, answer)}`);
        } catch {
          refused.push(`${id.slice(0, 8)}: the server could not be reached.`);
        }
      }
      chosen.clear();
      syncSelection();
      result.hidden = false;
      result.textContent =
        `${started} re-run${started === 1 ? "" : "s"} started.` +
        (refused.length ? ` Not re-run: ${refused.join(" ")}` : "");
      refresh();
    });
  }

  // --- Live regions ---------------------------------------------------------

  // However busy the project, a page fetches itself at most this often.
  const MIN_GAP_MS = 1000;
  const served = new Map();
  let polling = true;
  let busy = false;
  let again = false;
  let pushed = false;
  let lastFetch = 0;
  let soon = null;

  // One fetch at a time; a change that comes in meanwhile gets one more.
  async function refresh() {
    if (!polling) return;
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    lastFetch = Date.now();
    try {
      const response = await fetch(window.location.href, {
        credentials: "same-origin",
      });
      if (response.redirected) {
        // The session ended: the answer is the sign-in page. Stop asking.
        polling = false;
      } else if (response.ok) {
        update(await response.text());
      }
    } catch {
      // The server is out of reach for now; the next round tries again.
    } finally {
      busy = false;
      if (again) {
        again = false;
        refreshSoon();
      }
    }
  }

  function refreshSoon() {
    if (soon !== null) return;
    const wait = Math.max(0, lastFetch + MIN_GAP_MS - Date.now());
    soon = setTimeout(() => {
      soon = null;
      refresh();
    }, wait);
  }

  function update(html) {
    const page = new DOMParser().parseFromString(html, "text/html");
    for (const region of document.querySelectorAll("[data-live]")) {
      const fresh = page.querySelector(`[data-live="${region.dataset.live}"]`);
      if (!fresh) {
        // The page changed shape (a waited-for run has started): show it whole.
        window.location.reload();
        return;
      }
      if (served.get(region.dataset.live) === fresh.innerHTML) continue;
      served.set(region.dataset.live, fresh.innerHTML);
      region.innerHTML = fresh.innerHTML;
      localizeTimes(region);
    }
    syncSelection();
  }

  // The server says when the page's project changed; while it cannot (no
  // stream, or the stream broke), the page asks every refreshMs instead. A
  // hidden tab lets its stream go: browsers allow few connections to one
  // site over HTTP/1.1, and tabs left open in the background must not use
  // them all up.
  function listen(url) {
    let source = null;
    const open = () => {
      source = new EventSource(url);
      source.addEventListener("ready", () => {
        pushed = true;
        document.documentElement.dataset.updates = "push";
        refresh(); // anything that changed before the stream opened
      });
      source.addEventListener("change", refreshSoon);
      source.addEventListener("error", () => {
        pushed = false;
        document.documentElement.dataset.updates = "poll";
      });
    };
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && source === null) {
        open();
      } else if (document.visibilityState === "hidden" && source !== null) {
        source.close();
        source = null;
        pushed = false;
        document.documentElement.dataset.updates = "paused";
      }
    });
    if (document.visibilityState === "visible") open();
  }

  function setUpLive() {
    const regions = document.querySelectorAll("[data-live]");
    if (!regions.length) return;
    for (const region of regions) served.set(region.dataset.live, region.innerHTML);
    const feed = document.querySelector('meta[name="activity-url"]')?.content;
    if (feed && window.EventSource) listen(feed);
    setInterval(() => {
      if (!pushed && document.visibilityState === "visible") refresh();
    }, refreshMs);
  }

  document.addEventListener("DOMContentLoaded", () => {
    setUpLive();
    localizeTimes(document);
    setUpCopyButtons();
    setUpFilters();
    setUpApiForms();
    setUpSelection();
    syncSelection();
  });
})();
