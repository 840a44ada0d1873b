// The till: scan (camera, keyboard-wedge scanner or typing), credit, redeem, and an offline queue.
// Every scan carries an Idempotency-Key made here: a double submit or a resend after a network
// drop replays the first result on the server instead of crediting twice.
(function () {
  "use strict";
  var root = document.getElementById("till");
  if (!root) return;
  var t = root.dataset;
  var csrf = document.querySelector("meta[name=csrf-token]").content;
  var brand = root.dataset.brand;
  var QUEUE_KEY = "walletd.till.queue";
  var DOUBLE_SCAN_MS = 30000;
  var CARD = /^WD1\.[A-Z0-9]+\.[A-Z0-9]+$/;
  var COUPON = /^WC1\.[A-Z0-9]+\.[A-Z2-7]{16}$/;

  var form = document.getElementById("scan-form");
  var barcodeInput = document.getElementById("barcode");
  var amountInput = document.getElementById("amount");
  var submitButton = document.getElementById("scan-submit");
  var resultBox = document.getElementById("result");
  var queueList = document.getElementById("queue");
  var netStatus = document.getElementById("net-status");
  var last = null; // {barcode, amount, key, at}
  var recent = []; // finished queue items shown under the queue
  var flushing = false;

  function newKey() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return "till-" + Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // --- the queue on this device ---------------------------------------------------------------
  function loadQueue() {
    try {
      var items = JSON.parse(localStorage.getItem(QUEUE_KEY) || "[]");
      return Array.isArray(items) ? items : [];
    } catch (e) {
      return [];
    }
  }
  function saveQueue(items) { localStorage.setItem(QUEUE_KEY, JSON.stringify(items)); }
  function enqueue(item) {
    var items = loadQueue();
    if (!items.some(function (i) { return i.key === item.key; })) items.push(item);
    saveQueue(items);
    renderQueue();
  }
  function dequeue(key) {
    saveQueue(loadQueue().filter(function (i) { return i.key !== key; }));
  }

  function shortCode(code) { return code.length > 12 ? "…" + code.slice(-8) : code; }

  function renderQueue() {
    queueList.textContent = "";
    loadQueue().filter(function (i) { return i.brand === brand; }).forEach(function (item) {
      var li = el("li", "pending");
      li.dataset.key = item.key;
      li.appendChild(el("span", "", t.tPending));
      li.appendChild(el("code", "", shortCode(item.barcode)));
      li.appendChild(el("span", "", item.amount));
      queueList.appendChild(li);
    });
    recent.slice(-5).reverse().forEach(function (item) {
      var li = el("li", item.ok ? "sent" : "failed");
      li.dataset.key = item.key;
      li.appendChild(el("span", "", item.ok ? t.tSent : t.tFailed));
      li.appendChild(el("code", "", shortCode(item.barcode)));
      li.appendChild(el("span", "", item.text));
      queueList.appendChild(li);
    });
  }

  function setOnline(online) {
    netStatus.textContent = online ? t.tOnline : t.tOffline;
    netStatus.className = "pill " + (online ? "online" : "offline");
  }

  // --- talking to the server --------------------------------------------------------------------
  function post(url, body, key) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, "Idempotency-Key": key },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { status: response.status, data: data };
      });
    });
  }

  function showFieldError(field, message) {
    ["barcode", "amount"].forEach(function (name) {
      var box = document.getElementById(name + "-error");
      var input = document.getElementById(name);
      var on = name === field;
      box.hidden = !on;
      box.textContent = on ? message : "";
      if (on) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
    });
    var formError = document.getElementById("form-error");
    var general = message && field !== "barcode" && field !== "amount";
    formError.hidden = !general;
    formError.textContent = general ? message : "";
  }

  function renderCoupons(card, data) {
    var list = data.coupons || [];
    card.appendChild(el("h3", "", t.tCoupons));
    if (!list.length) { card.appendChild(el("p", "muted", t.tNoCoupons)); return; }
    var field = el("div", "field");
    var label = el("label", "", t.tCouponAmount);
    label.htmlFor = "coupon-amount";
    var input = el("input");
    input.id = "coupon-amount";
    input.inputMode = "decimal";
    input.autocomplete = "off";
    input.value = data.amount || "";
    field.appendChild(label);
    field.appendChild(input);
    card.appendChild(field);
    var ul = el("ul", "rewards coupons");
    ul.id = "coupons";
    list.forEach(function (coupon) {
      var li = el("li");
      var text = coupon.name + (coupon.expires_at ? " · " + t.tExpires + " " + coupon.expires_at.slice(0, 10) : "");
      li.appendChild(el("span", "", text));
      var button = el("button", "button", t.tUseCoupon);
      button.type = "button";
      button.dataset.couponBarcode = coupon.barcode;
      button.dataset.key = newKey();
      li.appendChild(button);
      ul.appendChild(li);
    });
    card.appendChild(ul);
  }

  function renderResult(data) {
    resultBox.textContent = "";
    var card = el("div", "result-card" + (data.replayed ? " replayed" : ""));
    card.id = "result-card";
    card.appendChild(el("p", "result-name", data.name));
    if (data.coupon_id !== undefined) {
      card.appendChild(el("p", "result-coupon-name", t.tCouponRedeemed + ": " + data.coupon.name));
      var what = el("p", "result-earned result-coupon");
      what.id = "coupon-result";
      if (data.discount !== undefined) what.textContent = t.tTakeOff + " " + data.currency + " " + data.discount;
      else if (data.item) what.textContent = t.tGive + ": " + data.item;
      else if (data.points_awarded !== undefined) what.textContent = "+" + data.points_awarded + " " + t.tBonus;
      card.appendChild(what);
      if (data.replayed) card.appendChild(el("p", "notice", t.tCouponReplayed));
    } else if (data.points_earned !== undefined) {
      card.appendChild(el("p", "result-earned", "+" + data.points_earned + " " + t.tEarned));
    } else if (data.points_redeemed !== undefined) {
      card.appendChild(el("p", "result-earned", t.tRedeemed + ": " + (data.reward || "") + " (−" + data.points_redeemed + " " + t.tPoints + ")"));
    }
    if (data.replayed) card.appendChild(el("p", "notice", t.tReplayed));
    var facts = el("dl", "result-facts");
    [[t.tBalance, data.balance, "result-balance"], [t.tTier, data.tier || "—", "result-tier"]].forEach(function (pair) {
      var div = el("div");
      div.appendChild(el("dt", "", pair[0]));
      var dd = el("dd", "", pair[1]);
      dd.id = pair[2];
      div.appendChild(dd);
      facts.appendChild(div);
    });
    card.appendChild(facts);
    var rewards = el("ul", "rewards");
    rewards.id = "rewards";
    (data.rewards || []).forEach(function (reward) {
      var li = el("li");
      li.appendChild(el("span", "", reward.name + " · " + reward.cost_points + " " + t.tPoints));
      var button = el("button", "button", t.tRedeem);
      button.type = "button";
      button.dataset.rewardId = reward.id;
      button.dataset.key = newKey();
      button.dataset.barcode = data.barcode;
      li.appendChild(button);
      rewards.appendChild(li);
    });
    if (data.coupon_id === undefined) {
      if (!(data.rewards || []).length) rewards.appendChild(el("li", "muted", t.tNoRewards));
      card.appendChild(rewards);
    }
    renderCoupons(card, data);
    resultBox.appendChild(card);
  }

  function handleAnswer(answer, barcode, amount) {
    if (answer.status === 200 || answer.status === 201) {
      answer.data.barcode = barcode;
      if (amount !== undefined) answer.data.amount = amount;
      renderResult(answer.data);
      showFieldError(null, "");
      return true;
    }
    if (answer.status === 401 || (answer.status === 403 && answer.data.error && answer.data.error.code === "csrf_failed")) {
      showFieldError(null, t.tLoginAgain);
      return false;
    }
    var error = answer.data.error || {};
    var field = error.field === "amount" ? "amount" : (error.code === "unknown_card" || error.code === "unknown_coupon" || error.field === "barcode" ? "barcode" : null);
    showFieldError(field, error.message || ("HTTP " + answer.status));
    return false;
  }

  function clearForm() {
    amountInput.value = "";
    barcodeInput.value = "";
  }

  function submitScan(barcode, amount) {
    var now = Date.now();
    var key;
    // The same card and amount again within a short time is a double scan: reuse the key, so the
    // server answers the first result and credits nothing more.
    if (last && last.barcode === barcode && last.amount === amount && now - last.at < DOUBLE_SCAN_MS) {
      key = last.key;
    } else {
      key = newKey();
      last = { barcode: barcode, amount: amount, key: key, at: now };
    }
    var item = { key: key, barcode: barcode, amount: amount, brand: brand, at: new Date().toISOString() };
    if (!navigator.onLine) {
      enqueue(item);
      setOnline(false);
      clearForm();
      return Promise.resolve();
    }
    submitButton.disabled = true;
    submitButton.dataset.label = submitButton.dataset.label || submitButton.textContent;
    submitButton.textContent = t.tSending;
    return post(root.dataset.scanUrl, { barcode: barcode, amount: amount }, key)
      .then(function (answer) {
        if (answer.status >= 500) { enqueue(item); clearForm(); return; }
        if (handleAnswer(answer, barcode, amount)) clearForm();
      }, function () {
        // No answer at all: the network is gone. Keep the scan with its key and send it later.
        enqueue(item);
        setOnline(false);
        clearForm();
      })
      .then(function () {
        submitButton.disabled = false;
        submitButton.textContent = submitButton.dataset.label;
        barcodeInput.focus();
      });
  }

  function flushQueue() {
    if (flushing) return Promise.resolve();
    var items = loadQueue().filter(function (i) { return i.brand === brand; });
    if (!items.length) return Promise.resolve();
    flushing = true;
    var chain = Promise.resolve(true);
    items.forEach(function (item) {
      chain = chain.then(function (goOn) {
        if (!goOn) return false;
        return post(root.dataset.scanUrl, { barcode: item.barcode, amount: item.amount }, item.key)
          .then(function (answer) {
            if (answer.status === 401 || answer.status === 403 || answer.status >= 500) {
              if (answer.status !== 500) showFieldError(null, t.tLoginAgain);
              return false;
            }
            dequeue(item.key);
            var ok = answer.status === 200 || answer.status === 201;
            var text = ok
              ? answer.data.name + " +" + answer.data.points_earned + " → " + answer.data.balance
              : ((answer.data.error && answer.data.error.message) || "HTTP " + answer.status);
            recent.push({ key: item.key, barcode: item.barcode, ok: ok, text: text });
            if (ok) { answer.data.barcode = item.barcode; renderResult(answer.data); }
            setOnline(true);
            return true;
          }, function () { setOnline(false); return false; });
      });
    });
    return chain.then(function () { flushing = false; renderQueue(); }, function () { flushing = false; });
  }

  // --- redeeming ----------------------------------------------------------------------------------
  resultBox.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-reward-id]");
    if (!button || button.disabled) return;
    if (!navigator.onLine) { showFieldError(null, t.tNeedsNetwork); return; }
    button.disabled = true;
    // The key was made with the button: clicking twice redeems once.
    post(root.dataset.redeemUrl, { barcode: button.dataset.barcode, reward_id: Number(button.dataset.rewardId) }, button.dataset.key)
      .then(function (answer) {
        if (!handleAnswer(answer, button.dataset.barcode)) button.disabled = false;
      }, function () {
        button.disabled = false;
        showFieldError(null, t.tNeedsNetwork);
      });
  });

  function redeemCoupon(barcode, amount, key, button) {
    if (!navigator.onLine) { showFieldError(null, t.tNeedsNetwork); return Promise.resolve(false); }
    var body = { barcode: barcode };
    if (amount) body.amount = amount;
    return post(root.dataset.couponUrl, body, key).then(function (answer) {
      var ok = handleAnswer(answer, barcode, amount);
      if (!ok && button) button.disabled = false;
      return ok;
    }, function () {
      if (button) button.disabled = false;
      showFieldError(null, t.tNeedsNetwork);
      return false;
    });
  }

  resultBox.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-coupon-barcode]");
    if (!button || button.disabled) return;
    button.disabled = true;
    var input = document.getElementById("coupon-amount");
    var amount = input ? input.value.trim().replace(",", ".") : "";
    // The key was made with the button: clicking twice redeems once.
    redeemCoupon(button.dataset.couponBarcode, amount, button.dataset.key, button);
  });

  // --- the form, typing and keyboard-wedge scanners -----------------------------------------------
  function normalise(code) { return code.trim().toUpperCase(); }

  function scanned(code) {
    barcodeInput.value = normalise(code);
    if (amountInput.value.trim()) submitFromForm();
    else amountInput.focus();
  }

  function submitFromForm() {
    var barcode = normalise(barcodeInput.value);
    var amount = amountInput.value.trim().replace(",", ".");
    if (!barcode) { showFieldError("barcode", barcodeInput.validationMessage || "?"); barcodeInput.focus(); return; }
    if (COUPON.test(barcode)) {
      // A coupon scanned itself is redeemed (with the amount, when one is typed).
      var key = last && last.barcode === barcode && last.amount === amount ? last.key : newKey();
      last = { barcode: barcode, amount: amount, key: key, at: Date.now() };
      submitButton.disabled = true;
      redeemCoupon(barcode, amount, key).then(function (ok) {
        submitButton.disabled = false;
        if (ok) clearForm();
        barcodeInput.focus();
      });
      return;
    }
    if (!amount) { showFieldError("amount", amountInput.validationMessage || "?"); amountInput.focus(); return; }
    submitScan(barcode, amount);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    submitFromForm();
  });

  barcodeInput.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !amountInput.value.trim()) {
      event.preventDefault();
      if (barcodeInput.value.trim()) amountInput.focus();
    }
  });

  // A scanner types a whole code and presses Enter into whatever has the focus. A card code
  // cannot belong in the amount (or any other) field, so on Enter take it out of there and use
  // it as the scanned card; with the focus on no field, collect the keys typed in a quick burst.
  var TAIL = /W[DC]1\.[A-Z0-9]+\.[A-Z0-9]+$/i;
  var burst = "";
  var burstAt = 0;
  function isField(node) {
    return node && (node.tagName === "INPUT" || node.tagName === "TEXTAREA" || node.tagName === "SELECT");
  }
  document.addEventListener("keydown", function (event) {
    var target = document.activeElement;
    if (event.key === "Enter") {
      var code = null;
      if (isField(target) && target !== barcodeInput && target.tagName !== "SELECT") {
        var match = target.value.match(TAIL);
        if (match) {
          code = match[0];
          target.value = target.value.slice(0, target.value.length - code.length);
        }
      } else if (!isField(target) && (CARD.test(normalise(burst)) || COUPON.test(normalise(burst)))) {
        code = burst;
      }
      burst = "";
      if (code) {
        event.preventDefault();
        event.stopPropagation();
        scanned(code);
      }
      return;
    }
    if (isField(target) || event.key.length !== 1 || event.ctrlKey || event.metaKey || event.altKey) return;
    var now = performance.now();
    if (now - burstAt > 300) burst = "";
    burst += event.key;
    burstAt = now;
  }, true);

  // --- camera -----------------------------------------------------------------------------------
  var stream = null;
  var cameraBox = document.getElementById("camera");
  var video = document.getElementById("camera-video");
  var detector = null;
  var canvas = document.createElement("canvas");

  function stopCamera() {
    if (stream) stream.getTracks().forEach(function (track) { track.stop(); });
    stream = null;
    cameraBox.hidden = true;
  }

  function loadJsQR() {
    if (window.jsQR) return Promise.resolve();
    return new Promise(function (resolve, reject) {
      var script = document.createElement("script");
      script.src = root.dataset.jsqrUrl;
      script.onload = resolve;
      script.onerror = reject;
      document.head.appendChild(script);
    });
  }

  function detect() {
    if (!stream) return;
    var found;
    if (detector) {
      found = detector.detect(video).then(function (codes) { return codes.length ? codes[0].rawValue : null; });
    } else {
      found = Promise.resolve(null).then(function () {
        if (!video.videoWidth) return null;
        canvas.width = video.videoWidth;
        canvas.height = video.videoHeight;
        var context = canvas.getContext("2d", { willReadFrequently: true });
        context.drawImage(video, 0, 0);
        var image = context.getImageData(0, 0, canvas.width, canvas.height);
        var code = window.jsQR(image.data, image.width, image.height, { inversionAttempts: "dontInvert" });
        return code ? code.data : null;
      });
    }
    found.then(function (text) {
      if (text && (CARD.test(normalise(text)) || COUPON.test(normalise(text)))) { stopCamera(); scanned(text); }
      else setTimeout(detect, 200);
    }, function () {
      // A BarcodeDetector without a platform decoder fails: use the vendored jsQR instead.
      detector = null;
      loadJsQR().then(function () { setTimeout(detect, 0); });
    });
  }

  document.getElementById("camera-button").addEventListener("click", function () {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) { showFieldError("barcode", t.tCameraError); return; }
    var ready = ("BarcodeDetector" in window)
      ? Promise.resolve().then(function () { detector = new window.BarcodeDetector({ formats: ["qr_code"] }); })
      : loadJsQR();
    ready.then(function () {
      return navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
    }).then(function (media) {
      stream = media;
      video.srcObject = media;
      cameraBox.hidden = false;
      return video.play();
    }).then(detect, function () { stopCamera(); showFieldError("barcode", t.tCameraError); });
  });
  document.getElementById("camera-stop").addEventListener("click", stopCamera);

  // --- connectivity -----------------------------------------------------------------------------
  window.addEventListener("online", function () { setOnline(true); flushQueue(); });
  window.addEventListener("offline", function () { setOnline(false); });
  setInterval(function () { if (navigator.onLine) flushQueue(); }, 5000);
  setOnline(navigator.onLine);
  renderQueue();
  if (navigator.onLine) flushQueue();
  barcodeInput.focus();
  root.dataset.ready = "yes";
})();
