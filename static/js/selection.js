// Selecting gallery cards for a bulk action. The selection lives in the tab (sessionStorage),
// one per set of filters, so it survives paging: the bulk form carries the ids ticked on other
// pages as hidden inputs. Shift-click ticks a range; "Select all matching" asks the server how
// many match and switches the form to all=1. Listeners only: strict CSP.
(function () {
  "use strict";

  var lastBox = null;

  function bar() { return document.getElementById("bulk"); }
  function boxes() { return Array.prototype.slice.call(document.querySelectorAll("#cards .select-job")); }
  function storageKey(form) { return "muxweb:selection:" + form.getAttribute("data-selection"); }

  function load(form) {
    try {
      var state = JSON.parse(window.sessionStorage.getItem(storageKey(form)));
      if (state && Array.isArray(state.ids)) return state;
    } catch (e) { /* an unreadable selection is an empty one */ }
    return {ids: [], all: false, allText: ""};
  }

  function save(form, state) {
    try { window.sessionStorage.setItem(storageKey(form), JSON.stringify(state)); } catch (e) { /* private mode */ }
  }

  function carry(form, name, value) {
    var input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    input.setAttribute("data-carried", "");
    form.appendChild(input);
  }

  // Draw the state: ticks, the hidden inputs for other pages, the count, the bar.
  function draw() {
    var form = bar();
    if (!form) return;
    var state = load(form);
    var chosen = {};
    state.ids.forEach(function (id) { chosen[id] = true; });
    var onPage = {};
    boxes().forEach(function (box) {
      box.checked = state.all || Boolean(chosen[box.value]);
      onPage[box.value] = true;
    });
    Array.prototype.slice.call(form.querySelectorAll("[data-carried]")).forEach(function (el) { el.remove(); });
    if (state.all) {
      carry(form, "all", "1");
    } else {
      state.ids.forEach(function (id) { if (!onPage[id]) carry(form, "ids", id); });
    }
    var count = document.getElementById("bulk-count");
    if (count && !count.querySelector("[data-all-matching]")) {
      count.textContent = state.all ? state.allText
        : count.getAttribute("data-template").replace("{n}", String(state.ids.length));
    }
    var selectAll = document.getElementById("select-all");
    if (selectAll) selectAll.hidden = state.all;
    var empty = !state.all && state.ids.length === 0;
    form.hidden = empty;
    document.body.classList.toggle("selecting", !empty);
  }

  function setTicked(form, state, box, ticked) {
    var at = state.ids.indexOf(box.value);
    if (ticked && at === -1) state.ids.push(box.value);
    if (!ticked && at !== -1) state.ids.splice(at, 1);
  }

  function toggled(box, shift) {
    var form = bar();
    if (!form) return;
    var state = load(form);
    if (state.all) {
      // Unticking one of "all matching" leaves the ticks of this page.
      state = {ids: [], all: false, allText: ""};
      boxes().forEach(function (other) { if (other !== box) state.ids.push(other.value); });
    }
    var list = boxes();
    if (shift && lastBox && list.indexOf(lastBox) !== -1) {
      var from = list.indexOf(lastBox), to = list.indexOf(box);
      var step = from < to ? 1 : -1;
      for (var i = from; i !== to + step; i += step) setTicked(form, state, list[i], box.checked);
    } else {
      setTicked(form, state, box, box.checked);
    }
    lastBox = box;
    save(form, state);
    var count = document.getElementById("bulk-count");
    if (count) count.textContent = "";
    draw();
  }

  function clear(form) {
    save(form, {ids: [], all: false, allText: ""});
    var count = document.getElementById("bulk-count");
    if (count) count.textContent = "";
  }

  document.addEventListener("click", function (event) {
    var box = event.target.closest && event.target.closest(".select-job");
    if (box) { toggled(box, event.shiftKey); return; }
    if (event.target.id === "clear-selection") {
      var form = bar();
      if (form) { clear(form); draw(); }
    }
  });

  // The keyboard's x ticks the focused card (keyboard.js clicks its box).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var submitter = event.submitter;
    if (!form.hasAttribute("data-selection") || !submitter || !submitter.hasAttribute("data-clears-selection")) return;
    clear(form);
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    var answer = event.detail.target && event.detail.target.querySelector
      ? event.detail.target.querySelector("[data-all-matching]") : null;
    var form = bar();
    if (answer && form) {
      save(form, {ids: [], all: true, allText: answer.textContent});
    }
    draw();
  });

  document.addEventListener("DOMContentLoaded", draw);
  window.addEventListener("pageshow", draw);
})();
