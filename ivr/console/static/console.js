// The console's shared script: no inline scripts (the CSP forbids them), nothing fetched
// from elsewhere. `hotline.post(url, fields)` sends a form with the page's CSRF token.
"use strict";
window.hotline = (function () {
  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }
  async function post(url, fields) {
    const body = new URLSearchParams(fields || {});
    return fetch(url, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "X-CSRF-Token": csrfToken() },
    });
  }
  return { csrfToken: csrfToken, post: post };
})();
