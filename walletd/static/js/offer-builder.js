// Live coupon preview of the offer builder: headline, name, terms and expiry follow the form.
(function () {
  "use strict";
  var form = document.getElementById("offer-form");
  var pane = document.querySelector(".preview-pane");
  if (!form || !pane) return;
  var t = form.dataset;

  function fill(text, values) {
    return text.replace(/\{(\w+)\}/g, function (all, name) {
      return Object.prototype.hasOwnProperty.call(values, name) ? values[name] : all;
    });
  }
  function live(name) { var el = form.querySelector("[data-live=" + name + "]"); return el ? el.value.trim() : ""; }
  function bind(name, text) {
    pane.querySelectorAll("[data-bind='" + name + "']").forEach(function (el) { el.textContent = text; });
  }

  function headline() {
    var kind = live("kind");
    var value = live("value").replace(",", ".");
    if (kind === "free_item" || !/^[0-9]+(\.[0-9]+)?$/.test(value)) return live("item") || t.tFree;
    if (kind === "percent_off") return fill(t.tPercent, { value: value });
    if (kind === "amount_off") return fill(t.tAmount, { currency: t.currency, value: value });
    return fill(t.tPoints, { value: Number(value).toLocaleString("en-US") });
  }

  function update() {
    var kind = live("kind");
    form.querySelectorAll("#f-value, #tier-values input").forEach(function (el) { el.disabled = kind === "free_item"; });
    var item = document.getElementById("f-item");
    if (item) item.disabled = kind !== "free_item";
    bind("headline", headline());
    bind("offer_name", live("name") || t.tNew);
    bind("back-terms", live("terms"));
    var days = live("days");
    if (/^[0-9]{1,4}$/.test(days) && Number(days) > 0) {
      var end = new Date(Date.now() + Number(days) * 86400000);
      bind("expires", end.toISOString().slice(0, 10));
    }
  }

  form.addEventListener("input", update);
  form.addEventListener("change", update);
  update();
})();
