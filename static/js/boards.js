// A board's order: drag a card onto another to put it before (left half) or after (right half)
// it, posted like the Move up / Move down buttons (which work without this file). After the
// board's cards come back, the focus returns to the button that was pressed, so moving a card
// several places by keyboard is Enter, Enter, Enter. Listeners only: strict CSP.
(function () {
  "use strict";

  var dragged = null;
  var pressed = null;

  function region() { return document.getElementById("board-items"); }

  function item(target) {
    return target && target.closest ? target.closest("#board-items .board-item[draggable=true]") : null;
  }

  function clearMarks() {
    Array.prototype.slice.call(document.querySelectorAll(".board-item.drop-before, .board-item.drop-after"))
      .forEach(function (el) { el.classList.remove("drop-before", "drop-after"); });
  }

  function side(el, event) {
    var box = el.getBoundingClientRect();
    return event.clientX < box.left + box.width / 2 ? "before" : "after";
  }

  document.addEventListener("dragstart", function (event) {
    var el = item(event.target);
    if (!el) return;
    dragged = el;
    el.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", el.getAttribute("data-job"));
  });

  document.addEventListener("dragend", function () {
    if (dragged) dragged.classList.remove("dragging");
    dragged = null;
    clearMarks();
  });

  document.addEventListener("dragover", function (event) {
    var el = item(event.target);
    if (!dragged || !el || el === dragged) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    clearMarks();
    el.classList.add(side(el, event) === "before" ? "drop-before" : "drop-after");
  });

  document.addEventListener("drop", function (event) {
    var el = item(event.target);
    var list = region();
    if (!dragged || !el || el === dragged || !list) return;
    event.preventDefault();
    var values = {job: dragged.getAttribute("data-job")};
    values[side(el, event) + "_job"] = el.getAttribute("data-job");
    ["after", "before"].forEach(function (key) {
      var cursor = list.getAttribute("data-page-" + key);
      if (cursor) values[key] = cursor;
    });
    var token = document.querySelector("#board-items input[name=csrfmiddlewaretoken]");
    if (token) values.csrfmiddlewaretoken = token.value;
    pressed = {job: values.job, move: null};
    clearMarks();
    window.htmx.ajax("POST", list.getAttribute("data-move-url"), {
      source: list, target: "#board-items", swap: "outerHTML", values: values
    });
  });

  // Remember the button pressed, to give the focus back to it in the new cards.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.closest || !form.closest("#board-items")) return;
    var button = event.submitter;
    var job = form.querySelector("input[name=job]");
    pressed = job ? {job: job.value, move: button ? button.getAttribute("data-move") : null} : null;
  });

  document.addEventListener("htmx:afterSwap", function () {
    if (!pressed) return;
    var card = document.getElementById("board-item-" + pressed.job);
    var move = pressed.move;
    pressed = null;
    if (!card) {
      var first = document.querySelector("#board-items [data-move], #board-items a.thumb");
      if (first) first.focus();
      return;
    }
    var target = (move && card.querySelector("[data-move=" + move + "]"))
      || card.querySelector("[data-move=up], [data-move=down]")
      || card.querySelector("a.thumb");
    if (target) target.focus();
  });
})();
