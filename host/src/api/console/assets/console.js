// centralino console: the overview's live updates. This is the console's only script
// (its Content-Security-Policy allows no inline script): it opens the server-sent event
// stream `events` and puts each `overview` event's HTML, built and escaped by the host
// in the page's language, in place of `#live`. Every other page works without it.
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  var live = document.getElementById("live");
  if (!live || !window.EventSource) {
    return;
  }
  var state = document.getElementById("live-state");
  function show(connected) {
    if (!state) {
      return;
    }
    state.hidden = false;
    state.textContent = connected ? state.dataset.on : state.dataset.off;
    state.className = "live " + (connected ? "on" : "off");
  }
  var source = new EventSource("events");
  source.addEventListener("open", function () {
    show(true);
  });
  source.addEventListener("error", function () {
    show(false);
  });
  source.addEventListener("overview", function (event) {
    live.innerHTML = event.data;
    show(true);
  });
});
