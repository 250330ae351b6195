/* Postdesk agent pages: keyboard shortcuts, list selection, and live list refresh. No build step, no inline
 * code (the page CSP allows only our static scripts).
 *
 * Shortcuts. Any element may declare one: <a href=… data-shortcut="j" data-shortcut-help="Next conversation">.
 * Pressing the key (outside text fields) focuses it when it is a field, else clicks it; the first visible,
 * enabled element with that key wins. Before clicking, a cancellable `pd:shortcut` event is dispatched on
 * the element. Code may add keys with `window.postdesk.shortcuts.register(key, help, run)`. `?` opens a
 * dialog listing every shortcut usable on the page (from the attributes and the registry).
 *
 * Lists (#inbox-list): j/k move, o opens, x selects; the bulk buttons act on the selection or, when
 * nothing is selected, on the current row. The list and folder counts refresh through htmx on
 * `pd:refresh`, which this file dispatches on <body> after live.js reports `pd:changed`: at once,
 * then at most once a second while changes keep coming, and always once after the last one.
 */
(function () {
  "use strict";

  var registry = [];

  function register(key, help, run) {
    registry.push({ key: key, help: help, run: run });
  }

  window.postdesk = window.postdesk || {};
  window.postdesk.shortcuts = { register: register };

  // --- helpers -------------------------------------------------------------------------------------

  function isField(el) {
    return el instanceof Element && el.closest("input, textarea, select, [contenteditable=''], [contenteditable='true']") !== null;
  }

  function isVisible(el) {
    return el.getClientRects().length > 0 && el.closest("[hidden], [inert]") === null;
  }

  function keysOf(el) {
    return (el.getAttribute("data-shortcut") || "").split(/\s+/).filter(Boolean);
  }

  function shortcutElements() {
    return Array.prototype.filter.call(document.querySelectorAll("[data-shortcut]"), function (el) {
      return isVisible(el) && !el.disabled;
    });
  }

  function activate(el) {
    if (el.matches("input, textarea, select")) {
      el.focus();
      if (typeof el.select === "function" && el.type !== "date") el.select();
      return;
    }
    var event = new CustomEvent("pd:shortcut", { bubbles: true, cancelable: true });
    if (el.dispatchEvent(event)) el.click();
  }

  var noteTimer = null;
  function note(text) {
    var box = document.getElementById("shortcut-note");
    if (!box) {
      box = document.createElement("div");
      box.id = "shortcut-note";
      box.className = "shortcut-note";
      box.setAttribute("role", "status");
      box.hidden = true;
      document.body.appendChild(box);
    }
    box.textContent = text;
    box.hidden = false;
    clearTimeout(noteTimer);
    noteTimer = setTimeout(function () { box.hidden = true; }, 3000);
  }

  // --- the help dialog -----------------------------------------------------------------------------

  function keyLabel(key) {
    return key === " " ? "Space" : key;
  }

  function helpEntries() {
    var seen = {};
    var entries = [];
    shortcutElements().forEach(function (el) {
      var keys = keysOf(el).filter(function (k) { return !seen[k]; });
      if (!keys.length) return;
      keys.forEach(function (k) { seen[k] = true; });
      var help = el.getAttribute("data-shortcut-help") || el.getAttribute("aria-label") || el.textContent.trim();
      entries.push({ keys: keys, help: help });
    });
    registry.forEach(function (entry) {
      if (seen[entry.key]) return;
      seen[entry.key] = true;
      entries.push({ keys: [entry.key], help: entry.help });
    });
    return entries;
  }

  function helpDialog() {
    var dialog = document.getElementById("shortcut-help");
    if (dialog) return dialog;
    var template = document.getElementById("shortcut-help-template");
    if (!template) return null;
    dialog = template.content.firstElementChild.cloneNode(true);
    dialog.id = "shortcut-help";
    dialog.querySelector("[data-close]").addEventListener("click", function () { dialog.close(); });
    document.body.appendChild(dialog);
    return dialog;
  }

  function openHelp() {
    var dialog = helpDialog();
    if (!dialog) return;
    var list = dialog.querySelector("dl");
    list.textContent = "";
    helpEntries().forEach(function (entry) {
      var dt = document.createElement("dt");
      entry.keys.forEach(function (key, i) {
        if (i) dt.appendChild(document.createTextNode(" "));
        var kbd = document.createElement("kbd");
        kbd.textContent = keyLabel(key);
        dt.appendChild(kbd);
      });
      var dd = document.createElement("dd");
      dd.textContent = entry.help;
      list.appendChild(dt);
      list.appendChild(dd);
    });
    if (!dialog.open) dialog.showModal();
  }

  // --- key handling --------------------------------------------------------------------------------

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    var dialog = document.getElementById("shortcut-help");
    if (dialog && dialog.open) return; // the dialog closes itself on Escape
    if (isField(event.target)) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    var key = event.key;
    var elements = shortcutElements();
    for (var i = 0; i < elements.length; i++) {
      if (keysOf(elements[i]).indexOf(key) >= 0) {
        event.preventDefault();
        activate(elements[i]);
        return;
      }
    }
    for (var j = 0; j < registry.length; j++) {
      if (registry[j].key === key) {
        event.preventDefault();
        registry[j].run(event);
        return;
      }
    }
  });

  var helpButton = document.getElementById("shortcuts-button");
  if (helpButton) helpButton.addEventListener("click", openHelp);

  // --- conversation lists --------------------------------------------------------------------------

  var texts = document.getElementById("list-texts");
  if (!texts || !document.getElementById("inbox-list")) return;

  var currentNumber = null;

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("#inbox-list .conversation-row"));
  }

  function rowByNumber(number) {
    return number === null ? null : document.getElementById("row-" + number);
  }

  function setCurrent(row, focus) {
    rows().forEach(function (r) { r.classList.toggle("is-current", r === row); });
    currentNumber = row ? row.getAttribute("data-number") : null;
    if (row && focus) {
      var link = row.querySelector(".row-link");
      if (link) link.focus();
      row.scrollIntoView({ block: "nearest" });
    }
  }

  function move(step) {
    var all = rows();
    if (!all.length) return;
    var index = all.indexOf(rowByNumber(currentNumber));
    var next = index < 0 ? (step > 0 ? 0 : all.length - 1) : Math.min(all.length - 1, Math.max(0, index + step));
    setCurrent(all[next], true);
  }

  function rowBoxes() {
    return Array.prototype.slice.call(document.querySelectorAll("#inbox-list .row-select"));
  }

  function selectedBoxes() {
    return rowBoxes().filter(function (box) { return box.checked; });
  }

  function updateSelection() {
    var boxes = rowBoxes();
    var chosen = selectedBoxes().length;
    var all = document.getElementById("select-all");
    if (all) {
      all.checked = boxes.length > 0 && chosen === boxes.length;
      all.indeterminate = chosen > 0 && chosen < boxes.length;
    }
    var count = document.getElementById("selected-count");
    if (count) {
      if (!count.hasAttribute("data-idle")) count.setAttribute("data-idle", count.textContent);
      count.textContent = chosen
        ? texts.getAttribute("data-selected").replace("%(count)s", String(chosen))
        : count.getAttribute("data-idle");
    }
  }

  function toggleCurrent() {
    var row = rowByNumber(currentNumber);
    var box = row && row.querySelector(".row-select");
    if (!box) return;
    box.checked = !box.checked;
    updateSelection();
  }

  function openCurrent() {
    var row = rowByNumber(currentNumber);
    var link = row && row.querySelector(".row-link");
    if (link) link.click();
  }

  register("j", texts.getAttribute("data-next"), function () { move(1); });
  register("k", texts.getAttribute("data-previous"), function () { move(-1); });
  register("o", texts.getAttribute("data-open"), openCurrent);
  register("x", texts.getAttribute("data-select"), toggleCurrent);

  document.addEventListener("focusin", function (event) {
    var row = event.target instanceof Element ? event.target.closest("#inbox-list .conversation-row") : null;
    if (row) setCurrent(row, false);
  });

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) return;
    if (target.id === "select-all") {
      rowBoxes().forEach(function (box) { box.checked = target.checked; });
    }
    if (target.id === "select-all" || target.classList.contains("row-select")) updateSelection();
  });

  // A bulk button pressed by its key with nothing selected acts on the current row.
  document.addEventListener("pd:shortcut", function (event) {
    if (!event.target.hasAttribute("data-bulk-quick") || selectedBoxes().length) return;
    var row = rowByNumber(currentNumber);
    var box = row && row.querySelector(".row-select");
    if (box) {
      box.checked = true;
      updateSelection();
    } else {
      event.preventDefault();
      note(texts.getAttribute("data-none"));
    }
  });

  var bulkForm = document.getElementById("bulk-form");
  if (bulkForm) {
    bulkForm.addEventListener("submit", function (event) {
      if (!selectedBoxes().length) {
        event.preventDefault();
        note(texts.getAttribute("data-none"));
        return;
      }
      var quick = event.submitter && event.submitter.name === "quick";
      var op = bulkForm.querySelector("#bulk-op");
      var option = !quick && op ? op.options[op.selectedIndex] : null;
      var question = option && option.getAttribute("data-confirm");
      if (question && !window.confirm(question)) event.preventDefault();
    });
  }

  // --- live refresh --------------------------------------------------------------------------------

  var timer = null;
  var dirty = false;

  function refresh() {
    document.body.dispatchEvent(new CustomEvent("pd:refresh"));
  }

  function tick() {
    if (dirty) {
      dirty = false;
      refresh();
      timer = setTimeout(tick, 1000);
    } else {
      timer = null;
    }
  }

  document.body.addEventListener("pd:changed", function (event) {
    if (event.detail && event.detail.kind === "draft") return; // drafts do not show in lists
    if (timer) {
      dirty = true;
      return;
    }
    refresh();
    timer = setTimeout(tick, 1000);
  });

  // Keep the selection and the current row when htmx swaps in a fresh list.
  var kept = null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (!target || target.id !== "inbox-list") return;
    var active = document.activeElement;
    kept = {
      checked: selectedBoxes().map(function (box) { return box.value; }),
      current: currentNumber,
      focused: active && target.contains(active) ? (active.classList.contains("row-select") ? "select" : "link") : null,
    };
  });

  document.addEventListener("htmx:afterSettle", function () {
    if (!kept) return;
    var state = kept;
    kept = null;
    rowBoxes().forEach(function (box) { box.checked = state.checked.indexOf(box.value) >= 0; });
    updateSelection();
    var row = rowByNumber(state.current);
    setCurrent(row, false);
    if (row && state.focused) {
      var el = row.querySelector(state.focused === "select" ? ".row-select" : ".row-link");
      if (el) el.focus({ preventScroll: true });
    }
    document.body.dispatchEvent(new CustomEvent("pd:list-refreshed"));
  });

  updateSelection();
})();
