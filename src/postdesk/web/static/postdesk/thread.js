/* Postdesk conversation page: the small behaviours htmx does not cover. Plain JavaScript, no build step,
 * no inline code (the page's CSP is script-src 'self'), no eval (htmx runs with allowEval: false).
 *
 * - Error answers (4xx) carry a clear message as a fragment: swap them in like successes.
 * - Live refreshes (`pd:changed` on <body>): regions with data-skip-kinds ignore those kinds (a teammate's
 *   draft autosave does not reload the thread); the thread (data-defer-while-composing) is NOT replaced
 *   while the agent is writing a reply or forward and the change came from someone else: the agent is
 *   told instead, and the reply form keeps the seen_event_id of what is really on screen, so the server
 *   holds the send (collision) until they have looked.
 * - The Reply / Reply all / Forward / Note links open their editor in place; reply-all swaps To/Cc.
 * - "Sending in N s — Undo" counts down; the mail frame's "Show quoted text" / "Show remote images".
 * - Snooze forms learn the browser's time zone; Ctrl+Enter (or Cmd+Enter) sends the editor's form.
 */
(function () {
  "use strict";

  var body = document.body;

  function agentId() {
    return body.dataset.agentId || "";
  }

  function isOwn(detail) {
    if (!detail) return false;
    if (detail.own) return true;
    return detail.actor !== undefined && detail.actor !== null && String(detail.actor) === agentId();
  }

  function isComposing() {
    var areas = document.querySelectorAll("textarea[data-composing]");
    for (var i = 0; i < areas.length; i++) {
      if (areas[i].value.trim()) return true;
    }
    return false;
  }

  // --- htmx: errors are fragments too ---------------------------------------------------------------

  body.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    if (status >= 400 && status < 500) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  function showFailure() {
    var result = document.getElementById("action-result");
    if (!result) return;
    var p = document.createElement("p");
    p.className = "error";
    p.setAttribute("role", "alert");
    p.textContent = result.dataset.textFailed || "The server could not be reached. Nothing was lost: try again.";
    result.replaceChildren(p);
  }

  // A menu (snooze, merge, spam) closes once its action went through.
  body.addEventListener("htmx:afterRequest", function (event) {
    var xhr = event.detail.xhr;
    if (!xhr || xhr.status < 200 || xhr.status >= 300) return;
    var menu = event.detail.elt.closest && event.detail.elt.closest("details.action-menu");
    if (menu) menu.open = false;
  });

  body.addEventListener("htmx:responseError", showFailure);
  body.addEventListener("htmx:sendError", showFailure);

  // --- live refreshes -------------------------------------------------------------------------------

  body.addEventListener("htmx:confirm", function (event) {
    var trigger = event.detail.triggeringEvent;
    if (!trigger || trigger.type !== "pd:changed") return;
    var elt = event.detail.elt;
    var detail = trigger.detail || {};
    var skip = (elt.dataset.skipKinds || "").split(/\s+/);
    if (detail.kind && skip.indexOf(detail.kind) !== -1) {
      event.preventDefault();
      return;
    }
    if (elt.hasAttribute("data-defer-while-composing") && !isOwn(detail) && isComposing()) {
      event.preventDefault();
      var notice = document.getElementById("new-activity");
      if (notice) notice.hidden = false;
    }
  });

  // --- editors --------------------------------------------------------------------------------------

  function applyReplyMode(form, mode) {
    var to = form.querySelector('[data-address-field="to"]');
    var cc = form.querySelector('[data-address-field="cc"]');
    var all = mode === "reply_all";
    if (to && !to.dataset.edited) to.value = (all ? form.dataset.allTo : form.dataset.replyTo) || "";
    if (cc && !cc.dataset.edited) cc.value = (all ? form.dataset.allCc : form.dataset.replyCc) || "";
    var radio = form.querySelector('input[name="mode"][value="' + (all ? "reply_all" : "reply") + '"]');
    if (radio) radio.checked = true;
  }

  function openEditor(which) {
    var kind = which === "reply_all" ? "reply" : which;
    var box = document.getElementById(kind + "-box");
    if (!box) return false;
    box.open = true;
    var form = document.getElementById(kind + "-form");
    if (kind === "reply" && form) applyReplyMode(form, which);
    var text = document.getElementById(kind + "-text");
    box.scrollIntoView({ block: "nearest" });
    if (text) text.focus();
    return true;
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-compose]");
    if (link && openEditor(link.dataset.compose)) {
      event.preventDefault();
      return;
    }
    var toggle = event.target.closest && event.target.closest("a[data-frame-toggle]");
    if (toggle) {
      var frame = document.getElementById(toggle.dataset.frame);
      if (!frame) return;
      event.preventDefault();
      var flag = toggle.dataset.frameToggle;
      var on = frame.dataset[flag] !== "1";
      frame.dataset[flag] = on ? "1" : "";
      toggle.setAttribute("aria-pressed", on ? "true" : "false");
      var params = [];
      if (frame.dataset.full === "1") params.push("full=1");
      if (frame.dataset.images === "1") params.push("images=1");
      frame.src = frame.dataset.baseSrc + (params.length ? "?" + params.join("&") : "");
    }
  });

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches && target.matches('#reply-form input[name="mode"]')) {
      applyReplyMode(target.form, target.value);
    }
  });

  document.addEventListener("input", function (event) {
    var target = event.target;
    if (target.matches && target.matches("[data-address-field]")) target.dataset.edited = "1";
  });

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
    if (!(target instanceof HTMLTextAreaElement) || !target.form || !target.matches("textarea[data-typing]")) return;
    event.preventDefault();
    target.form.requestSubmit();
  });

  // --- undo countdown -------------------------------------------------------------------------------

  function tick() {
    var pending = document.querySelectorAll("[data-send-after]");
    var now = Date.now();
    for (var i = 0; i < pending.length; i++) {
      var element = pending[i];
      var counter = element.querySelector("[data-countdown]");
      if (!counter) continue;
      // Count from when this page saw it (the browser's clock may differ from the server's).
      if (!element.dataset.deadline) {
        element.dataset.deadline = String(now + Number(counter.textContent || 0) * 1000);
      }
      var left = Math.ceil((Number(element.dataset.deadline) - now) / 1000);
      if (left > 0) {
        if (counter.textContent !== String(left)) counter.textContent = String(left);
      } else {
        var buttons = element.parentNode ? element.parentNode.querySelectorAll("[data-undo-button]") : [];
        for (var j = 0; j < buttons.length; j++) buttons[j].disabled = true;
        counter.textContent = "0";
        element.removeAttribute("data-send-after");
      }
    }
  }

  setInterval(tick, 500);

  // --- time zone for snoozing -----------------------------------------------------------------------

  function fillTimeZones(root) {
    var zone = "";
    try {
      zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (error) {
      zone = "";
    }
    var fields = (root || document).querySelectorAll("input[data-timezone]");
    for (var i = 0; i < fields.length; i++) fields[i].value = zone;
  }

  fillTimeZones(document);
  body.addEventListener("htmx:afterSettle", function (event) {
    fillTimeZones(event.target);
    tick();
  });
})();
