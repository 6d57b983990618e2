// My account: offer the browser's own time zone when it differs from the one chosen. Event
// listeners only (no inline handlers), so it runs under a strict CSP.
(function () {
  "use strict";

  function offerBrowserZone() {
    var select = document.getElementById("id_time_zone");
    var button = document.getElementById("use-browser-zone");
    if (!select || !button || !window.Intl) return;
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    var known = Array.prototype.some.call(select.options, function (option) {
      return option.value === zone;
    });
    if (!zone || !known || select.value === zone) {
      button.hidden = true;
      return;
    }
    button.textContent = button.dataset.label + ": " + zone.replace(/_/g, " ");
    button.dataset.zone = zone;
    button.hidden = false;
  }

  document.addEventListener("click", function (event) {
    if (event.target.id !== "use-browser-zone") return;
    var select = document.getElementById("id_time_zone");
    select.value = event.target.dataset.zone;
    offerBrowserZone();
  });
  document.addEventListener("change", function (event) {
    if (event.target.id === "id_time_zone") offerBrowserZone();
  });
  document.addEventListener("DOMContentLoaded", offerBrowserZone);
})();
