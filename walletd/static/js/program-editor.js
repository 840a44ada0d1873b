// Live preview of the program editor: colours, names and design follow the form as it changes.
(function () {
  "use strict";
  var form = document.getElementById("program-form");
  var pane = document.querySelector(".preview-pane");
  if (!form || !pane) return;

  function readableOn(hex) {
    var v = hex.replace("#", "");
    var c = [0, 2, 4].map(function (i) {
      var x = parseInt(v.substr(i, 2), 16) / 255;
      return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4);
    });
    var l = 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
    return l > 0.179 ? "#000000" : "#ffffff";
  }

  function update() {
    var bg = form.querySelector("[data-live=bg]").value;
    var fg = form.querySelector("[data-live=fg]").value;
    var label = form.querySelector("[data-live=label]").value;
    var name = form.querySelector("[data-live=program]").value;
    var template = form.querySelector("[data-live=template]").value;
    pane.querySelectorAll("[data-preview=apple]").forEach(function (card) {
      card.dataset.cardBg = bg;
      card.dataset.cardFg = fg;
      card.dataset.cardLabel = label;
    });
    pane.querySelectorAll("[data-preview=google]").forEach(function (card) {
      card.dataset.cardBg = bg;
      card.dataset.cardFg = readableOn(bg);
    });
    pane.querySelectorAll("[data-bind=program]").forEach(function (el) { el.textContent = name; });
    // The sample member shows the second tier, as the server-side preview does.
    var tierInput = form.querySelector("[data-live=tier-name][data-index='1']");
    if (tierInput) {
      pane.querySelectorAll("[data-bind=tier]").forEach(function (el) { el.textContent = tierInput.value; });
    }
    var base = pane.dataset.imageBase;
    pane.querySelectorAll("[data-template-image]").forEach(function (img) {
      img.src = base.replace("TEMPLATE", encodeURIComponent(template)).replace("FILE", img.dataset.templateImage);
    });
    if (window.walletdPaintCards) window.walletdPaintCards();
  }

  form.addEventListener("input", update);
  form.addEventListener("change", update);
})();
