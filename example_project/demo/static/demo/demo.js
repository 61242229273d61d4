// The "send a new code" countdown. Without JavaScript the button stays enabled
// and the server answers an early click with the remaining wait.
(function () {
  "use strict";
  function countdown(button) {
    var left = parseInt(button.getAttribute("data-wait"), 10) || 0;
    var ready = button.getAttribute("data-ready-label");
    var waiting = button.getAttribute("data-waiting-label");
    if (left <= 0 || !ready || !waiting) return;
    var end = Date.now() + left * 1000;
    function tick() {
      var seconds = Math.ceil((end - Date.now()) / 1000);
      if (seconds <= 0) {
        button.disabled = false;
        button.textContent = ready;
        return;
      }
      button.disabled = true;
      button.textContent = waiting.replace("{seconds}", String(seconds));
      window.setTimeout(tick, 250);
    }
    tick();
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("button[data-wait]").forEach(countdown);
  });
})();
