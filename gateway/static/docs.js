// The /docs page's initializer: Swagger UI over this gateway's /openapi.json. Served as a file
// (the page's Content-Security-Policy allows no inline script).
window.addEventListener("load", function () {
  "use strict";
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    // No badge from the public validator: nothing is fetched from anywhere else.
    validatorUrl: null,
    displayRequestDuration: true,
    defaultModelsExpandDepth: 0,
    docExpansion: "list",
    filter: true,
    tryItOutEnabled: false,
    persistAuthorization: false,
  });
});
