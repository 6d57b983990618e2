// Comparing videos side by side. The compare page's videos play as one: one play/pause, one
// scrubber, frame steps (buttons, and , / . on the keyboard; space plays or pauses). The first
// video leads; the others follow it and are put back when they drift more than a frame or so.
// In the gallery, the bulk bar's Compare button is enabled for two to four selected videos.
// Listeners only: strict CSP.
(function () {
  "use strict";

  // How far a follower may drift from the leader before it is put back, in seconds.
  var DRIFT = 0.05;

  function timecode(seconds) {
    var tenths = Math.round(Math.max(seconds, 0) * 10);
    var minutes = Math.floor(tenths / 600);
    var rest = tenths - minutes * 600;
    var whole = Math.floor(rest / 10);
    return minutes + ":" + (whole < 10 ? "0" : "") + whole + "." + (rest % 10);
  }

  function setUp(root) {
    var players = Array.prototype.slice.call(root.querySelectorAll("video.compare-player"));
    var controls = root.querySelector(".compare-controls");
    if (!players.length || !controls) return;
    var leader = players[0];
    var followers = players.slice(1);
    var play = document.getElementById("compare-play");
    var scrubber = document.getElementById("compare-scrubber");
    var clock = document.getElementById("compare-time");
    var fps = parseFloat(root.getAttribute("data-fps")) || 24;
    var seeking = false;

    players.forEach(function (video) { video.controls = false; });
    controls.hidden = false;

    function longest() {
      return players.reduce(function (most, video) {
        return isFinite(video.duration) ? Math.max(most, video.duration) : most;
      }, 0);
    }

    function clamp(video, seconds) {
      var end = isFinite(video.duration) ? video.duration : seconds;
      return Math.min(Math.max(seconds, 0), end);
    }

    function show() {
      var now = leader.currentTime;
      if (!seeking) scrubber.value = String(now);
      clock.textContent = timecode(now);
      play.textContent = leader.paused ? play.getAttribute("data-play") : play.getAttribute("data-pause");
      root.classList.toggle("playing", !leader.paused);
    }

    // Every video to `seconds`, paused while they get there, then on together if they were.
    function seekAll(seconds) {
      var wasPlaying = !leader.paused;
      players.forEach(function (video) { video.pause(); });
      var waiting = players.length;
      function arrived() {
        waiting -= 1;
        if (waiting === 0) {
          seeking = false;
          if (wasPlaying) playAll();
          show();
        }
      }
      seeking = true;
      players.forEach(function (video) {
        // A video with nothing loaded yet starts there when it loads, without a seek.
        if (video.readyState === 0) { video.currentTime = seconds; arrived(); return; }
        video.addEventListener("seeked", arrived, {once: true});
        video.currentTime = clamp(video, seconds);
      });
      show();
    }

    function playAll() {
      players.forEach(function (video) {
        if (video.currentTime >= video.duration) return;
        var started = video.play();
        if (started && started.catch) started.catch(function () { /* paused again meanwhile */ });
      });
    }

    function toggle() {
      if (leader.paused) {
        if (leader.ended) { seekAll(0); playAll(); } else { playAll(); }
      } else {
        players.forEach(function (video) { video.pause(); });
      }
    }

    function step(frames) {
      players.forEach(function (video) { video.pause(); });
      seekAll(leader.currentTime + frames / fps);
    }

    leader.addEventListener("loadedmetadata", function () { scrubber.max = String(longest() || 1); });
    followers.forEach(function (video) {
      video.addEventListener("loadedmetadata", function () { scrubber.max = String(longest() || 1); });
    });
    if (leader.readyState >= 1) scrubber.max = String(longest() || 1);

    leader.addEventListener("timeupdate", function () {
      if (!seeking && !leader.paused) {
        followers.forEach(function (video) {
          var target = clamp(video, leader.currentTime);
          if (Math.abs(video.currentTime - target) > DRIFT && !video.ended) video.currentTime = target;
        });
      }
      show();
    });
    ["play", "pause", "ended", "seeked"].forEach(function (name) { leader.addEventListener(name, show); });
    leader.addEventListener("ended", function () { followers.forEach(function (video) { video.pause(); }); });

    play.addEventListener("click", toggle);
    document.getElementById("compare-back").addEventListener("click", function () { step(-1); });
    document.getElementById("compare-forward").addEventListener("click", function () { step(1); });
    scrubber.addEventListener("input", function () { seekAll(parseFloat(scrubber.value) || 0); });

    document.addEventListener("keydown", function (event) {
      if (event.defaultPrevented || event.ctrlKey || event.altKey || event.metaKey) return;
      var target = event.target;
      if (target.closest && target.closest("input:not([type=range]), textarea, select, [contenteditable]")) return;
      if (event.key === " ") {
        // On a button or a link, space does what it does there.
        if (target.closest && target.closest("a, button")) return;
        toggle();
      } else if (event.key === ",") {
        step(-1);
      } else if (event.key === ".") {
        step(1);
      } else {
        return;
      }
      event.preventDefault();
    });
    show();
  }

  // The gallery's bulk bar: Compare takes two to four ticked videos.
  function drawCompareButton() {
    var button = document.getElementById("bulk-compare");
    var form = document.getElementById("bulk");
    if (!button || !form) return;
    var all = form.querySelector("input[name=all][data-carried]");
    var ticked = document.querySelectorAll("#cards .select-job:checked").length;
    var carried = form.querySelectorAll("input[name=ids][data-carried]").length;
    var count = ticked + carried;
    button.disabled = Boolean(all) || count < 2 || count > 4;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.querySelector(".compare");
    if (root) setUp(root);
    drawCompareButton();
  });
  document.addEventListener("click", function () { window.setTimeout(drawCompareButton, 0); });
  document.addEventListener("htmx:afterSwap", drawCompareButton);
  window.addEventListener("pageshow", drawCompareButton);
})();
