// The detection-latency dashboard: reads /v1/detection-latency with the API token kept in
// this tab's sessionStorage and draws everything with plain DOM and inline SVG.
"use strict";

(function () {
  const signIn = window.HindsightSignIn;  // signin.js
  const PERIOD_KEY = "hindsight.dashboardWeeks";
  const FIVE_MIN = 300;
  const THIRTY_MIN = 1800;
  const SVG = "http://www.w3.org/2000/svg";
  const DAY_MS = 86400000;

  const $ = (id) => document.getElementById(id);

  // --- formatting --------------------------------------------------------------------

  // Durations as everywhere in Hindsight (format.js: the rules of projections/drafts/formats.py).
  const duration = window.HindsightFormat.duration;
  const plural = window.HindsightFormat.plural;

  function level(seconds) {
    if (seconds > THIRTY_MIN) return "bad";
    if (seconds > FIVE_MIN) return "warn";
    return "ok";
  }

  function utcDate(iso) {
    return iso.slice(0, 10);
  }

  function when(iso) {
    return iso.slice(0, 10) + " " + iso.slice(11, 16) + " UTC";
  }

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else node.setAttribute(k, v);
    }
    for (const child of children || []) node.append(child);
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // --- the API -----------------------------------------------------------------------

  class Unauthorized extends Error {}

  async function api(path, accept) {
    const response = await fetch(path, {
      headers: { Authorization: "Bearer " + signIn.token(), Accept: accept || "application/json" },
      cache: "no-store",
    });
    if (response.status === 401) throw new Unauthorized("the token was refused");
    if (!response.ok) throw new Error(path + ": HTTP " + response.status);
    return response;
  }

  function period() {
    const weeks = Number($("period").value);
    if (!weeks) return { since: null, weeks: 0 };
    // From the Monday (UTC) that starts the oldest week shown.
    const now = new Date();
    const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
    const monday = today - ((new Date(today).getUTCDay() + 6) % 7) * DAY_MS;
    return { since: new Date(monday - (weeks - 1) * 7 * DAY_MS), weeks };
  }

  function query(groupBy, since) {
    const params = new URLSearchParams({ group_by: groupBy });
    if (since) params.set("since", since.toISOString().replace(".000Z", "Z"));
    return "/v1/detection-latency?" + params;
  }

  async function load() {
    const { since } = period();
    const get = async (path) => (await api(path)).json();
    const worstParams = new URLSearchParams({ limit: "10" });
    if (since) worstParams.set("since", since.toISOString().replace(".000Z", "Z"));
    const [all, weeks, sources, services, worst] = await Promise.all([
      get(query("all", since)), get(query("week", since)), get(query("source", since)),
      get(query("service", since)), get("/v1/detection-latency/worst?" + worstParams),
    ]);
    return { all: all.rows[0] || null, weeks: weeks.rows, sources: sources.rows,
             services: services.rows, worst: worst.incidents, since };
  }

  // --- rendering ---------------------------------------------------------------------

  function renderTiles(total) {
    $("t-incidents").textContent = total ? String(total.incidents) : "0";
    $("t-p50").textContent = total ? duration(total.p50_seconds) : "–";
    $("t-p90").textContent = total ? duration(total.p90_seconds) : "–";
    $("t-max").textContent = total ? duration(total.max_seconds) : "–";
    $("t-p1").textContent = total ? String(total.p1_over_5m) : "0";
    $("t-30").textContent = total ? String(total.over_30m) : "0";
  }

  function weekList(rows, since) {
    // Every week of the period, so a quiet week shows as a gap rather than vanishing.
    const known = rows.map((r) => Date.parse(r.group + "T00:00:00Z"));
    const first = since ? since.getTime() : Math.min(...known);
    const last = Math.max(Date.now(), ...known);
    const out = [];
    for (let t = first; t <= last && out.length < 520; t += 7 * DAY_MS) {
      out.push(new Date(t).toISOString().slice(0, 10));
    }
    return out;
  }

  function renderChart(rows, since) {
    const box = $("chart");
    box.replaceChildren();
    const W = 1100, H = 320, left = 56, right = 120, top = 16, bottom = 44;
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, "data-weeks": rows.length });
    box.append(root);
    if (!rows.length) {
      root.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" },
                      "No detected incidents in this period yet."));
      return;
    }
    const weeks = weekList(rows, since);
    const byWeek = new Map(rows.map((r) => [r.group, r]));
    // A log scale: detection latencies run from seconds to hours, and both rules matter.
    const values = rows.flatMap((r) => [r.p50_seconds, r.p90_seconds]).map((v) => Math.max(v, 1));
    const lo = Math.max(1, Math.min(10, ...values) / 1.5);
    const hi = Math.max(THIRTY_MIN * 2, ...values) * 1.3;
    const y = (v) => top + (H - top - bottom) * (1 - (Math.log(Math.max(v, lo)) - Math.log(lo)) / (Math.log(hi) - Math.log(lo)));
    const step = weeks.length > 1 ? (W - left - right) / (weeks.length - 1) : 0;
    const x = (i) => (weeks.length > 1 ? left + i * step : left + (W - left - right) / 2);

    for (const tick of [1, 10, 60, 600, 3600, 6 * 3600, 86400, 7 * 86400]) {
      if (tick < lo || tick > hi) continue;
      root.append(svg("line", { x1: left, x2: W - right, y1: y(tick), y2: y(tick), class: "grid-line" }));
      root.append(svg("text", { x: left - 8, y: y(tick) + 4, "text-anchor": "end", class: "axis" }, duration(tick)));
    }
    const rules = [[FIVE_MIN, "warn", "5 min: P1 gap"], [THIRTY_MIN, "bad", "30 min: critical"]];
    for (const [value, cls, label] of rules) {
      root.append(svg("line", { x1: left, x2: W - right, y1: y(value), y2: y(value), class: "rule-" + cls }));
      root.append(svg("text", { x: W - right + 8, y: y(value) + 4, class: "rule-label " + cls }, label));
    }
    const every = Math.max(1, Math.ceil(weeks.length / 13));
    weeks.forEach((week, i) => {
      if (i % every) return;
      root.append(svg("text", { x: x(i), y: H - bottom + 18, "text-anchor": "middle", class: "axis" }, week.slice(5)));
      const row = byWeek.get(week);
      if (row) {
        root.append(svg("text", { x: x(i), y: H - bottom + 32, "text-anchor": "middle", class: "count" },
                        plural(row.incidents, "incident")));
      }
    });
    for (const [key, cls] of [["p90_seconds", "p90"], ["p50_seconds", "p50"]]) {
      // Lines join consecutive weeks with incidents; a quiet week breaks the line.
      let d = "";
      let joined = false;
      weeks.forEach((week, i) => {
        const row = byWeek.get(week);
        if (!row) { joined = false; return; }
        d += (joined ? " L " : " M ") + x(i).toFixed(1) + " " + y(row[key]).toFixed(1);
        joined = true;
      });
      root.append(svg("path", { d: d.trim(), class: "line-" + cls }));
      weeks.forEach((week, i) => {
        const row = byWeek.get(week);
        if (!row) return;
        const dot = svg("circle", { cx: x(i), cy: y(row[key]), r: 4.5, class: "dot-" + cls,
                                    "data-week": week, "data-series": cls, "data-seconds": row[key] });
        dot.append(svg("title", {}, `week of ${week}: ${cls} ${duration(row[key])} (${plural(row.incidents, "incident")})`));
        root.append(dot);
      });
    }
  }

  function renderFigures(table, rows, label) {
    table.replaceChildren();
    table.append(el("thead", {}, [el("tr", {}, [
      el("th", { text: label }), el("th", { text: "count" }), el("th", { text: "p50" }),
      el("th", { text: "p90" }), el("th", {}),
      el("th", { text: "P1 >5m", title: "P1 incidents detected after more than 5 minutes" }),
      el("th", { text: ">30m", title: "detected after more than 30 minutes, or by a human" }),
    ])]));
    const body = el("tbody");
    const sorted = [...rows].sort((a, b) => b.p90_seconds - a.p90_seconds || a.group.localeCompare(b.group));
    const widest = Math.log(Math.max(2, ...rows.map((r) => r.p90_seconds)));
    for (const r of sorted) {
      const fill = el("div", { class: "bar-fill " + level(r.p90_seconds) });
      fill.style.width = (100 * Math.log(Math.max(r.p90_seconds, 1) + 1) / (widest + 1)).toFixed(1) + "%";
      body.append(el("tr", { "data-group": r.group }, [
        el("td", { class: "name", text: r.group, title: r.group }),
        el("td", { text: String(r.incidents) }),
        el("td", { text: duration(r.p50_seconds) }),
        el("td", { text: duration(r.p90_seconds) }),
        el("td", { class: "bar-cell" }, [el("div", { class: "bar-track" }, [fill])]),
        el("td", { text: String(r.p1_over_5m) }),
        el("td", { text: String(r.over_30m) }),
      ]));
    }
    if (!rows.length) body.append(el("tr", { class: "empty-row" }, [el("td", { colspan: "7", text: "No incidents in this period." })]));
    table.append(body);
  }

  function renderWorst(table, incidents) {
    table.replaceChildren();
    table.append(el("thead", {}, [el("tr", {}, [
      el("th", { text: "latency" }), el("th", { text: "incident" }), el("th", { text: "service" }),
      el("th", { text: "severity" }), el("th", { text: "started" }), el("th", { text: "detected by" }),
      el("th", { text: "verdict" }),
    ])]));
    const body = el("tbody");
    for (const inc of incidents) {
      const link = el("a", { href: "/v1/incidents/" + encodeURIComponent(inc.id) + "/postmortem",
                             text: inc.title, "data-incident": inc.id });
      link.addEventListener("click", (event) => { event.preventDefault(); openDraft(inc); });
      body.append(el("tr", { "data-incident": inc.id }, [
        el("td", { text: duration(inc.detection_latency_seconds) }),
        el("td", { class: "title", title: inc.title }, [link]),
        el("td", { text: inc.service }),
        el("td", {}, [el("span", { class: "sev " + inc.severity, text: inc.severity })]),
        el("td", { text: when(inc.started_at) }),
        el("td", { text: inc.detected_by === "human" ? "a human" : inc.source }),
        el("td", {}, [el("span", { class: "pill " + inc.detection_verdict, text: inc.detection_verdict })]),
      ]));
    }
    if (!incidents.length) body.append(el("tr", { class: "empty-row" }, [el("td", { colspan: "7", text: "No incidents in this period." })]));
    table.append(body);
  }

  let draftUrl = null;

  async function openDraft(inc) {
    const dialog = $("draft");
    $("draft-title").textContent = inc.title;
    $("draft-text").textContent = "Loading the draft…";
    if (!dialog.open) dialog.showModal();
    try {
      const text = await (await api("/v1/incidents/" + encodeURIComponent(inc.id) + "/postmortem", "text/markdown")).text();
      $("draft-text").textContent = text;
      if (draftUrl) URL.revokeObjectURL(draftUrl);
      draftUrl = URL.createObjectURL(new Blob([text], { type: "text/markdown" }));
      $("draft-download").href = draftUrl;
      $("draft-download").download = "postmortem-" + inc.id + ".md";
    } catch (err) {
      $("draft-text").textContent = "Could not load the draft: " + err.message;
    }
  }

  // --- flow --------------------------------------------------------------------------

  function showLogin(message) {
    $("board").hidden = true;
    $("controls").hidden = true;
    $("login").hidden = false;
    $("login-error").hidden = !message;
    $("login-error").textContent = message || "";
    $("token").focus();
  }

  async function refresh() {
    $("login").hidden = true;
    $("controls").hidden = false;
    $("board").hidden = false;
    $("load-error").hidden = true;
    document.body.dataset.state = "loading";
    try {
      const data = await load();
      renderTiles(data.all);
      renderChart(data.weeks, data.since);
      renderFigures($("by-source"), data.sources, "source");
      renderFigures($("by-service"), data.services, "service");
      renderWorst($("worst"), data.worst);
      document.body.dataset.state = "ready";
    } catch (err) {
      if (err instanceof Unauthorized) {
        signIn.forget();
        showLogin("That token was refused. Check [api] tokens in hindsight.toml.");
      } else {
        $("load-error").textContent = "Could not load the figures: " + err.message;
        $("load-error").hidden = false;
      }
      document.body.dataset.state = "error";
    }
  }

  function start() {
    signIn.takeFromAddress();
    const saved = sessionStorage.getItem(PERIOD_KEY);
    if (saved && [...$("period").options].some((o) => o.value === saved)) $("period").value = saved;

    signIn.onLogin($("login-form"), $("token"), refresh);
    $("period").addEventListener("change", () => {
      sessionStorage.setItem(PERIOD_KEY, $("period").value);
      refresh();
    });
    $("signout").addEventListener("click", () => {
      signIn.forget();
      showLogin("");
    });
    $("draft-close").addEventListener("click", () => $("draft").close());

    if (signIn.token()) refresh();
    else showLogin("");
  }

  start();
}());
