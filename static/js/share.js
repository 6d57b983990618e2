// Share links: the Copy button beside a new link's address (shown once, on the page that made
// it). Without the clipboard API the address is selected for the visitor to copy. Listeners
// only: strict CSP.
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy]");
    if (!button) return;
    var field = document.getElementById(button.getAttribute("data-copy"));
    if (!field) return;
    field.select();
    var done = function () { button.textContent = button.getAttribute("data-copied"); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done, function () { field.select(); });
    } else {
      done();
      try { document.execCommand("copy"); } catch (e) { /* the address stays selected */ }
    }
  });
})();
