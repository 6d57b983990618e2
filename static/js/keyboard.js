// Keyboard shortcuts. Gallery: j/k or the arrow keys move between cards, Enter opens (the card
// is a link), x ticks it for a bulk action, # or Delete moves it (or the ticked ones) to the trash
// after a confirmation page, n goes to the prompt, / to search, ? shows the list. Job page: space plays or
// pauses, ←/→ open the neighbouring jobs when the page has them (rel=prev/next links). Never
// while typing in a field, and never with Ctrl, Alt or Meta held. Listeners only: strict CSP.
(function () {
  "use strict";

  function typing(target) {
    if (!target || !target.closest) return false;
    // A ticked box or a button takes shortcuts; a field being typed in does not.
    return Boolean(target.closest(
      "input:not([type=checkbox]):not([type=radio]):not([type=button]):not([type=submit]), " +
      "textarea, select, [contenteditable=''], [contenteditable=true]"));
  }

  function cards() {
    return Array.prototype.slice.call(document.querySelectorAll("#cards .job-card a.thumb"));
  }

  function moveCard(step) {
    var links = cards();
    if (!links.length) return;
    var current = document.activeElement && document.activeElement.closest
      ? document.activeElement.closest(".job-card") : null;
    var index = current ? links.indexOf(current.querySelector("a.thumb")) : -1;
    var next = index === -1 ? (step > 0 ? 0 : links.length - 1)
      : Math.min(Math.max(index + step, 0), links.length - 1);
    links[next].focus();
    links[next].scrollIntoView({block: "nearest"});
  }

  function columns() {
    var links = cards();
    if (links.length < 2) return 1;
    var top = links[0].getBoundingClientRect().top;
    var count = 0;
    for (var i = 0; i < links.length && links[i].getBoundingClientRect().top === top; i++) count++;
    return Math.max(count, 1);
  }

  function focusField(id) {
    var field = document.getElementById(id);
    if (!field) return false;
    field.focus();
    if (field.select) field.select();
    return true;
  }

  function toggleHelp() {
    var dialog = document.getElementById("shortcuts");
    if (!dialog || !dialog.showModal) return;
    if (dialog.open) dialog.close(); else dialog.showModal();
  }

  function focusedCard() {
    var active = document.activeElement;
    return active && active.closest ? active.closest("#cards .job-card") : null;
  }

  function tickFocused() {
    var card = focusedCard();
    var box = card ? card.querySelector(".select-job") : null;
    if (box) box.click();
    return Boolean(box);
  }

  // The ticked videos if there are any, else the focused one: each way through a confirmation.
  function trash() {
    var form = document.getElementById("bulk");
    var button = document.getElementById("bulk-trash");
    if (!form || !button) return false;
    if (!form.hidden) {
      form.requestSubmit(button);
      return true;
    }
    var card = focusedCard();
    var link = card ? card.querySelector("a.thumb") : null;
    if (link) window.location.assign(link.pathname + "delete" + link.search);
    return Boolean(link);
  }

  function follow(rel) {
    var link = document.querySelector("a[rel~=" + rel + "][data-key-nav]");
    if (link) window.location.assign(link.href);
    return Boolean(link);
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.altKey || event.metaKey) return;
    if (typing(event.target)) return;
    var onGallery = Boolean(document.getElementById("cards"));
    var player = document.querySelector("video.player");
    var handled = true;
    switch (event.key) {
      case "?": toggleHelp(); break;
      case "/": handled = focusField("q"); break;
      case "n": handled = focusField("id_prompt"); break;
      case "x": handled = onGallery && tickFocused(); break;
      case "#": case "Delete": handled = onGallery && trash(); break;
      case "j": handled = onGallery && (moveCard(1), true); break;
      case "k": handled = onGallery && (moveCard(-1), true); break;
      case "ArrowDown": handled = onGallery && (moveCard(columns()), true); break;
      case "ArrowUp": handled = onGallery && (moveCard(-columns()), true); break;
      case "ArrowRight":
        handled = onGallery ? (moveCard(1), true) : follow("next");
        break;
      case "ArrowLeft":
        handled = onGallery ? (moveCard(-1), true) : follow("prev");
        break;
      case " ":
        // On a button or a link, space does what it does there.
        if (!player || (event.target.closest && event.target.closest("a, button, video"))) {
          handled = false;
        } else if (player.paused) {
          player.play();
        } else {
          player.pause();
        }
        break;
      default: handled = false;
    }
    if (handled) event.preventDefault();
  });
})();
