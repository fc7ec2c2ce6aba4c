// Starts Swagger UI on /api/docs (a file, not an inline script: the page's CSP allows
// scripts from 'self' only). No validator badge: it would call validator.swagger.io.
window.ui = SwaggerUIBundle({
  url: "/api/openapi.json",
  dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  deepLinking: true,
  validatorUrl: null,
});
