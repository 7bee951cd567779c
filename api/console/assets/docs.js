/* The API docs, offline: Swagger UI (or ReDoc) served by the app, fed the schema fetched with the API key.
 *
 * With FRAUD_API_KEY set, /openapi.json answers 401 without the key: the page asks for it once (api.js), fetches
 * the schema with it, pre-fills "Authorize", and sends it on every "Try it out" call.
 */
"use strict";

document.addEventListener("DOMContentLoaded", async () => {
  const target = document.getElementById("docs");
  const response = await FraudApi.call("/openapi.json");
  const spec = await response.json();
  if (target.dataset.viewer === "redoc") {
    Redoc.init(spec, { hideDownloadButton: false }, target);
    return;
  }
  const ui = SwaggerUIBundle({
    spec,
    domNode: target,
    deepLinking: true,
    validatorUrl: null, // never ask validator.swagger.io about the schema
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
    layout: "BaseLayout",
    requestInterceptor: (request) => {
      const key = FraudApi.key();
      if (key && !request.headers["X-API-Key"] && !request.headers.Authorization) request.headers["X-API-Key"] = key;
      return request;
    },
  });
  if (FraudApi.key()) ui.preauthorizeApiKey("ApiKey", FraudApi.key());
});
