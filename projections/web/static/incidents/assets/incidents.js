// The incident pages: the list, one incident with its timeline and forms, its postmortem
// draft, the action items and their weekly review, and the declaration form. One script
// for every page: it reads location.pathname, calls the API with the token kept in this
// tab's sessionStorage (the dashboard's key: one sign-in for both) and builds the page
// with plain DOM. Text from the API is only ever set as textContent or an attribute,
// never parsed as HTML; links from the API are kept only when they are http(s).
"use strict";

(function () {
  const signIn = window.HindsightSignIn;  // /dashboard/assets/signin.js
  const DAY_MS = 86400000;
  const SEVERITIES = ["P1", "P2", "P3", "P4"];
  const PERIODS = [["7", "last 7 days"], ["30", "last 30 days"], ["90", "last 90 days"],
                   ["365", "last 365 days"], ["", "all time"]];
  const MOMENTS = [["started", "Started"], ["detected", "Detected"],
                   ["acknowledged", "Acknowledged"], ["resolved", "Resolved"]];

  const $ = (id) => document.getElementById(id);
  // Durations as everywhere in Hindsight (the dashboard's format.js: projections/drafts/formats.py).
  const duration = window.HindsightFormat.duration;
  const plural = window.HindsightFormat.plural;

  // --- DOM and formatting ------------------------------------------------------------

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const child of children || []) {
      if (child !== null && child !== undefined && child !== false) node.append(child);
    }
    return node;
  }

  // Pages show a time to the nearest second, halves up, as the drafts' prose does
  // (projections/formats.prose_time); the <time> element keeps the exact value.
  function when(iso) {
    if (!iso) return "–";
    const parts = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z$/.exec(iso);
    if (!parts) return iso;
    let ms = Date.parse(parts[1] + "Z");
    if (parts[2] && Number("0" + parts[2]) >= 0.5) ms += 1000;
    const whole = new Date(ms).toISOString();
    return whole.slice(0, 10) + " " + whole.slice(11, 19) + " UTC";
  }

  function timeEl(iso, cls) {
    if (!iso) return el("span", { class: "muted", text: "not yet" });
    return el("time", { datetime: iso, title: iso, class: cls, text: when(iso) });
  }

  function safeUrl(url) {
    try {
      const parsed = new URL(url, location.href);
      return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
    } catch (err) {
      return null;
    }
  }

  function pill(cls, text) {
    return el("span", { class: "pill " + cls, text: text });
  }

  function sev(severity) {
    return el("span", { class: "sev " + severity, text: severity });
  }

  function incidentHref(id, rest) {
    return "/incidents/" + encodeURIComponent(id) + (rest || "");
  }

  // Time fields hold RFC 3339 text in UTC ("2025-03-20T09:00:00Z"), exact to the second as
  // the timeline is, whatever the browser's locale; the API checks them (a 422 names the
  // field). A time with no zone is read as UTC, as the label says.
  function nowField() {
    return new Date().toISOString().slice(0, 19) + "Z";
  }

  function fromField(value) {
    const text = value.trim();
    if (!text) return null;
    return /(Z|[+-]\d\d:?\d\d)$/i.test(text) ? text : text + "Z";
  }

  // --- the API -----------------------------------------------------------------------

  class Unauthorized extends Error {}

  class Refused extends Error {
    constructor(status, answer) {
      super((answer && answer.error) || "HTTP " + status);
      this.status = status;
      this.field = answer && answer.field;
    }
  }

  async function api(path, options) {
    const opts = options || {};
    const headers = { Authorization: "Bearer " + signIn.token(),
                      Accept: opts.accept || "application/json" };
    if (opts.body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method: opts.method || (opts.body === undefined ? "GET" : "POST"),
      headers: headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      cache: "no-store",
    });
    if (response.status === 401) throw new Unauthorized("the token was refused");
    if (!response.ok) {
      let answer = null;
      try { answer = await response.json(); } catch (err) { answer = null; }
      throw new Refused(response.status, answer);
    }
    return opts.accept && opts.accept !== "application/json" ? response.text() : response.json();
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // The projector folds an accepted event shortly after the answer: wait until the
  // incident's read model has the stream version the answer named (or exists at all).
  // A declared incident is looked for in its service's list first, so the wait is not a
  // string of 404 answers.
  async function awaitIncident(id, version, service) {
    for (let attempt = 0; attempt < 40; attempt++) {
      const listed = !service || (await api("/v1/incidents?service=" + encodeURIComponent(service)))
        .incidents.some((i) => i.id === id);
      if (listed) {
        const doc = await api("/v1/incidents/" + encodeURIComponent(id));
        if (!version || doc.version >= version) return doc;
      }
      await sleep(Math.min(100 * (attempt + 1), 500));
    }
    return null;
  }

  // The item's read model follows its event a moment later, as an incident's does.
  async function awaitItem(item, status) {
    for (let attempt = 0; attempt < 40; attempt++) {
      const listed = (await api("/v1/action-items?incident=" + encodeURIComponent(item.incident_id)))
        .action_items.find((i) => i.id === item.id);
      if (listed && (!status || listed.status === status)) return listed;
      await sleep(Math.min(100 * (attempt + 1), 500));
    }
    return null;
  }

  // --- forms -------------------------------------------------------------------------

  function field(label, input, hint) {
    const id = input.id;
    return el("div", { class: "field" }, [
      el("label", { for: id, text: label }),
      input,
      hint ? el("span", { class: "hint", id: id + "-hint", text: hint }) : null,
      el("p", { class: "field-error", id: id + "-error", role: "alert", hidden: true }),
    ]);
  }

  function clearErrors(form) {
    for (const node of form.querySelectorAll(".field-error, .form-error")) {
      node.hidden = true;
      node.textContent = "";
    }
    for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  }

  // A 422 names the field to fix: its message goes next to that field.
  function showError(form, err) {
    const input = err.field ? form.elements.namedItem(err.field) : null;
    if (input && input.id) {
      const box = $(input.id + "-error");
      box.textContent = err.message;
      box.hidden = false;
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", input.id + "-error");
      input.focus();
      return;
    }
    const box = form.querySelector(".form-error");
    box.textContent = err.message;
    box.hidden = false;
  }

  function bindForm(form, send) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form);
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      form.dataset.state = "sending";
      try {
        await send(form);
        form.dataset.state = "done";
      } catch (err) {
        if (err instanceof Unauthorized) return signedOut();
        showError(form, err);
        form.dataset.state = "error";
      } finally {
        button.disabled = false;
      }
    });
  }

  function formShell(id, title, fields, submit) {
    return el("form", { id: id, class: "card form", novalidate: false }, [
      el("h2", { text: title }),
      ...fields,
      el("p", { class: "form-error error", role: "alert", hidden: true }),
      el("div", { class: "actions" }, [el("button", { type: "submit", text: submit })]),
    ]);
  }

  function timeInput(id, name, required) {
    return el("input", { id: id, name: name, type: "text", value: required ? nowField() : "",
                         required: required, autocomplete: "off", spellcheck: "false",
                         placeholder: "2025-03-20T09:00:00Z", class: "mono" });
  }

  // --- the incident list ---------------------------------------------------------------

  function selectEl(id, name, options, value) {
    const select = el("select", { id: id, name: name });
    for (const [v, label] of options) select.append(el("option", { value: v, text: label }));
    select.value = options.some(([v]) => v === value) ? value : options[0][0];
    return select;
  }

  async function listPage() {
    document.title = "Incidents · Hindsight";
    const params = new URLSearchParams(location.search);
    const chosen = {
      status: params.get("status") || "",
      service: params.get("service") || "",
      severity: params.get("severity") || "",
      period: params.has("period") ? params.get("period") : "30",
    };
    const query = new URLSearchParams({ limit: "1000" });
    if (chosen.status) query.set("status", chosen.status);
    if (chosen.period) {
      const since = new Date(Date.now() - Number(chosen.period) * DAY_MS);
      query.set("since", since.toISOString().replace(/\.\d+Z$/, "Z"));
    }
    const all = (await api("/v1/incidents?" + query)).incidents;
    const services = [...new Set(all.map((i) => i.service).concat(chosen.service ? [chosen.service] : []))].sort();
    const shown = all.filter((i) => (!chosen.service || i.service === chosen.service)
                                    && (!chosen.severity || i.severity === chosen.severity));

    const filters = el("form", { class: "filters card", role: "search", "aria-label": "Filter incidents" }, [
      field("Status", selectEl("f-status", "status", [["", "any"], ["open", "open"], ["resolved", "resolved"]], chosen.status)),
      field("Service", selectEl("f-service", "service", [["", "any"], ...services.map((s) => [s, s])], chosen.service)),
      field("Severity", selectEl("f-severity", "severity", [["", "any"], ...SEVERITIES.map((s) => [s, s])], chosen.severity)),
      field("Started", selectEl("f-period", "period", PERIODS, chosen.period)),
    ]);
    filters.addEventListener("change", () => {
      const next = new URLSearchParams();
      for (const name of ["status", "service", "severity"]) {
        if (filters.elements[name].value) next.set(name, filters.elements[name].value);
      }
      next.set("period", filters.elements.period.value);
      history.replaceState(null, "", "/incidents?" + next);
      const focused = document.activeElement && document.activeElement.id;
      render().then(() => { if (focused && $(focused)) $(focused).focus(); });
    });
    filters.addEventListener("submit", (event) => event.preventDefault());

    const open = shown.filter((i) => i.status === "open").length;
    const table = el("table", { id: "incidents", class: "stack" }, [
      el("thead", {}, [el("tr", {}, ["status", "sev.", "incident", "service", "started", "detected after", "lasted"]
        .map((h) => el("th", { scope: "col", text: h })))]),
    ]);
    const body = el("tbody");
    for (const inc of shown) {
      body.append(el("tr", { "data-incident": inc.id }, [
        el("td", { "data-label": "status" }, [pill(inc.status, inc.status)]),
        el("td", { "data-label": "severity" }, [sev(inc.severity)]),
        el("td", { class: "title", "data-label": "incident" }, [
          el("a", { href: incidentHref(inc.id), text: inc.title })]),
        el("td", { "data-label": "service", text: inc.service }),
        el("td", { "data-label": "started" }, [timeEl(inc.started_at)]),
        el("td", { "data-label": "detected after", text: inc.detected_by === "human"
          ? duration(inc.detection_latency_seconds) + " (a human)" : duration(inc.detection_latency_seconds) }),
        el("td", { "data-label": "lasted", text: inc.status === "open" ? "ongoing" : duration(inc.duration_seconds) }),
      ]));
    }
    if (!shown.length) {
      body.append(el("tr", { class: "empty-row" }, [el("td", { colspan: "7", text: "No incidents match these filters." })]));
    }
    table.append(body);
    return [
      el("div", { class: "page-head" }, [
        el("h1", { text: "Incidents" }),
        el("p", { class: "muted", id: "count", text: plural(shown.length, "incident") + (open ? ", " + open + " open" : "") }),
      ]),
      filters,
      el("div", { class: "card" }, [el("div", { class: "table-wrap" }, [table])]),
    ];
  }

  // --- one incident --------------------------------------------------------------------

  function momentsList(inc) {
    const extra = {
      detected: inc.detected_at ? [
        el("span", { class: "after", text: duration(inc.detection_latency_seconds) + " after the start"
          + (inc.detected_by === "human" ? ", by a human" : "") }),
        pill(inc.detection_verdict, inc.detection_verdict)] : [],
      resolved: inc.resolved_at ? [el("span", { class: "after", text: "lasted " + duration(inc.duration_seconds) })] : [],
    };
    return el("ol", { class: "moments", id: "moments" }, MOMENTS.map(([key, label]) =>
      el("li", { class: "moment " + key + (inc[key + "_at"] ? "" : " pending"), "data-moment": key }, [
        el("span", { class: "label", text: label }),
        timeEl(inc[key + "_at"]),
        ...(extra[key] || []),
      ])));
  }

  function entryItem(entry) {
    const marker = entry.marker || (entry.kind === "deploy" ? "deploy" : null);
    const links = (entry.links || []).map((link) => [safeUrl(link.url), link.title || link.url])
      .filter(([url]) => url);
    return el("li", { class: "entry" + (marker ? " m-" + marker : ""), "data-marker": marker || "" }, [
      el("div", { class: "when" }, [timeEl(entry.at)]),
      el("div", { class: "what" }, [
        marker ? el("span", { class: "marker " + marker, text: marker }) : null,
        el("span", { class: "text", text: entry.text }),
        el("div", { class: "meta" }, [
          el("span", { text: [entry.source, entry.name || entry.subject].filter(Boolean).join(" · ") }),
          entry.repeats ? el("span", { class: "repeats", text: " · repeated " + plural(entry.repeats, "time")
            + (entry.last_repeat_at ? ", last at " + when(entry.last_repeat_at) : "") }) : null,
        ]),
        links.length ? el("div", { class: "links" }, links.map(([url, title]) =>
          el("a", { href: url, rel: "noopener noreferrer", text: title }))) : null,
      ]),
    ]);
  }

  function itemRow(item, withIncident) {
    const ticket = item.ticket_url ? safeUrl(item.ticket_url) : null;
    const done = item.status === "done";
    const complete = done ? null : el("button", { type: "button", class: "small", text: "Mark done",
      "data-complete": item.id,
      onclick: async (event) => {
        event.target.disabled = true;
        try {
          await api("/v1/action-items/" + encodeURIComponent(item.id) + "/events", { body: { type: "complete" } });
          event.target.replaceWith(pill("ok", "done"));
          await awaitItem(item, "done");
          await render();
        } catch (err) {
          if (err instanceof Unauthorized) return signedOut();
          event.target.disabled = false;
          event.target.after(el("span", { class: "error", text: " " + err.message }));
        }
      } });
    return el("li", { class: "item" + (done ? " done" : ""), "data-item": item.id }, [
      el("div", { class: "item-title" }, [
        pill(done ? "ok" : "open", item.status),
        el("span", { text: item.title }),
      ]),
      el("div", { class: "meta" }, [
        el("span", { text: "owner: " + (item.owner || "none") }),
        el("span", { text: "due: " + (item.due_date || "none") }),
        withIncident ? el("a", { href: incidentHref(item.incident_id), text: item.incident_id }) : null,
        ticket ? el("a", { href: ticket, rel: "noopener noreferrer", text: "ticket" }) : null,
        complete,
      ]),
      item.flags && item.flags.length ? el("ul", { class: "flags" },
        item.flags.map((f) => el("li", { text: f }))) : null,
    ]);
  }

  function incidentForms(inc, redraw) {
    const id = inc.id;
    const post = async (body) => {
      const answer = await api("/v1/incidents/" + encodeURIComponent(id) + "/events", { body: body });
      await redraw(answer.version);
    };
    const forms = [];
    if (!inc.acknowledged_at) {
      const ack = formShell("ack-form", "Acknowledge", [field("At (UTC)", timeInput("ack-at", "at", true))], "Acknowledge");
      bindForm(ack, (f) => post({ type: "acknowledge", at: fromField(f.elements.at.value) }));
      forms.push(ack);
    }
    const note = formShell("note-form", "Add a note", [
      field("At (UTC)", timeInput("note-at", "at", true), "when it happened, not when you write it"),
      field("Note", el("textarea", { id: "note-text", name: "text", rows: "3", required: true })),
    ], "Add note");
    bindForm(note, (f) => post({ type: "note", at: fromField(f.elements.at.value), text: f.elements.text.value }));
    forms.push(note);
    if (inc.status === "open") {
      const resolve = formShell("resolve-form", "Resolve", [
        field("Impact ended at (UTC)", timeInput("resolve-at", "resolved_at", true)),
        field("How it ended", el("textarea", { id: "resolve-text", name: "text", rows: "2" })),
      ], "Resolve");
      bindForm(resolve, (f) => post({ type: "resolve", resolved_at: fromField(f.elements.resolved_at.value),
                                      text: f.elements.text.value }));
      forms.push(resolve);
    }
    const add = formShell("item-form", "Add an action item", [
      field("What will be done", el("input", { id: "item-title", name: "title", required: true })),
      field("Owner (a role or team)", el("input", { id: "item-owner", name: "owner" })),
      field("Due", el("input", { id: "item-due", name: "due_date", type: "date" })),
    ], "Add item");
    bindForm(add, async (f) => {
      const body = { title: f.elements.title.value };
      if (f.elements.owner.value.trim()) body.owner = f.elements.owner.value;
      if (f.elements.due_date.value) body.due_date = f.elements.due_date.value;
      const answer = await api("/v1/incidents/" + encodeURIComponent(id) + "/action-items", { body: body });
      await awaitItem({ id: answer.item, incident_id: id }, null);
      await render();
    });
    forms.push(add);
    return forms;
  }

  async function incidentPage(id) {
    const params = new URLSearchParams(location.search);
    const waitFor = Number(params.get("version")) || 0;
    let inc;
    if (waitFor) {
      // Just declared: wait for the projector to fold it, then drop the hint.
      inc = await awaitIncident(id, waitFor, params.get("service"));
      history.replaceState(null, "", incidentHref(id));
    } else {
      try {
        inc = await api("/v1/incidents/" + encodeURIComponent(id));
      } catch (err) {
        if (!(err instanceof Refused) || err.status !== 404) throw err;
        inc = null;
      }
    }
    if (!inc) {
      document.title = "No such incident · Hindsight";
      return [el("div", { class: "card" }, [
        el("h1", { text: "No incident " + id }),
        el("p", { text: "It may have been merged, or the projector has not folded it yet." }),
        el("a", { href: "/incidents", text: "All incidents" })])];
    }
    document.title = inc.title + " · Hindsight";
    const items = (await api("/v1/action-items?incident=" + encodeURIComponent(id))).action_items;
    const redraw = async (version) => {
      const status = $("form-status");
      if (status) status.textContent = "Saved; waiting for the timeline to show it…";
      await awaitIncident(id, version);
      await render();
      if ($("form-status")) $("form-status").textContent = "Saved.";
    };
    const timeline = inc.timeline || [];
    const deploys = timeline.filter((e) => e.marker === "deploy" || e.kind === "deploy").length;
    const notes = timeline.filter((e) => e.marker === "note").length;
    const repeats = timeline.reduce((sum, e) => sum + (e.repeats || 0), 0);
    return [
      el("div", { class: "page-head incident-head" }, [
        el("p", { class: "crumbs" }, [el("a", { href: "/incidents", text: "Incidents" }), " / ",
                                      el("code", { text: inc.id })]),
        el("h1", { id: "incident-title", text: inc.title }),
        el("div", { class: "badges" }, [
          pill(inc.status, inc.status), sev(inc.severity),
          el("span", { class: "service", text: inc.service }),
          inc.merged_into ? el("a", { href: incidentHref(inc.merged_into), text: "merged into " + inc.merged_into }) : null,
          el("a", { class: "button", id: "open-draft", href: incidentHref(inc.id, "/draft"), text: "Postmortem draft" }),
          el("a", { class: "jump", href: "#update", text: "Update it" }),
        ]),
      ]),
      momentsList(inc),
      el("div", { class: "split" }, [
        el("section", { class: "card", "aria-labelledby": "tl-head" }, [
          el("div", { class: "card-head" }, [
            el("h2", { id: "tl-head", text: "Timeline" }),
            el("span", { class: "hint", id: "tl-counts", text: [plural(timeline.length, "entry", "entries"),
              plural(deploys, "deploy"), plural(notes, "note"), plural(repeats, "repeat") + " counted"].join(" · ") }),
          ]),
          el("ol", { class: "timeline", id: "timeline" }, timeline.map(entryItem)),
          el("h2", { text: "Action items" }),
          el("ul", { class: "items", id: "incident-items" }, items.length ? items.map((i) => itemRow(i, false))
            : [el("li", { class: "muted", text: "None yet." })]),
        ]),
        el("aside", { class: "forms", id: "update", tabindex: "-1", "aria-label": "Update the incident" }, [
          el("p", { id: "form-status", class: "muted", role: "status" }),
          ...incidentForms(inc, redraw),
        ]),
      ]),
    ];
  }

  // --- declare ---------------------------------------------------------------------------

  async function declarePage() {
    document.title = "Declare an incident · Hindsight";
    const known = (await api("/v1/incidents?limit=1000")).incidents;
    const services = [...new Set(known.map((i) => i.service))].sort();
    const form = formShell("declare-form", "Declare an incident", [
      field("Service", el("input", { id: "d-service", name: "service", list: "d-services", required: true,
                                     autocomplete: "off" }), "the service users experience as one thing"),
      el("datalist", { id: "d-services" }, services.map((s) => el("option", { value: s }))),
      field("Title", el("input", { id: "d-title", name: "title", required: true }), "one line: what is wrong"),
      field("Severity", selectEl("d-severity", "severity",
        [["", "let the signals decide"], ...SEVERITIES.map((s) => [s, s])], "")),
      field("Impact started at (UTC)", timeInput("d-started", "started_at", false), "empty: now"),
      field("What was reported", el("textarea", { id: "d-summary", name: "summary", rows: "3" })),
    ], "Declare");
    bindForm(form, async (f) => {
      const body = { service: f.elements.service.value, title: f.elements.title.value };
      if (f.elements.severity.value) body.severity = f.elements.severity.value;
      if (f.elements.started_at.value) body.started_at = fromField(f.elements.started_at.value);
      if (f.elements.summary.value.trim()) body.summary = f.elements.summary.value;
      const answer = await api("/v1/incidents", { body: body });
      const wait = new URLSearchParams({ version: answer.version, service: body.service.trim() });
      history.pushState(null, "", incidentHref(answer.incident, "?" + wait));
      await render();
    });
    return [el("div", { class: "narrow" }, [form])];
  }

  // --- the postmortem draft ------------------------------------------------------------

  function para(text) {
    return el("p", { text: text });
  }

  const SECTIONS = {
    summary: (s) => [el("p", { class: "hint", text: "Draft: edit these sentences before sharing." }),
                     el("p", { text: s.sentences.join(" ") })],
    timeline: (s) => [
      el("div", { class: "table-wrap" }, [el("table", { class: "draft-timeline stack" }, [
        el("thead", {}, [el("tr", {}, ["#", "time (UTC)", "moment", "source", "subject", "what happened"]
          .map((h) => el("th", { scope: "col", text: h })))]),
        el("tbody", {}, s.rows.map((r) => el("tr", { class: r.moment ? "m-" + r.moment : "" }, [
          el("td", { "data-label": "#", text: String(r.number) }),
          el("td", { "data-label": "time" }, [el("time", { datetime: r.at, text: r.at })]),
          el("td", { "data-label": "moment" }, [r.moment ? el("span", { class: "marker " + r.moment, text: r.moment }) : ""]),
          el("td", { "data-label": "source", text: r.source || "" }),
          el("td", { "data-label": "subject" }, [r.subject ? el("code", { text: r.subject }) : ""]),
          el("td", { "data-label": "what happened", class: "wrap", text: r.text
            + (r.repeats ? " (repeated " + plural(r.repeats, "time") + ")" : "") }),
        ]))),
      ])]),
    ],
    contributing_factors: (s) => s.candidates.length ? s.candidates.map((c, i) => el("div", { class: "factor" }, [
      el("h3", { text: "Candidate " + (i + 1) + ": " + c.kind }),
      para("From timeline #" + c.cites.row + " (" + when(c.cites.at) + "): " + c.statement),
      el("ol", { class: "whys" }, c.whys.map((w) => el("li", { class: w ? "" : "blank", text: w || "Why? …" }))),
    ])) : [para("The log shows no candidate; add what it cannot show.")],
    action_items: (s) => [el("ul", { class: "items" }, s.items.length ? s.items.map((item) => el("li", {
      class: "item" + (item.status === "done" ? " done" : "") }, [
      el("div", { class: "item-title" }, [pill(item.status === "done" ? "ok" : "open", item.origin === "suggested" ? "suggested" : item.status),
                                          el("span", { text: item.title })]),
      el("div", { class: "meta" }, [
        el("span", { text: "owner: " + (item.owner || "to assign") }),
        el("span", { text: "due: " + (item.due_date || "none") }),
        item.reason ? el("span", { text: item.reason }) : null,
      ]),
      item.flags.length ? el("ul", { class: "flags" }, item.flags.map((f) => el("li", { text: f }))) : null,
    ])) : [el("li", { class: "muted", text: "None recorded." })])],
    detection: (s) => [el("dl", { class: "facts" }, [
      el("dt", { text: "Detection latency" }),
      el("dd", { text: s.latency ? s.latency + ", detected by " + s.detected_by : "not detected" }),
      el("dt", { text: "Verdict" }), el("dd", {}, [pill(s.verdict, s.verdict), " ", s.verdict_text]),
      el("dt", { text: "Detected first" }), el("dd", { text: s.first_detector_text || "–" }),
      el("dt", { text: "Fired last" }), el("dd", { text: s.fired_last_text || "–" }),
    ])],
    review_cadence: (s) => [el("ul", {}, [
      el("li", { text: "Share with engineering by " + (s.engineering_by ? when(s.engineering_by) : "24 h after resolution") }),
      el("li", { text: "Share with stakeholders by " + (s.stakeholders_by ? when(s.stakeholders_by) : "48 h after resolution") }),
      el("li", { text: s.public_summary_due ? "Public status-page summary: due (section 7)." : "Public status-page summary: not needed." }),
    ])],
    public_summary: (s) => [el("blockquote", { text: s.text })],
  };

  async function draftPage(id) {
    const [draft, markdown] = await Promise.all([
      api("/v1/incidents/" + encodeURIComponent(id) + "/postmortem?format=json"),
      api("/v1/incidents/" + encodeURIComponent(id) + "/postmortem", { accept: "text/markdown" }),
    ]);
    const inc = draft.incident;
    document.title = "Postmortem draft: " + inc.title + " · Hindsight";
    const url = URL.createObjectURL(new Blob([markdown], { type: "text/markdown" }));
    const copied = el("span", { id: "copy-status", class: "muted", role: "status" });
    const copy = el("button", { type: "button", id: "copy-md", text: "Copy Markdown", onclick: async () => {
      try {
        await navigator.clipboard.writeText(markdown);
      } catch (err) {
        // Not a secure context (plain http on another host): the textarea way.
        const area = el("textarea", { class: "offscreen", readonly: true });
        area.value = markdown;
        document.body.append(area);
        area.select();
        document.execCommand("copy");
        area.remove();
      }
      copied.textContent = "Copied.";
    } });
    const sections = draft.sections.map((s) => el("section", { class: "draft-section", id: "s-" + s.id }, [
      el("h2", { text: s.number + ". " + s.title }),
      ...(SECTIONS[s.id] ? SECTIONS[s.id](s) : []),
    ]));
    return [
      el("div", { class: "page-head" }, [
        el("p", { class: "crumbs" }, [el("a", { href: "/incidents", text: "Incidents" }), " / ",
                                      el("a", { href: incidentHref(id), text: inc.id }), " / draft"]),
        el("h1", { text: "Postmortem draft: " + inc.title }),
        el("div", { class: "badges" }, [copy,
          el("a", { class: "button", id: "download-md", href: url, download: "postmortem-" + id + ".md", text: "Download .md" }),
          copied]),
      ]),
      el("article", { class: "card draft", id: "draft" }, [
        el("blockquote", { class: "preamble" }, [el("strong", { text: "Blameless review. " }), draft.preamble]),
        el("dl", { class: "facts" }, [
          el("dt", { text: "Incident" }), el("dd", {}, [el("code", { text: inc.id })]),
          el("dt", { text: "Service" }), el("dd", { text: inc.service }),
          el("dt", { text: "Severity" }), el("dd", {}, [sev(inc.severity)]),
          el("dt", { text: "Status" }), el("dd", { text: inc.status }),
          el("dt", { text: "Draft date" }), el("dd", { text: draft.draft_date }),
        ]),
        ...sections,
      ]),
    ];
  }

  // --- action items and the weekly review ---------------------------------------------

  async function itemsPage() {
    document.title = "Action items · Hindsight";
    const [review, listing] = await Promise.all([api("/v1/action-items/review"), api("/v1/action-items")]);
    const groups = [["overdue", "Overdue", "bad"], ["unassigned", "Unassigned", "warn"],
                    ["due_beyond_14_days", "Due beyond 14 days", "warn"]];
    const params = new URLSearchParams(location.search);
    const status = params.get("status") || "open";
    const all = listing.action_items.filter((i) => status === "all" || i.status === status);
    const filter = selectEl("i-status", "status", [["open", "open"], ["done", "done"], ["all", "all"]], status);
    filter.addEventListener("change", () => {
      history.replaceState(null, "", "/action-items?status=" + filter.value);
      render().then(() => $("i-status") && $("i-status").focus());
    });
    return [
      el("div", { class: "page-head" }, [
        el("h1", { text: "Action items" }),
        el("p", { class: "muted", text: "Weekly review of " + review.today + ": open items, and what falls short." }),
      ]),
      el("div", { class: "tiles", id: "review-tiles" }, [["open", "Open", ""], ...groups].map(([key, label, cls]) =>
        el("div", { class: "tile " + cls, "data-group": key }, [
          el("span", { class: "label", text: label }),
          el("span", { class: "value", text: String(review[key].length) })]))),
      el("div", { class: "grid3" }, groups.map(([key, label]) => el("section", { class: "card", id: "review-" + key }, [
        el("h2", { text: label }),
        el("ul", { class: "items" }, review[key].length ? review[key].map((i) => itemRow(i, true))
          : [el("li", { class: "muted", text: "Nothing." })]),
      ]))),
      el("section", { class: "card", id: "all-items" }, [
        el("div", { class: "card-head" }, [el("h2", { text: "Every item" }),
                                           el("div", { class: "inline" }, [el("label", { for: "i-status", text: "Status " }), filter])]),
        el("ul", { class: "items" }, all.length ? all.map((i) => itemRow(i, true))
          : [el("li", { class: "muted", text: "No " + (status === "all" ? "" : status + " ") + "action items." })]),
      ]),
    ];
  }

  // --- flow --------------------------------------------------------------------------

  function pageFor(path) {
    const parts = path.replace(/\/+$/, "").split("/").slice(1).map(decodeURIComponent);
    if (parts[0] === "action-items") return ["action-items", itemsPage];
    if (parts.length === 1) return ["incidents", listPage];
    if (parts.length === 2 && parts[1] === "new") return ["new", declarePage];
    if (parts.length === 2) return ["incidents", () => incidentPage(parts[1])];
    if (parts.length === 3 && parts[2] === "draft") return ["incidents", () => draftPage(parts[1])];
    return ["incidents", listPage];
  }

  function signedOut(message) {
    signIn.forget();
    $("view").replaceChildren();
    $("signout").hidden = true;
    $("login").hidden = false;
    // No message: the token was refused; "" : signed out on purpose, or not yet signed in.
    $("login-error").textContent = message === undefined
      ? "That token was refused. Check [api] tokens in hindsight.toml." : message;
    $("login-error").hidden = !$("login-error").textContent;
    document.body.dataset.state = "login";
    $("token").focus();
  }

  async function render() {
    const [nav, page] = pageFor(location.pathname);
    for (const link of document.querySelectorAll("[data-nav]")) {
      if (link.dataset.nav === nav) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    $("login").hidden = true;
    $("signout").hidden = false;
    $("load-error").hidden = true;
    document.body.dataset.state = "loading";
    try {
      const nodes = await page();
      $("view").replaceChildren(...nodes);
      document.body.dataset.state = "ready";
    } catch (err) {
      if (err instanceof Unauthorized) return signedOut();
      $("load-error").textContent = "Could not load this page: " + err.message;
      $("load-error").hidden = false;
      document.body.dataset.state = "error";
    }
  }

  function start() {
    signIn.takeFromAddress();
    signIn.onLogin($("login-form"), $("token"), render);
    $("signout").addEventListener("click", () => signedOut(""));
    window.addEventListener("popstate", render);
    if (signIn.token()) render();
    else signedOut("");
  }

  start();
}());
