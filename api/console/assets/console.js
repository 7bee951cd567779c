/* fraudstream alert console: the live queue, an alert's reasons and verdict, and the small charts.
 *
 * Everything comes from the API that served this page (GET /alerts, /alerts/{id}, /alerts/stats, /model,
 * POST /alerts/{id}/feedback). The queue polls the first page every POLL_MS and adds what is new at the top;
 * "Load older" follows next_cursor into the past. Data is written with textContent only: a transaction id or an
 * analyst's note is never parsed as HTML.
 */
"use strict";

(() => {
  const POLL_MS = 2000;
  const STATS_MS = 5000;
  const PAGE = 50;
  const ANALYST = "fraudstream.analyst";
  const $ = (id) => document.getElementById(id);

  const state = {
    alerts: new Map(), // transaction_id -> alert, everything shown in the queue
    cursor: null, // next_cursor of the oldest page loaded
    selected: null,
    filters: {},
    generation: 0, // bumped when the filters change, so late answers of an older query are dropped
  };

  // ---- small helpers -----------------------------------------------------------------------------------------
  function node(tag, attrs, text) {
    const element = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") element.className = value;
      else element.setAttribute(key, value);
    }
    if (text !== undefined && text !== null) element.textContent = String(text);
    return element;
  }

  const utc = (iso) => (iso ? iso.replace("T", " ").replace(/(\.\d+)?(Z|\+00:00)$/, "") : "");
  const fixed = (value, digits) => (value === null || value === undefined ? "–" : Number(value).toFixed(digits));
  const money = (value) => Number(value).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

  function query(extra) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(Object.assign({}, state.filters, extra || {}))) {
      if (value !== "" && value !== null && value !== undefined) params.set(key, value);
    }
    const text = params.toString();
    return text ? `?${text}` : "";
  }

  function readFilters() {
    const local = (id) => {
      const value = $(id).value;
      return value ? new Date(value).toISOString() : "";
    };
    return {
      min_score: $("f-score").value,
      model_version: $("f-version").value,
      verdict: $("f-verdict").value,
      since: local("f-since"),
      until: local("f-until"),
    };
  }

  // ---- the queue ---------------------------------------------------------------------------------------------
  function sortKey(alert) {
    return `${alert.event_time}\u0000${alert.transaction_id}`;
  }

  // One <tr> per alert, kept while the alert is unchanged: the poll re-renders the queue every POLL_MS, and a row
  // replaced between an analyst's mousedown and mouseup never receives the click.
  const rowNodes = new Map(); // transaction_id -> { row, look }

  function rowFor(alert) {
    const verdict = alert.verdict ? alert.verdict.verdict : "";
    const look = JSON.stringify([alert.event_time, alert.score, alert.amount, alert.model_version, verdict]);
    const kept = rowNodes.get(alert.transaction_id);
    if (kept && kept.look === look) return kept.row;
    const row = node("tr", { "data-id": alert.transaction_id, tabindex: "0" });
    row.append(
      node("td", {}, utc(alert.event_time)),
      node("td", { class: "mono" }, alert.transaction_id),
      node("td", { class: "num" }, fixed(alert.score, 3)),
      node("td", { class: "num" }, money(alert.amount)),
      node("td", {}, alert.model_version),
      node("td", { class: `verdict ${verdict}` }, verdict || "—"),
    );
    row.addEventListener("click", () => select(alert.transaction_id));
    row.addEventListener("keydown", (event) => event.key === "Enter" && select(alert.transaction_id));
    rowNodes.set(alert.transaction_id, { row, look });
    return row;
  }

  function renderQueue(fresh) {
    const rows = $("alert-rows");
    const ordered = [...state.alerts.values()].sort((a, b) => (sortKey(a) < sortKey(b) ? 1 : -1));
    const wanted = ordered.map((alert) => {
      const row = rowFor(alert);
      row.classList.toggle("fresh", Boolean(fresh && fresh.has(alert.transaction_id)));
      row.classList.toggle("selected", alert.transaction_id === state.selected);
      return row;
    });
    for (const id of rowNodes.keys()) if (!state.alerts.has(id)) rowNodes.delete(id);
    const shown = rows.children;
    if (shown.length !== wanted.length || wanted.some((row, index) => shown[index] !== row)) {
      rows.replaceChildren(...wanted);
    }
    $("queue-empty").hidden = state.alerts.size > 0;
    $("older").hidden = !state.cursor;
  }

  async function loadFirstPage({ reset } = {}) {
    const generation = state.generation;
    const page = await FraudApi.json(`/alerts${query({ limit: PAGE })}`);
    if (generation !== state.generation) return;
    if (reset) {
      state.alerts.clear();
      state.cursor = page.next_cursor;
    }
    const fresh = new Set();
    for (const alert of page.data) {
      if (!state.alerts.has(alert.transaction_id) && !reset) fresh.add(alert.transaction_id);
      state.alerts.set(alert.transaction_id, alert);
    }
    renderQueue(fresh);
  }

  async function loadOlder() {
    if (!state.cursor) return;
    const generation = state.generation;
    const page = await FraudApi.json(`/alerts${query({ limit: PAGE, cursor: state.cursor })}`);
    if (generation !== state.generation) return;
    for (const alert of page.data) state.alerts.set(alert.transaction_id, alert);
    state.cursor = page.next_cursor;
    renderQueue();
  }

  // ---- the detail --------------------------------------------------------------------------------------------
  async function select(id) {
    state.selected = id;
    renderQueue();
    const alert = await FraudApi.json(`/alerts/${encodeURIComponent(id).replace(/%3A/g, ":")}`);
    if (state.selected !== id) return;
    if (state.alerts.has(id)) state.alerts.set(id, alert);
    renderQueue();
    renderDetail(alert);
    loadHistory(id);
  }

  function renderDetail(alert) {
    $("detail-empty").hidden = true;
    $("detail-body").hidden = false;
    $("d-title").textContent = alert.transaction_id;
    const facts = [
      ["score", `${fixed(alert.score, 4)} (threshold ${fixed(alert.threshold, 4)})`],
      ["model", `${alert.model_name} v${alert.model_version}`],
      ["event time", `${utc(alert.event_time)} UTC`],
      ["scored at", `${utc(alert.scored_at)} UTC`],
      ["amount", money(alert.amount)],
      ["ground truth", alert.label === null || alert.label === undefined ? "unknown" : alert.label ? "fraud" : "legit"],
    ];
    $("d-facts").replaceChildren(...facts.flatMap(([name, value]) => [node("dt", {}, name), node("dd", {}, value)]));

    const explanation = alert.explanation;
    const reasons = explanation ? explanation.reasons : [];
    $("d-method").textContent = explanation
      ? explanation.method === "treeshap"
        ? "exact TreeSHAP"
        : "path approximation (Saabas)"
      : "";
    if (reasons.length) {
      Charts.hbars(
        $("d-chart"),
        reasons.map((r) => ({ label: r.feature, value: r.contribution, text: `+${fixed(r.contribution, 3)}` })),
        { label: "contribution of each reason to the fraud score", barClass: "bar reason" },
      );
    } else {
      $("d-chart").replaceChildren(node("p", { class: "empty" }, "No reasons recorded for this alert."));
    }
    $("d-reasons").replaceChildren(...reasons.map((r) => node("li", {}, r.text)));
    if (explanation) {
      $("d-reasons").append(node("li", { class: "base" }, `Base rate of the model: ${fixed(explanation.base_value, 3)}`));
    }

    const highlighted = new Set(reasons.map((r) => r.feature));
    const values = alert.features ? Object.entries(alert.features) : [];
    $("d-values").replaceChildren(
      ...values.map(([name, value]) => {
        const row = node("tr", highlighted.has(name) ? { class: "reason-row" } : {});
        row.append(node("th", {}, name), node("td", { class: "num" }, Number(value).toPrecision(6)));
        return row;
      }),
    );
    renderVerdict(alert);
  }

  function renderVerdict(alert) {
    const v = alert.verdict;
    $("d-verdict").textContent = v
      ? `Current verdict: ${v.verdict}, by ${v.analyst} at ${utc(v.decided_at)} UTC${v.note ? ` (“${v.note}”)` : ""}`
      : "Not reviewed yet.";
    $("d-verdict").className = `current-verdict ${v ? v.verdict : ""}`;
  }

  async function loadHistory(id) {
    const history = await FraudApi.json(`/alerts/${encodeURIComponent(id).replace(/%3A/g, ":")}/feedback`);
    if (state.selected !== id) return;
    $("d-history").replaceChildren(
      ...history.data.map((item) =>
        node("li", {}, `${utc(item.decided_at)} · ${item.verdict} · ${item.analyst}${item.note ? ` · ${item.note}` : ""}`),
      ),
    );
  }

  async function sendVerdict(verdict) {
    const id = state.selected;
    const analyst = $("v-analyst").value.trim();
    const message = $("v-message");
    if (!analyst) {
      message.textContent = "Enter your name as analyst first.";
      $("v-analyst").focus();
      return;
    }
    localStorage.setItem(ANALYST, analyst);
    const body = { verdict, analyst, note: $("v-note").value.trim() || null };
    try {
      const stored = await FraudApi.json(`/alerts/${encodeURIComponent(id).replace(/%3A/g, ":")}/feedback`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      message.textContent = stored.published
        ? `Saved as ${verdict} and sent to fraud-feedback.`
        : `Saved as ${verdict}; it goes to fraud-feedback as soon as the broker answers.`;
      $("v-note").value = "";
      await select(id);
      refreshStats();
    } catch (error) {
      message.textContent = `Not saved: ${error.message}`;
    }
  }

  // ---- charts and the model line ------------------------------------------------------------------------------
  async function refreshStats() {
    const stats = await FraudApi.json(`/alerts/stats${query({ min_score: "", verdict: "" })}`);
    const minutes = stats.by_minute.map((m) => m.count);
    const first = stats.by_minute.length ? stats.by_minute[0].minute.slice(11, 16) : "";
    const last = stats.by_minute.length ? stats.by_minute[stats.by_minute.length - 1].minute.slice(11, 16) : "";
    Charts.vbars($("c-minutes"), minutes, { first, last, label: "alerts per minute" });
    Charts.vbars($("c-scores"), stats.score_histogram, { first: "0", last: "1", label: "alerts by score" });
    const versions = stats.by_model_version.filter((v) => v.reviewed > 0);
    if (versions.length) {
      Charts.hbars(
        $("c-precision"),
        versions.map((v) => ({
          label: `v${v.model_version}`,
          value: v.confirmed_precision,
          text: `${fixed(v.confirmed_precision * 100, 1)}% (${v.reviewed} reviewed)`,
        })),
        { max: 1, barW: 170, labelW: 44, label: "confirmed precision per model version" },
      );
    } else {
      $("c-precision").replaceChildren(node("p", { class: "empty" }, "No verdicts yet."));
    }
    const select = $("f-version");
    const known = new Set([...select.options].map((o) => o.value));
    for (const v of stats.by_model_version) {
      if (!known.has(v.model_version)) select.append(node("option", { value: v.model_version }, `v${v.model_version}`));
    }
  }

  async function refreshModel() {
    const response = await FraudApi.call("/model");
    const info = $("model-info");
    if (response.ok) {
      const model = await response.json();
      info.textContent = `serving ${model.name} v${model.version} · threshold ${fixed(model.threshold, 4)}`;
    } else {
      info.textContent = "no model serving yet";
    }
  }

  // ---- wiring -------------------------------------------------------------------------------------------------
  function every(ms, task) {
    const run = async () => {
      try {
        await task();
        $("live").classList.remove("stale");
      } catch (error) {
        $("live").classList.add("stale");
        $("live").title = `Last refresh failed: ${error.message}`;
      }
      setTimeout(run, ms);
    };
    run();
  }

  function applyFilters(event) {
    if (event) event.preventDefault();
    state.filters = readFilters();
    state.generation += 1;
    loadFirstPage({ reset: true }).catch((error) => ($("queue-empty").textContent = error.message));
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("v-analyst").value = localStorage.getItem(ANALYST) || "";
    $("filters").addEventListener("submit", applyFilters);
    $("f-clear").addEventListener("click", () => {
      $("filters").reset();
      applyFilters();
    });
    $("older").addEventListener("click", () => loadOlder());
    $("v-fraud").addEventListener("click", () => sendVerdict("fraud"));
    $("v-legitimate").addEventListener("click", () => sendVerdict("legitimate"));
    state.filters = readFilters();
    loadFirstPage({ reset: true })
      .catch(() => {})
      .finally(() => {
        every(POLL_MS, () => loadFirstPage());
        every(STATS_MS, refreshStats);
        every(STATS_MS * 2, refreshModel);
      });
  });
})();
