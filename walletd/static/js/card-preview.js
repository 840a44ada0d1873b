// Card previews get their colours from data attributes: style attributes are forbidden by the CSP.
(function () {
  "use strict";
  function paint(card) {
    var map = { cardBg: "--card-bg", cardFg: "--card-fg", cardLabel: "--card-label" };
    Object.keys(map).forEach(function (key) {
      if (card.dataset[key]) card.style.setProperty(map[key], card.dataset[key]);
    });
  }
  window.walletdPaintCards = function () {
    document.querySelectorAll("[data-card-bg]").forEach(paint);
  };
  window.walletdPaintCards();
})();
