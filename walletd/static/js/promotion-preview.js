// The promotions page: the card preview shows the promotion's name as it is typed.
(function () {
  "use strict";
  var input = document.querySelector("[data-live=promotion]");
  var shown = document.querySelector("[data-preview=apple] [data-bind=promotion]");
  if (!input || !shown) return;
  var sample = shown.textContent;
  input.addEventListener("input", function () {
    shown.textContent = input.value.trim() || sample;
  });
})();
