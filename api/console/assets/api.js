/* fraudstream: calls to the API from the console and the docs page, with the API key when one is needed.
 *
 * The key is asked for once (when a call answers 401) and kept in sessionStorage: for this tab only, sent as
 * X-API-Key on every call. Nothing here talks to any host but the one that served the page.
 */
"use strict";

const FraudApi = (() => {
  const KEY = "fraudstream.apiKey";
  // The API root: given by the page (the docs), else one level above the console's /console/ folder.
  const meta = document.querySelector('meta[name="fraudstream-root"]');
  const base = meta ? meta.content : new URL("..", document.baseURI).pathname.replace(/\/$/, "");
  let asking = null;

  function headers(extra) {
    const out = Object.assign({ Accept: "application/json" }, extra || {});
    const key = sessionStorage.getItem(KEY);
    if (key) out["X-API-Key"] = key;
    return out;
  }

  function askForKey(refused) {
    if (asking) return asking;
    const dialog = document.getElementById("key-dialog");
    const input = document.getElementById("key-input");
    document.getElementById("key-error").hidden = !refused;
    asking = new Promise((resolve) => {
      const form = document.getElementById("key-form");
      const done = (event) => {
        event.preventDefault();
        sessionStorage.setItem(KEY, input.value);
        form.removeEventListener("submit", done);
        dialog.close();
        asking = null;
        resolve();
      };
      form.addEventListener("submit", done);
      dialog.showModal();
      input.focus();
    });
    return asking;
  }

  /** fetch(path) against the API; on 401 ask for the key and try again. Resolves to the Response. */
  async function call(path, options) {
    const opts = Object.assign({}, options || {});
    for (;;) {
      const response = await fetch(base + path, Object.assign({}, opts, { headers: headers(opts.headers) }));
      if (response.status !== 401) return response;
      const hadKey = sessionStorage.getItem(KEY) !== null;
      sessionStorage.removeItem(KEY);
      await askForKey(hadKey);
    }
  }

  async function json(path, options) {
    const response = await call(path, options);
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      const detail = body && body.detail;
      const text = Array.isArray(detail) ? detail.map((d) => `${d.field || d.loc}: ${d.msg}`).join("; ") : detail;
      throw new Error(`${response.status}: ${text || response.statusText}`);
    }
    return body;
  }

  return { base, call, json, key: () => sessionStorage.getItem(KEY) };
})();
