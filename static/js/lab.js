// Small behaviours for the lab page. Everything here is an enhancement: the
// page works with plain forms and links when this file does not run.
(function () {
  "use strict";

  // Copy buttons: put the command on the clipboard and say so.
  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    navigator.clipboard.writeText(button.dataset.copy).then(function () {
      const label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    });
  });

  // The command box: Enter runs (a form submit), ↑/↓ walk the history.
  function setUpHistory() {
    const input = document.getElementById("command-input");
    const source = document.getElementById("command-history");
    if (!input || !source) return;
    const history = JSON.parse(source.textContent || "[]");
    let position = history.length;
    input.addEventListener("keydown", function (event) {
      if (event.key === "ArrowUp" && position > 0) {
        position -= 1;
      } else if (event.key === "ArrowDown" && position < history.length) {
        position += 1;
      } else {
        return;
      }
      event.preventDefault();
      input.value = history[position] || "";
    });
    input.form.addEventListener("htmx:afterRequest", function () {
      if (input.value && history[history.length - 1] !== input.value) history.push(input.value);
      position = history.length;
      input.value = "";
    });
  }

  // A new run panel arrives: move focus to it, so screen readers follow.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.target.id === "runs") {
      const panel = event.target.querySelector("section.run");
      if (panel) panel.focus({ preventScroll: false });
    }
  });

  // Where SSE is blocked (a proxy, a firewall), fall back to polling the
  // stored run; the polled panel keeps polling until the run ends.
  document.addEventListener("htmx:sseError", function (event) {
    const panel = event.target.closest("section.run");
    if (!panel || panel.dataset.polling) return;
    panel.dataset.polling = "1";
    panel.removeAttribute("sse-connect");
    htmx.ajax("GET", panel.dataset.pollUrl, { target: panel, swap: "outerHTML" });
  });

  // The page's live channel (the lab page's record, the instructor's board): where
  // SSE is blocked, fetch the fresh state every few seconds instead, slower when
  // the tab is hidden.
  document.addEventListener("htmx:sseError", function (event) {
    const channel = event.target.closest("[data-refresh-url]");
    if (!channel || channel.dataset.polling) return;
    channel.dataset.polling = "1";
    channel.removeAttribute("sse-connect");
    let last = 0;
    setInterval(function () {
      const every = document.hidden ? 30000 : 5000;
      if (Date.now() - last < every) return;
      last = Date.now();
      const target = channel.dataset.refreshTarget;
      htmx.ajax("GET", channel.dataset.refreshUrl,
        target ? { target: target, swap: "outerHTML" } : { swap: "none" });
    }, 1000);
  });

  // Cancel: the run's stream brings the end (and removes the button); until then,
  // say it is under way. A refusal (503: the worker could not be told) re-arms it.
  document.addEventListener("htmx:beforeRequest", function (event) {
    const form = event.target.closest("form.run-cancel");
    if (!form) return;
    const button = form.querySelector("button");
    button.disabled = true;
    button.textContent = "Cancelling…";
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    const form = event.target.closest("form.run-cancel");
    if (!form || event.detail.successful) return;
    const button = form.querySelector("button");
    button.disabled = false;
    button.textContent = "Cancel";
  });

  // A returning learner lands where they left off.
  function showCurrentStep() {
    const current = document.querySelector(".step.current");
    if (current && !location.hash && current.previousElementSibling) {
      current.scrollIntoView({ block: "start" });
    }
  }

  document.addEventListener("DOMContentLoaded", setUpHistory);
  document.addEventListener("DOMContentLoaded", showCurrentStep);
})();
