/* The API explorer: Swagger UI on this instance's own openapi.json (no outside requests). */
window.ui = SwaggerUIBundle({
  url: 'openapi.json',
  dom_id: '#ui',
  deepLinking: true,
  tryItOutEnabled: true,
  persistAuthorization: false,
  validatorUrl: null,
  displayRequestDuration: true
});
