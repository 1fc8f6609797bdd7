// casenet's own start-up for Swagger UI: a file, not an inline script, so the page's
// Content-Security-Policy can forbid every script that casenet does not serve itself.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/schema/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    // No badge from the public validator: the page loads nothing from another host.
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    docExpansion: "list",
    defaultModelsExpandDepth: 0,
  });
});
