// The /setup page (projections/web/setup_page.py): each enabled source from GET /v1/sources,
// read with the API token kept in this tab's sessionStorage (shared with the other pages).
// Plain DOM, every value set as text: nothing the API answers is parsed as HTML.
(function () {
  "use strict";
  const signIn = window.HindsightSignIn;  // /dashboard/assets/signin.js
  const $ = (id) => document.getElementById(id);

  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function draw(sources) {
    const body = $("rows");
    body.replaceChildren();
    for (const s of sources) {
      const row = document.createElement("tr");
      row.dataset.source = s.source;
      const name = cell(row, "");
      const link = document.createElement("a");
      link.href = s.guide;
      link.textContent = s.source;
      link.title = "setup guide";
      name.appendChild(link);
      cell(row, s.webhook_url, "mono");
      cell(row, s.authentication);
      cell(row, s.last_delivery_at || "none yet");
      const counts = Object.entries(s.deliveries).map(([o, n]) => n + " " + o);
      cell(row, counts.length ? counts.join(", ") : "–");
      body.appendChild(row);
    }
    if (!sources.length) {
      const row = document.createElement("tr");
      cell(row, "No source is enabled: add a [sources.NAME] table to the settings.").colSpan = 5;
      body.appendChild(row);
    }
  }

  async function load() {
    document.body.dataset.state = "loading";
    const token = signIn.token();
    if (!token) {
      $("login").hidden = false;
      $("sources").hidden = true;
      $("signout").hidden = true;
      document.body.dataset.state = "login";
      return;
    }
    const response = await fetch("/v1/sources", {
      headers: { Authorization: "Bearer " + token, Accept: "application/json" },
      cache: "no-store",
    });
    if (response.status === 401) {
      signIn.forget();
      $("login-error").textContent = "The token was refused.";
      $("login-error").hidden = false;
      return load();
    }
    if (!response.ok) {
      $("load-error").textContent = "Could not load the sources (HTTP " + response.status + ").";
      $("load-error").hidden = false;
      document.body.dataset.state = "ready";
      return;
    }
    draw((await response.json()).sources);
    $("login").hidden = true;
    $("sources").hidden = false;
    $("signout").hidden = false;
    document.body.dataset.state = "ready";
  }

  signIn.takeFromAddress();
  signIn.onLogin($("login-form"), $("token"), load);
  $("signout").addEventListener("click", () => {
    signIn.forget();
    load();
  });
  load();
})();
