// Comments on a job's page: a timecode or a mark seeks the player and plays from there; the
// marks of the pinned comments are placed along the track under the player (and on the
// filmstrip, where the page has one); "Pin to current time" sends the player's time with the
// comment. And every page's mention notifier waits while its tab is hidden. Event listeners and
// CSSOM only, so it runs under a strict CSP.
(function () {
  "use strict";

  function player() {
    return document.querySelector("video.player");
  }

  function seek(seconds) {
    var video = player();
    if (!video || !isFinite(seconds)) return;
    var go = function () {
      video.currentTime = seconds;
      var playing = video.play();
      // A browser that refuses to play without a gesture still shows the frame.
      if (playing && playing.catch) playing.catch(function () {});
    };
    if (video.readyState >= 1) go();
    else {
      video.addEventListener("loadedmetadata", go, { once: true });
      if (video.preload === "none") video.load();
    }
  }

  function duration(track) {
    var video = player();
    if (video && isFinite(video.duration) && video.duration > 0) return video.duration;
    return parseFloat(track.getAttribute("data-duration")) || 0;
  }

  // One mark per pin, at its place along `track`, as a share of the video's length.
  function placeMarks(track, marks, length) {
    Array.prototype.forEach.call(marks, function (mark) {
      var at = parseFloat(mark.getAttribute("data-at"));
      var share = length > 0 ? Math.min(Math.max(at / length, 0), 1) : 0;
      mark.style.left = (share * 100).toFixed(3) + "%";
    });
  }

  function layout() {
    var video = player();
    if (video && !video.hasAttribute("data-marks-watched")) {
      video.setAttribute("data-marks-watched", "");
      video.addEventListener("loadedmetadata", layout);
    }
    // The track sits right under the player; it is drawn with the comments, which the page's
    // own refresh of the player leaves alone.
    var track = document.querySelector("#comments .comment-marks");
    if (track && video) {
      Array.prototype.forEach.call(document.querySelectorAll(".comment-marks-player"), function (old) {
        old.remove();
      });
      track.classList.add("comment-marks-player");
      video.insertAdjacentElement("afterend", track);
    } else if (!track) {
      track = document.querySelector(".comment-marks-player");
      // The comments were redrawn without pins: their marks go too.
      if (track && !document.querySelector("#comments .timecode")) {
        track.remove();
        track = null;
      }
    }
    if (!track) return;
    var length = duration(track);
    var marks = track.querySelectorAll(".comment-mark");
    placeMarks(track, marks, length);
    // The filmstrip (the job page's spritesheet, where present) carries the same marks.
    var strip = document.querySelector(".filmstrip");
    if (!strip) return;
    var old = strip.querySelector(".comment-marks-strip");
    if (old) old.remove();
    var copy = document.createElement("div");
    copy.className = "comment-marks comment-marks-strip";
    copy.setAttribute("aria-hidden", "true");
    Array.prototype.forEach.call(marks, function (mark) {
      var clone = mark.cloneNode(true);
      clone.tabIndex = -1;
      copy.appendChild(clone);
    });
    strip.appendChild(copy);
    placeMarks(copy, copy.querySelectorAll(".comment-mark"), length);
  }

  document.addEventListener("click", function (event) {
    var target = event.target.closest && event.target.closest(".timecode[data-at], .comment-mark");
    if (!target) return;
    event.preventDefault();
    seek(parseFloat(target.getAttribute("data-at")));
  });

  // Before htmx reads the form (its listener is on the form; this one runs first, capturing).
  document.addEventListener(
    "submit",
    function (event) {
      var form = event.target;
      if (!form.classList || !form.classList.contains("comment-form")) return;
      var at = form.querySelector("input[name=at_seconds]");
      var pin = form.querySelector("input[name=pin]");
      var video = player();
      if (!at) return;
      at.value = pin && pin.checked && video ? video.currentTime.toFixed(3) : "";
    },
    true
  );

  // The mention notifier asks nothing while its tab is hidden; it asks again once a minute
  // after the tab is shown.
  document.addEventListener("htmx:confirm", function (event) {
    if (event.target.id === "mention-notifier" && document.hidden) event.preventDefault();
  });

  // htmx fires htmx:load for the page once it is ready, and for what each swap adds.
  document.addEventListener("htmx:load", layout);
})();
