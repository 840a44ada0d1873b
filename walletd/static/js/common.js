// Small behaviours shared by every page (no inline scripts: the CSP forbids them).
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var target = event.target.closest("[data-action=print]");
    if (target) {
      event.preventDefault();
      window.print();
    }
  });
})();
