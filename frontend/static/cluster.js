// The /cluster page: fetch /cluster.json every second and redraw it.
// Text goes in with textContent only: nothing from the server is parsed as HTML.
"use strict";

(function () {
  const PERIOD_MS = 1000;
  const TIMEOUT_MS = 2500;
  const source = document.body.dataset.source;

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function clock(at) {
    if (at === null || at === undefined) return "–";
    return new Date(at * 1000).toISOString().slice(11, 19);
  }

  function dash(value) {
    return value === null || value === undefined ? "–" : String(value);
  }

  function percent(rate) {
    return rate === null || rate === undefined ? "–" : (rate * 100).toFixed(1) + "%";
  }

  function duration(seconds) {
    if (seconds < 60) return Math.max(0, Math.round(seconds)) + " s";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min " + Math.round(seconds % 60) + " s";
    return Math.floor(seconds / 3600) + " h " + Math.floor((seconds % 3600) / 60) + " min";
  }

  function counts(map) {
    return Object.keys(map).sort().map((key) => key + " " + map[key]).join(", ");
  }

  function notes(node) {
    const parts = [];
    if (node.self) parts.push("this front-end");
    if (node.reason) parts.push("behind: " + node.reason);
    if (node.clock_offset !== null && Math.abs(node.clock_offset) > 1) {
      const sign = node.clock_offset > 0 ? "+" : "";
      parts.push("wall clock " + sign + node.clock_offset.toFixed(1) + " s from its peers'");
    }
    if (node.snapshots) parts.push(node.snapshots + " snapshot(s) installed");
    if (node.hit_rate !== null) parts.push("cache hits " + percent(node.hit_rate));
    if (node.outbox && node.backlog > 0) parts.push("outbox: " + counts(node.outbox));
    if (node.queues && Object.keys(node.queues).length) parts.push("queues: " + counts(node.queues));
    if (node.retries) parts.push("passed over " + node.retries + "×");
    if (node.failovers) parts.push(node.failovers + " failover(s) away");
    return parts.join("; ");
  }

  function row(node, now) {
    const tr = el("tr");
    tr.id = "node-" + node.name;
    tr.dataset.health = node.health;
    const name = el("th", node.name, "name");
    name.scope = "row";
    const health = el("td", null, "health");
    health.appendChild(el("span", node.health, "badge health-" + node.health));
    const since = node.since === null ? "–" : duration(now - node.since) + " (" + clock(node.since) + ")";
    tr.append(
      name,
      el("td", node.service, "service"),
      el("td", node.url, "url"),
      health,
      el("td", since, "since"),
      el("td", dash(node.role), "role"),
      el("td", dash(node.epoch), "epoch"),
      el("td", dash(node.backlog), "backlog"),
      el("td", dash(node.queued), "queued"),
      el("td", notes(node), "notes"),
    );
    return tr;
  }

  function render(s) {
    document.getElementById("primary").textContent = s.primary.node || "none";
    document.getElementById("holder").textContent = s.primary.holder || "none";
    document.getElementById("epoch").textContent = String(s.primary.epoch);
    const up = s.nodes.filter((n) => n.health === "up").length;
    document.getElementById("up-count").textContent = up + " of " + s.nodes.length;
    document.getElementById("rate").textContent = s.requests.per_second.toFixed(1);
    document.getElementById("hit-rate").textContent = percent(s.cache.hit_rate);
    document.getElementById("node-rows").replaceChildren(...s.nodes.map((n) => row(n, s.now)));
    const events = s.events.map((e) => {
      const li = el("li", null, "event-" + e.kind);
      li.append(el("time", clock(e.at)), document.createTextNode(e.text));
      return li;
    });
    if (!events.length) events.push(el("li", "No changes seen since " + s.node + " started.", "muted"));
    document.getElementById("events").replaceChildren(...events);
    document.getElementById("updated").textContent = clock(s.now);
  }

  function connection(ok, why) {
    const status = document.getElementById("connection");
    status.classList.toggle("lost", !ok);
    document.getElementById("liveness").textContent = ok
      ? "Updates every second."
      : "Cannot reach this front-end (" + why + "); retrying.";
  }

  async function poll() {
    const started = Date.now();
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), TIMEOUT_MS);
    try {
      const response = await fetch(source, {
        cache: "no-store",
        headers: { Accept: "application/json" },
        signal: abort.signal,
      });
      if (response.status === 401) throw new Error("signed out: reload the page to sign in again");
      if (!response.ok) throw new Error("HTTP " + response.status);
      render(await response.json());
      connection(true);
    } catch (error) {
      connection(false, error.name === "AbortError" ? "timed out" : error.message);
    } finally {
      clearTimeout(timer);
      // Once a second from start to start, however long the fetch took.
      setTimeout(poll, Math.max(0, PERIOD_MS - (Date.now() - started)));
    }
  }

  poll();
})();
