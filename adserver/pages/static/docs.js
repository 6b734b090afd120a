// Swagger UI (vendored in vendor/swagger-ui) over this server's /openapi.json.
window.addEventListener("DOMContentLoaded", () => {
  const container = document.getElementById("swagger-ui");
  window.SwaggerUIBundle({ url: container.dataset.specUrl, domNode: container, deepLinking: true });
});
