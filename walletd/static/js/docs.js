// The /docs page: Swagger UI draws the document named by the container's data-spec-url.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.SwaggerUIBundle({
    url: root.dataset.specUrl,
    domNode: root,
    deepLinking: true,
    // The default asks validator.swagger.io for a badge image: another site, refused by the CSP.
    validatorUrl: null,
  });
})();
