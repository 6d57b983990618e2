// Toasts for the signed-in person's jobs that ended (the notifier's poll adds them to #toasts),
// the browser notification of each for people who asked for them, and asking the browser's
// permission when they tick the box on My account. Everything a notification says comes from the
// toast's data-* attributes, drawn by the server. Event listeners only (no inline handlers, no
// eval), so it runs under a strict CSP.
(function () {
  "use strict";

  // How long a toast stays; never while the pointer is over it or focus is inside it.
  var SHOW_MS = 12000;

  function dismissLater(toast) {
    window.setTimeout(function () {
      if (toast.matches(":hover, :focus-within")) dismissLater(toast);
      else toast.remove();
    }, SHOW_MS);
  }

  function mayNotify() {
    return "Notification" in window && Notification.permission === "granted";
  }

  function notifyBrowser(toast) {
    if (!toast.hasAttribute("data-browser-notify") || !mayNotify()) return;
    var data = toast.dataset;
    // The tag makes the copies from several open tabs one notification.
    var options = { body: data.body || "", tag: "muxweb-job-" + data.job };
    if (data.icon) options.icon = data.icon;
    var notification;
    try {
      notification = new Notification(data.title, options);
    } catch (error) {
      return; // Browsers that show notifications only from a service worker (Chrome on Android).
    }
    notification.addEventListener("click", function () {
      window.focus();
      window.location.assign(data.url);
      notification.close();
    });
  }

  function showNewToasts() {
    var toasts = document.querySelectorAll("#toasts .toast:not([data-shown])");
    Array.prototype.forEach.call(toasts, function (toast) {
      toast.setAttribute("data-shown", "");
      dismissLater(toast);
      notifyBrowser(toast);
    });
  }

  document.addEventListener("click", function (event) {
    var close = event.target.closest && event.target.closest(".toast-close");
    if (close) close.closest(".toast").remove();
  });
  document.addEventListener("keydown", function (event) {
    var toast = event.key === "Escape" && event.target.closest && event.target.closest(".toast");
    if (toast) toast.remove();
  });
  // htmx fires htmx:load for what each swap adds, the toasts of an out-of-band swap included.
  document.addEventListener("htmx:load", showNewToasts);

  // My account: ticking "browser notifications" is the gesture a permission request needs. The
  // help (how to allow them in the browser's site settings) shows while the box is ticked and the
  // browser refuses them.
  function permission() {
    return "Notification" in window ? Notification.permission : "denied";
  }

  function showPermissionHelp(checkbox, answer) {
    var help = document.getElementById("notification-permission-help");
    if (help) help.hidden = !(checkbox.checked && answer === "denied");
  }

  document.addEventListener("change", function (event) {
    var checkbox = event.target;
    if (checkbox.id !== "id_browser_notifications") return;
    if (!checkbox.checked || permission() !== "default") {
      showPermissionHelp(checkbox, permission());
      return;
    }
    var done = function (answer) {
      showPermissionHelp(checkbox, answer);
    };
    // Older Safari answers through the callback only, the others through the promise.
    var asked = Notification.requestPermission(done);
    if (asked && asked.then) asked.then(done);
  });

  document.addEventListener("DOMContentLoaded", function () {
    var checkbox = document.getElementById("id_browser_notifications");
    if (checkbox) showPermissionHelp(checkbox, permission());
  });
})();
