// Small behaviours for the lab page. Everything here is an enhancement: the
// page works with plain forms and links when this file does not run.
(function () {
  "use strict";

  // Copy buttons: put the command on the clipboard and say so.
  // Over plain HTTP (not localhost) browsers have no clipboard API: copy the old way.
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    const copied = document.execCommand("copy");
    area.remove();
    return copied ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }
  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const label = button.dataset.label || button.textContent;
    button.dataset.label = label;
    copyText(button.dataset.copy).then(function () {
      button.textContent = "Copied";
    }, function () {
      button.textContent = "Select and copy it";
    }).then(function () {
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

  // A new run panel arrives at the top of the output (a live region, so screen
  // readers hear it). Focus stays where the learner is: in the command box after
  // a typed command, on the button after a Run or a Preview. The output scrolls to
  // the new panel; on a phone, where the console stands below the steps, the page
  // shows it if it is out of sight.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.target.id !== "runs") return;
    const panel = event.target.querySelector("section.run");
    if (!panel) return;
    event.target.scrollTop = 0;
    const from = event.detail.requestConfig && event.detail.requestConfig.elt;
    const input = document.getElementById("command-input");
    if (from && from.id === "command-form" && input) {
      input.focus({ preventScroll: true });
      return;
    }
    const box = panel.getBoundingClientRect();
    if (box.top > window.innerHeight || box.bottom < 0) {
      panel.scrollIntoView({ block: "nearest" });
    }
  });

  // The workbench's tabs: Console and Files. Without this script both stand one
  // above the other; with it, one shows at a time.
  function showTab(name) {
    const tabs = document.querySelectorAll(".workbench [role=tab]");
    tabs.forEach(function (tab) {
      const chosen = tab.getAttribute("aria-controls") === name;
      tab.setAttribute("aria-selected", chosen ? "true" : "false");
      tab.tabIndex = chosen ? 0 : -1;
      const panel = document.getElementById(tab.getAttribute("aria-controls"));
      if (panel) panel.hidden = !chosen;
    });
  }
  function setUpTabs() {
    const list = document.querySelector(".workbench [role=tablist]");
    if (!list) return;
    list.hidden = false;
    showTab("console");
    list.addEventListener("click", function (event) {
      const tab = event.target.closest("[role=tab]");
      if (tab) showTab(tab.getAttribute("aria-controls"));
    });
    list.addEventListener("keydown", function (event) {
      if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
      const tabs = Array.from(list.querySelectorAll("[role=tab]"));
      const at = tabs.indexOf(document.activeElement);
      if (at < 0) return;
      const next = tabs[(at + (event.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
      showTab(next.getAttribute("aria-controls"));
      next.focus();
      event.preventDefault();
    });
  }

  // A Preview runs in the console: show it.
  document.addEventListener("submit", function (event) {
    if (event.target.closest && event.target.closest(".preview-form")) showTab("console");
  }, true);

  // Edit: the step's command goes into the command box, to change before running.
  document.addEventListener("click", function (event) {
    const button = event.target.closest("[data-edit]");
    if (!button) return;
    const input = document.getElementById("command-input");
    if (!input) return;
    showTab("console");
    input.value = button.dataset.edit;
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
  });

  // Keyboard shortcuts (listed on the page): "/" goes to the command box, Esc
  // clears it, "?" shows or hides the list.
  function typingIn(element) {
    return element && (element.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(element.tagName));
  }
  document.addEventListener("keydown", function (event) {
    const input = document.getElementById("command-input");
    if (!input || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "Escape" && document.activeElement === input) {
      input.value = "";
      return;
    }
    if (typingIn(document.activeElement)) return;
    if (event.key === "/") {
      event.preventDefault();
      showTab("console");
      input.focus();
    } else if (event.key === "?") {
      const list = document.querySelector("details.shortcuts");
      if (list) list.open = !list.open;
    }
  });

  // The sandbox's countdown. The server says when it ends and what time it was
  // then (so a wrong clock here does not matter); this counts down. Ten minutes
  // before the end, and at the end, it asks the server again: the sandbox may
  // have been extended, and the server's answer carries the warning.
  const asked = new Set();
  function timeLeftText(ms) {
    const seconds = Math.max(0, Math.floor(ms / 1000));
    if (seconds <= 600) return Math.floor(seconds / 60) + ":" + String(seconds % 60).padStart(2, "0");
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return minutes + " min";
    return Math.floor(minutes / 60) + " h " + String(minutes % 60).padStart(2, "0") + " min";
  }
  function tick() {
    document.querySelectorAll("[data-expires-at]").forEach(function (expiry) {
      if (!expiry.dataset.skew) {
        expiry.dataset.skew = String(Date.parse(expiry.dataset.now) - Date.now());
      }
      const left = Date.parse(expiry.dataset.expiresAt) - (Date.now() + Number(expiry.dataset.skew));
      const countdown = expiry.querySelector(".countdown");
      if (countdown) countdown.textContent = "(" + timeLeftText(left) + " left)";
      const soon = left <= 600000;
      const sandbox = expiry.closest("#sandbox");
      const warned = sandbox && sandbox.querySelector(".expiry-warning");
      const key = expiry.dataset.expiresAt + (left <= 0 ? " end" : " soon");
      if (soon && (!warned || left <= 0) && !asked.has(key)) {
        asked.add(key);
        htmx.ajax("GET", expiry.dataset.statusUrl, { target: "#sandbox", swap: "outerHTML" });
      }
    });
  }
  setInterval(tick, 1000);

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

  // A form that undoes something asks first (closing a workshop).
  document.addEventListener("submit", function (event) {
    const form = event.target.closest && event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
  });

  // Links to the console or the files (on a phone, the page's jump to the console).
  document.addEventListener("click", function (event) {
    const link = event.target.closest("a[href='#console'], a[href='#files']");
    if (link) showTab(link.getAttribute("href").slice(1));
  });

  // A returning learner lands where they left off.
  function showCurrentStep() {
    const current = document.querySelector(".step.current");
    if (current && !location.hash && current.previousElementSibling) {
      current.scrollIntoView({ block: "start" });
    }
  }

  document.addEventListener("DOMContentLoaded", setUpHistory);
  document.addEventListener("DOMContentLoaded", setUpTabs);
  document.addEventListener("DOMContentLoaded", showCurrentStep);
})();
