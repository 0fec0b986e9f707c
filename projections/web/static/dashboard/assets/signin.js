// Signing in with an API token, the same on every page (dashboard, incidents, setup):
// the token is kept in this tab's sessionStorage only, shared by the pages; a link's
// ?token=… (as `hindsight demo` prints them) is taken once, then removed from the address
// bar and history so it is not left in bookmarks or screenshots.
(function () {
  "use strict";

  const TOKEN_KEY = "hindsight.apiToken";

  function takeFromAddress() {
    const params = new URLSearchParams(location.search);
    if (!params.get("token")) return;
    sessionStorage.setItem(TOKEN_KEY, params.get("token"));
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + (rest ? "?" + rest : ""));
  }

  // The login form: a non-empty token is kept, the field cleared, then `signedIn` runs.
  function onLogin(form, input, signedIn) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const token = input.value.trim();
      if (!token) return;
      sessionStorage.setItem(TOKEN_KEY, token);
      input.value = "";
      signedIn();
    });
  }

  window.HindsightSignIn = {
    token: () => sessionStorage.getItem(TOKEN_KEY),
    forget: () => sessionStorage.removeItem(TOKEN_KEY),
    takeFromAddress,
    onLogin,
  };
})();
