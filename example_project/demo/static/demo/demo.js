// The demo pages' few behaviours. Every page works without JavaScript: the server
// normalises codes, refuses an early resend with the remaining wait, and treats a
// second identical submit as the continuation of the first.
(function () {
  "use strict";

  // --- waits, said as the server says them (errors.wait_text) ------------------------
  var units = null;
  function say(seconds) {
    if (!units) {
      var data = document.getElementById("demo-units");
      units = data ? JSON.parse(data.textContent) : { s: ["%(n)d s", "%(n)d s"] };
    }
    var unit = "s", n = seconds;
    if (seconds >= 120 && units.m) {
      n = Math.ceil(seconds / 60);
      unit = "m";
      if (n >= 120 && units.h) { n = Math.ceil(n / 60); unit = "h"; }
    }
    return units[unit][n === 1 ? 0 : 1].replace("%(n)d", String(n));
  }

  // One clock for every countdown of the page, so they always agree.
  function countdown(seconds, tick) {
    var end = Date.now() + seconds * 1000;
    (function step() {
      var left = Math.max(0, Math.ceil((end - Date.now()) / 1000));
      tick(left);
      if (left > 0) window.setTimeout(step, 250);
    })();
  }

  // "Send a new code" waits for retry_after. It stays focusable meanwhile
  // (aria-disabled, not disabled), so a screen reader finds it and hears the wait.
  // Without JavaScript the server answers an early click with the remaining wait.
  function resendButton(button) {
    var wait = parseInt(button.getAttribute("data-wait"), 10) || 0;
    var ready = button.getAttribute("data-ready-label");
    var waiting = button.getAttribute("data-waiting-label");
    if (wait <= 0 || !ready || !waiting) return;
    button.addEventListener("click", function (event) {
      if (button.getAttribute("aria-disabled") === "true") event.preventDefault();
    });
    countdown(wait, function (left) {
      if (left > 0) button.setAttribute("aria-disabled", "true");
      else button.removeAttribute("aria-disabled");
      button.textContent = left > 0 ? waiting.replace("{time}", say(left)) : ready;
    });
  }

  // "Please wait 27 seconds …": the number counts down; the sentence goes at zero.
  function waitSpan(span) {
    var wait = parseInt(span.getAttribute("data-countdown"), 10) || 0;
    countdown(wait, function (left) {
      if (left > 0) {
        span.textContent = say(left);
        return;
      }
      var holder = span.closest(".banner, .errors") || span;
      holder.hidden = true;
    });
  }

  // --- one submit per page ----------------------------------------------------------------
  // The first submit of a form[data-busy] disables its button and says what is
  // happening; any further submit on the page is dropped (double clicks, Enter
  // pressed twice, an autofilled code arriving while the person clicks).
  var sending = false;
  function onSubmit(event) {
    var form = event.target;
    if (!form.hasAttribute || !form.hasAttribute("data-busy") || event.defaultPrevented) return;
    if (sending) {
      event.preventDefault();
      return;
    }
    sending = true;
    var label = form.getAttribute("data-busy");
    var button = event.submitter || form.querySelector("button[type=submit]");
    if (button) {
      button.setAttribute("aria-disabled", "true");
      button.classList.add("busy");
      button.textContent = label;
      // Disabled only after the form data is built, so the button's name=value is sent.
      window.setTimeout(function () { button.disabled = true; }, 0);
    }
    var status = document.getElementById("busy-status");
    if (status) status.textContent = label;
  }

  // --- the code box -------------------------------------------------------------------------
  // Like demo/forms.py normalise_code: full-width digits, spaces and dashes between
  // digits, or a whole pasted message holding one run of exactly `length` digits.
  function extractCode(raw, length) {
    var text = raw.normalize ? raw.normalize("NFKC") : raw;
    var joined = text.replace(/([0-9])[\s\-\u2010-\u2015\u2212\u30fc.·]+(?=[0-9])/g, "$1").trim();
    var runs = /^[0-9]+$/.test(joined) ? [joined] : joined.match(/[0-9]+/g) || [];
    var found = {};
    runs.forEach(function (run) {
      if (length ? run.length === length : run.length >= 4 && run.length <= 10) found[run] = true;
    });
    var codes = Object.keys(found);
    return codes.length === 1 ? codes[0] : null;
  }

  function codeBox(input) {
    var length = parseInt(input.getAttribute("data-code-length"), 10) || 0;
    var form = input.form;
    function complete() {
      if (!length) return; // a code of unknown length: the person submits it
      var code = extractCode(input.value, length);
      if (code === null) return;
      input.value = code;
      if (sending) return;
      var button = form.querySelector("button[type=submit]");
      if (form.requestSubmit) form.requestSubmit(button || undefined);
      else if (button) button.click();
    }
    // Typing, pasting a message, and the one-time-code autofill of iOS and Android
    // all end in an input event.
    input.addEventListener("input", complete);
    // WebOTP (Chrome on Android): the SMS's last line "@host #code" fills the box.
    if ("OTPCredential" in window && navigator.credentials && window.AbortController) {
      var abort = new AbortController();
      form.addEventListener("submit", function () { abort.abort(); });
      navigator.credentials
        .get({ otp: { transport: ["sms"] }, signal: abort.signal })
        .then(function (otp) {
          if (otp && otp.code) {
            input.value = otp.code;
            complete();
          }
        })
        .catch(function () {});
    }
  }

  document.addEventListener("submit", onSubmit);
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("button[data-wait]").forEach(resendButton);
    document.querySelectorAll("[data-countdown]").forEach(waitSpan);
    document.querySelectorAll("input[data-code-length]").forEach(codeBox);
  });
  // Pages are sent with Cache-Control: no-store; should a browser still restore
  // one from its back/forward cache, ask the server again (it may be logged out).
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) window.location.reload();
  });
})();
