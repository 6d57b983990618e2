// Scrubbing through a job's spritesheet. On a card, moving the pointer across the picture (or
// dragging a finger along it) shows the frame under it, without loading the video; the sheet is
// fetched on the first hover only, and the thumbnail comes back on leaving. On the job page, the
// filmstrip's frames are cut from the sheet, a click seeks the player to that frame's moment, and
// the frame playing is marked. Styles are set through the CSSOM only: strict CSP.
(function () {
  "use strict";

  function number(el, name, fallback) {
    var value = parseFloat(el.getAttribute(name));
    return isFinite(value) && value > 0 ? value : fallback;
  }

  function grid(sheet) {
    var columns = Math.round(number(sheet, "data-columns", 5));
    var rows = Math.round(number(sheet, "data-rows", 2));
    return {columns: columns, rows: rows, tiles: Math.round(number(sheet, "data-tiles", columns * rows))};
  }

  // Show cell (column, row) of the sheet as the whole background of `el`.
  function showTile(el, url, layout, column, row) {
    el.style.backgroundImage = "url(\"" + url.replace(/["\\]/g, "") + "\")";
    el.style.backgroundSize = (layout.columns * 100) + "% " + (layout.rows * 100) + "%";
    var x = layout.columns > 1 ? column / (layout.columns - 1) * 100 : 0;
    var y = layout.rows > 1 ? row / (layout.rows - 1) * 100 : 0;
    el.style.backgroundPosition = x + "% " + y + "%";
  }

  // Cards: the overlay covers the picture as the thumbnail shows it (contained in the box).
  function place(overlay, thumb) {
    var box = thumb.getBoundingClientRect();
    var aspect = number(overlay, "data-aspect", 16 / 9);
    var width = box.width, height = box.height;
    if (box.width / box.height > aspect) width = height * aspect; else height = width / aspect;
    overlay.style.left = (box.width - width) / 2 + "px";
    overlay.style.top = (box.height - height) / 2 + "px";
    overlay.style.width = width + "px";
    overlay.style.height = height + "px";
    return box;
  }

  function scrub(thumb, overlay, clientX) {
    var layout = grid(overlay);
    var box = place(overlay, thumb);
    var share = Math.min(Math.max((clientX - box.left) / box.width, 0), 0.9999);
    var tile = Math.min(layout.tiles - 1, Math.floor(share * layout.tiles));
    if (overlay.getAttribute("data-frame") === String(tile) && !overlay.hidden) return;
    overlay.setAttribute("data-frame", String(tile));
    showTile(overlay, overlay.getAttribute("data-sprite"), layout,
      tile % layout.columns, Math.floor(tile / layout.columns));
    // Shown once the sheet is here: until then the thumbnail stays.
    if (overlay.getAttribute("data-loaded") === "1") overlay.hidden = false;
  }

  function load(overlay) {
    if (overlay.hasAttribute("data-loaded")) return;
    overlay.setAttribute("data-loaded", "0");
    var picture = new Image();
    picture.addEventListener("load", function () {
      overlay.setAttribute("data-loaded", "1");
      if (overlay.getAttribute("data-hover") === "1") overlay.hidden = false;
    });
    picture.src = overlay.getAttribute("data-sprite");
  }

  function cardOf(event) {
    var thumb = event.target.closest && event.target.closest("a.thumb");
    var overlay = thumb ? thumb.querySelector(".scrub[data-sprite]") : null;
    return overlay ? {thumb: thumb, overlay: overlay} : null;
  }

  document.addEventListener("pointermove", function (event) {
    // A mouse scrubs by hovering; a finger or a pen while it touches.
    if (event.pointerType !== "mouse" && event.buttons === 0) return;
    var card = cardOf(event);
    if (!card) return;
    card.overlay.setAttribute("data-hover", "1");
    load(card.overlay);
    scrub(card.thumb, card.overlay, event.clientX);
  });

  function leave(event) {
    var card = cardOf(event);
    if (!card) return;
    if (event.type === "pointerout" && card.thumb.contains(event.relatedTarget)) return;
    card.overlay.setAttribute("data-hover", "0");
    card.overlay.hidden = true;
  }
  document.addEventListener("pointerout", leave);
  document.addEventListener("pointercancel", leave);
  document.addEventListener("pointerup", function (event) {
    if (event.pointerType !== "mouse") leave(event);
  });

  // The job page's filmstrip.
  function player() { return document.querySelector("video.player"); }

  function drawFilmstrips() {
    Array.prototype.forEach.call(document.querySelectorAll(".filmstrip[data-sprite]:not([data-drawn])"), function (strip) {
      var layout = grid(strip);
      var url = strip.getAttribute("data-sprite");
      Array.prototype.forEach.call(strip.querySelectorAll(".filmstrip-frame"), function (button) {
        var tile = button.querySelector(".filmstrip-tile");
        if (!tile) return;
        tile.style.aspectRatio = String(number(strip, "data-aspect", 16 / 9));
        showTile(tile, url, layout, parseInt(button.getAttribute("data-column"), 10) || 0,
          parseInt(button.getAttribute("data-row"), 10) || 0);
      });
      strip.setAttribute("data-drawn", "");
    });
  }

  function mark(index) {
    Array.prototype.forEach.call(document.querySelectorAll(".filmstrip .filmstrip-frame"), function (button) {
      var current = button.getAttribute("data-frame") === String(index);
      button.classList.toggle("current", current);
      if (current) button.setAttribute("aria-current", "true"); else button.removeAttribute("aria-current");
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest(".filmstrip-frame");
    var video = player();
    if (!button || !video) return;
    var seconds = number(button, "data-seconds", 0);
    if (isFinite(video.duration) && video.duration > 0) seconds = Math.min(seconds, video.duration);
    video.currentTime = seconds;
    mark(button.getAttribute("data-frame"));
  });

  // Media events do not bubble: listened for on their way down.
  document.addEventListener("timeupdate", function (event) {
    var video = event.target;
    if (!video.matches || !video.matches("video.player")) return;
    var strip = document.querySelector(".filmstrip");
    if (!strip || !isFinite(video.duration) || video.duration <= 0) return;
    var tiles = grid(strip).tiles;
    mark(Math.min(tiles - 1, Math.floor(video.currentTime / video.duration * tiles)));
  }, true);

  document.addEventListener("DOMContentLoaded", drawFilmstrips);
  document.addEventListener("htmx:afterSwap", drawFilmstrips);
})();
