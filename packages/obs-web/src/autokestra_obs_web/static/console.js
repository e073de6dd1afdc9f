// Autokestra console: the small amount of JavaScript the pages need (no framework, no build).
// - copy buttons for ids;
// - auto-refresh of the executions list and of a live execution's overview;
// - the log view: the newest page first, then the live stream (SSE) appended gap-free and
//   without duplicates (each row is keyed by its log id), older pages fetched on scroll, and
//   never more than MAX_ROWS rows in the DOM.
// Untrusted text only ever reaches the DOM as textContent, with control and bidi characters
// made visible exactly as the CLI shows them.
"use strict";

(function () {
  const MAX_ROWS = 5000;
  const PAGE = 500;
  const NEWEST = "9223372036854775807";
  const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

  function visible(text) {
    if (text === null || text === undefined) return "";
    return String(text).replace(UNSAFE, function (ch) {
      const code = ch.charCodeAt(0);
      return code <= 0xff
        ? "\\x" + code.toString(16).padStart(2, "0")
        : "\\u" + code.toString(16).padStart(4, "0");
    });
  }

  // -- copy buttons ------------------------------------------------------------------------
  document.addEventListener("click", function (event) {
    const button = event.target.closest ? event.target.closest("button[data-copy]") : null;
    if (!button) return;
    const value = button.getAttribute("data-copy");
    const done = function () {
      button.textContent = "copied";
      setTimeout(function () { button.textContent = "copy"; }, 1200);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(value).then(done, function () {});
    } else {
      const area = document.createElement("textarea");
      area.value = value;
      document.body.appendChild(area);
      area.select();
      try { document.execCommand("copy"); done(); } catch (e) { /* nothing to do */ }
      area.remove();
    }
  });

  // -- executions list: refresh the first page (and any page showing a live execution) ----------
  function refreshList() {
    const table = document.getElementById("executions");
    if (!table) return;
    const url = table.getAttribute("data-refresh-url");
    const live = table.querySelector('tr[data-state="RUNNING"], tr[data-state="PENDING"], tr[data-state="WAITING"]');
    if (!url && !live) return;
    const target = url || window.location.pathname + window.location.search +
      (window.location.search ? "&" : "?") + "partial=1";
    setInterval(function () {
      if (document.hidden) return;
      fetch(target, { credentials: "same-origin" }).then(function (response) {
        if (!response.ok) return null;
        return response.text();
      }).then(function (html) {
        if (html === null) return;
        const tbody = table.querySelector("tbody");
        const fresh = new DOMParser().parseFromString("<table>" + html + "</table>", "text/html")
          .querySelector("tbody");
        if (tbody && fresh) tbody.replaceWith(fresh);
      }).catch(function () {});
    }, 2000);
  }

  // -- a live execution's overview, tasks and timeline ---------------------------------------
  function refreshExecution() {
    const part = document.getElementById("live-part");
    if (!part || part.getAttribute("data-in-progress") !== "1") return null;
    const url = part.getAttribute("data-url");
    let timer = null;
    function once() {
      return fetch(url, { credentials: "same-origin" }).then(function (response) {
        return response.ok ? response.text() : null;
      }).then(function (html) {
        if (html === null) return;
        const open = Array.from(part.querySelectorAll("details[open]")).map(function (d) { return d.id; });
        const doc = new DOMParser().parseFromString(html, "text/html");
        const fresh = doc.querySelector(".live-state");
        if (!fresh) return;
        part.replaceChildren(fresh);
        open.forEach(function (id) {
          const details = document.getElementById(id);
          if (details) details.open = true;
        });
        if (fresh.getAttribute("data-in-progress") !== "1") {
          part.setAttribute("data-in-progress", "0");
          if (timer !== null) clearInterval(timer);
        }
      }).catch(function () {});
    }
    timer = setInterval(once, 2000);
    return once;
  }

  // -- the log view ---------------------------------------------------------------------------
  function logView(finalRefresh) {
    const box = document.getElementById("log-window");
    if (!box) return;
    const rows = document.getElementById("log-rows");
    const status = document.getElementById("log-status");
    const olderButton = document.getElementById("log-older");
    const latestButton = document.getElementById("log-latest");
    const form = document.getElementById("log-filters");
    const logsUrl = box.getAttribute("data-logs-url");
    const streamUrl = box.getAttribute("data-stream-url");
    let source = null;
    let generation = 0;
    let oldest = null;      // id of the first row shown (cursor for older pages)
    let hasOlder = false;
    let newestId = 0;       // highest id shown (duplicates and replays are dropped)
    let detached = false;   // older pages pushed the newest rows out: stop appending live rows
    let loadingOlder = false;

    function filters() {
      const params = new URLSearchParams();
      const data = new FormData(form);
      ["level", "task", "text"].forEach(function (name) {
        const value = (data.get(name) || "").trim();
        if (value) params.set(name, value);
      });
      return params;
    }

    function row(record) {
      const tr = document.createElement("tr");
      tr.className = "level-" + visible(record.level);
      tr.dataset.id = String(record.id);
      const cells = [
        ["ts", record.timestamp],
        ["lvl", record.level],
        ["task", record.task_id === null ? "-" : record.task_id],
        ["src", "[" + record.source + "]"],
        ["msg", record.message],
      ];
      cells.forEach(function (cell) {
        const td = document.createElement("td");
        td.className = cell[0];
        td.textContent = visible(cell[1]);
        tr.appendChild(td);
      });
      return tr;
    }

    function atBottom() {
      return box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    }

    function trimTop() {
      while (rows.childElementCount > MAX_ROWS) {
        rows.firstElementChild.remove();
        hasOlder = true;
      }
      if (rows.firstElementChild) oldest = rows.firstElementChild.dataset.id;
      olderButton.hidden = !hasOlder;
    }

    function append(records) {
      if (detached) return;
      const follow = atBottom();
      const fragment = document.createDocumentFragment();
      records.forEach(function (record) {
        if (record.id <= newestId) return;  // never twice
        newestId = record.id;
        fragment.appendChild(row(record));
      });
      rows.appendChild(fragment);
      trimTop();
      if (follow) box.scrollTop = box.scrollHeight;
    }

    function stream(after, mine) {
      const params = filters();
      params.set("after", String(after));
      source = new EventSource(streamUrl + "?" + params.toString());
      source.onmessage = function (event) {
        if (mine !== generation) return;
        append([JSON.parse(event.data)]);
      };
      source.addEventListener("end", function (event) {
        source.close();
        if (mine !== generation) return;
        const end = JSON.parse(event.data);
        status.textContent = "Execution ended: " + visible(end.state);
        if (finalRefresh) finalRefresh();
      });
      source.onerror = function () {
        if (mine !== generation) return;
        status.textContent = "Reconnecting to the live log...";
      };
      source.onopen = function () {
        if (mine === generation && status.textContent.indexOf("Reconnecting") === 0) {
          status.textContent = "Following the live log";
        }
      };
    }

    function start() {
      generation += 1;
      const mine = generation;
      if (source) source.close();
      rows.replaceChildren();
      oldest = null;
      hasOlder = false;
      newestId = 0;
      detached = false;
      latestButton.hidden = true;
      olderButton.hidden = true;
      status.textContent = "Loading...";
      const params = filters();
      params.set("before", NEWEST);
      params.set("limit", String(PAGE));
      fetch(logsUrl + "?" + params.toString(), { credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (page) {
          if (mine !== generation) return;
          hasOlder = page.next_before !== null;
          append(page.records);
          box.scrollTop = box.scrollHeight;
          const terminal = ["SUCCESS", "FAILED", "CANCELLED"].indexOf(page.state) >= 0;
          status.textContent = terminal ? "" : "Following the live log";
          if (page.records.length === 0 && terminal) status.textContent = "No log entries";
          const after = page.records.length ? page.records[page.records.length - 1].id : page.next_after;
          stream(after, mine);
        })
        .catch(function (error) {
          if (mine === generation) status.textContent = "Could not load the log: " + visible(error.message);
        });
    }

    function loadOlder() {
      if (!hasOlder || loadingOlder || oldest === null) return;
      loadingOlder = true;
      const mine = generation;
      const params = filters();
      params.set("before", oldest);
      params.set("limit", String(PAGE));
      fetch(logsUrl + "?" + params.toString(), { credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (page) {
          if (mine !== generation) return;
          const height = box.scrollHeight;
          const fragment = document.createDocumentFragment();
          page.records.forEach(function (record) { fragment.appendChild(row(record)); });
          rows.insertBefore(fragment, rows.firstElementChild);
          hasOlder = page.next_before !== null;
          if (rows.firstElementChild) oldest = rows.firstElementChild.dataset.id;
          while (rows.childElementCount > MAX_ROWS) {
            rows.lastElementChild.remove();
            detached = true;
          }
          if (detached) {
            newestId = Number(rows.lastElementChild.dataset.id);
            latestButton.hidden = false;
          }
          olderButton.hidden = !hasOlder;
          box.scrollTop += box.scrollHeight - height;
        })
        .catch(function () {})
        .finally(function () { loadingOlder = false; });
    }

    box.addEventListener("scroll", function () {
      if (box.scrollTop < 60) loadOlder();
    });
    olderButton.addEventListener("click", loadOlder);
    latestButton.addEventListener("click", start);
    let debounce = null;
    form.addEventListener("input", function () {
      clearTimeout(debounce);
      debounce = setTimeout(start, 300);
    });
    form.addEventListener("submit", function (event) { event.preventDefault(); start(); });
    start();
  }

  function init() {
    refreshList();
    const finalRefresh = refreshExecution();
    logView(finalRefresh);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
