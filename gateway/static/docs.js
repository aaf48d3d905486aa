// The API explorer: Swagger UI (from the pinned swagger-ui-bundle-v2 package) on this
// gateway's /openapi.json. A file of its own because the page's policy allows no inline script.
window.addEventListener("DOMContentLoaded", () => {
  // @ts-ignore: SwaggerUIBundle is the global of swagger-ui-bundle.js
  window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#explorer", deepLinking: true });
});
