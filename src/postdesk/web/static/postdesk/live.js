/* Postdesk live updates: new mail and others' changes without a reload, and who is viewing or typing.
 *
 * Plain JavaScript, no build step. A page opts in with attributes on <body>:
 *   data-live-conversation="<conversation id>" (and data-live-number) on a conversation page,
 *   data-live-mailboxes="1,2,3" on list pages (the mailboxes the agent sees).
 * One WebSocket to /ws/live/ (same origin, the session cookie signs it in); the server keeps only
 * the subscriptions the agent may read. It reconnects with back-off, except after code 4401
 * (signed out).
 *
 * What the page gets:
 *   body "pd:changed"  detail = {type: "conversation.changed", conversation, number, mailbox, kind, actor, id};
 *                      after a reconnect also {type: "live.reconnected", kind: "reconnected"}, since events
 *                      may have been missed: htmx parts with hx-trigger="pd:changed from:body" refresh.
 *   body "pd:presence" detail = the presence map {"<conversation id>": [{user, name, state}]}, state
 *                      "viewing" | "typing"; the agent's own user is left out.
 *   body "pd:live"     detail = {connected, conversations, mailboxes} whenever the socket opens,
 *                      subscribes or closes.
 *   window.postdeskLive.presence() and .status() return the same, at any time.
 * Presence is drawn into #presence (conversation page; texts from its data-text-viewing and
 * data-text-typing attributes, "%s" is the name) and into every [data-presence-for="<id>"] (lists: the
 * names, typing marked with data-text-badge-typing, data-presence-state="viewing|typing|" for styling,
 * and a title with the full sentence). Text only, never HTML: names come from other users.
 * Typing in any textarea[data-typing] (value: a conversation id, or empty for the page's) reports
 * "typing" at most every 2 s; 5 s after the last keystroke the agent is back to "viewing".
 */
(function () {
  "use strict";

  var TYPING_EVERY_MS = 2000;
  var TYPING_IDLE_MS = 5000;
  var MAX_BACKOFF_MS = 30000;
  var TICK_MS = 1000;
  var CLOSE_UNAUTHENTICATED = 4401;

  var body = document.body;
  var pageConversation = positiveInt(body.dataset.liveConversation);
  var pageMailboxes = (body.dataset.liveMailboxes || "").split(",").map(positiveInt).filter(Boolean);

  var socket = null;
  var connected = false;
  var everOpened = false;
  var stopped = false;
  var attempt = 0;
  var reconnectTimer = null;
  var me = { user: null, socket: null, ttl: 25, typingTtl: 5 };
  var subscribed = { conversations: [], mailboxes: [] };
  var recentEvents = [];
  // conversation id -> socket id -> {user, name, state, expiresAt, typingUntil}
  var entries = new Map();
  var lastPresenceJson = "{}";
  var lastTypingSent = 0;
  var typingIdleTimer = null;

  function positiveInt(value) {
    var number = Number(value);
    return Number.isInteger(number) && number > 0 ? number : null;
  }

  function emit(name, detail) {
    body.dispatchEvent(new CustomEvent(name, { detail: detail }));
  }

  function status() {
    return {
      connected: connected,
      conversations: subscribed.conversations.slice(),
      mailboxes: subscribed.mailboxes.slice(),
    };
  }

  // --- the socket ---------------------------------------------------------------------------------

  function connect() {
    if (stopped || socket) return;
    var scheme = location.protocol === "https:" ? "wss:" : "ws:";
    var ws = new WebSocket(scheme + "//" + location.host + "/ws/live/");
    socket = ws;
    ws.onopen = function () {
      attempt = 0;
      connected = true;
      send({ type: "subscribe", conversations: pageConversation ? [pageConversation] : [], mailboxes: pageMailboxes });
      if (pageConversation) send({ type: "presence", conversation: pageConversation, state: "viewing" });
      if (everOpened) emit("pd:changed", { type: "live.reconnected", kind: "reconnected" });
      everOpened = true;
      emit("pd:live", status());
    };
    ws.onmessage = function (message) {
      var data;
      try {
        data = JSON.parse(message.data);
      } catch (error) {
        return;
      }
      receive(data);
    };
    ws.onclose = function (event) {
      if (socket !== ws) return;
      socket = null;
      connected = false;
      emit("pd:live", status());
      if (event.code === CLOSE_UNAUTHENTICATED) {
        stopped = true; // signed out: the next page load goes to the login page
        return;
      }
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    if (stopped || reconnectTimer) return;
    // 1 s, 2 s, 4 s … up to 30 s, with jitter so that a restarted server is not hit by every page at once.
    var delay = Math.min(MAX_BACKOFF_MS, 1000 * Math.pow(2, attempt)) * (0.5 + Math.random() / 2);
    attempt += 1;
    reconnectTimer = setTimeout(function () {
      reconnectTimer = null;
      connect();
    }, delay);
  }

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  }

  function receive(data) {
    switch (data.type) {
      case "hello":
        me = { user: data.user, socket: data.socket, ttl: data.ttl || 25, typingTtl: data.typing_ttl || 5 };
        break;
      case "subscribed":
        subscribed = { conversations: data.conversations || [], mailboxes: data.mailboxes || [] };
        emit("pd:live", status());
        break;
      case "conversation.changed":
        if (data.id) {
          if (recentEvents.indexOf(data.id) !== -1) return;
          recentEvents.push(data.id);
          if (recentEvents.length > 64) recentEvents.shift();
        }
        emit("pd:changed", data);
        break;
      case "presence":
        heard(data);
        break;
      case "error":
        if (window.console) console.warn("postdesk live:", data.message);
        break;
    }
  }

  // --- presence: what others do -------------------------------------------------------------------

  function heard(data) {
    var conversation = String(data.conversation);
    var bySocket = entries.get(conversation) || new Map();
    entries.set(conversation, bySocket);
    if (data.state === "left") {
      bySocket.delete(data.socket);
    } else {
      var now = Date.now();
      var typingTtl = (data.typing_ttl || me.typingTtl) * 1000;
      bySocket.set(data.socket, {
        user: data.user,
        name: String(data.name || ""),
        expiresAt: now + (data.ttl || me.ttl) * 1000,
        typingUntil: data.state === "typing" ? now + typingTtl : 0,
      });
    }
    refresh();
  }

  function presenceMap() {
    var now = Date.now();
    var map = {};
    entries.forEach(function (bySocket, conversation) {
      var byUser = new Map();
      bySocket.forEach(function (entry, socketId) {
        if (entry.expiresAt <= now) {
          bySocket.delete(socketId);
          return;
        }
        if (entry.user === me.user) return;
        var state = entry.typingUntil > now ? "typing" : "viewing";
        var known = byUser.get(entry.user);
        if (!known || (state === "typing" && known.state !== "typing")) {
          byUser.set(entry.user, { user: entry.user, name: entry.name, state: state });
        }
      });
      if (bySocket.size === 0) entries.delete(conversation);
      if (byUser.size) {
        map[conversation] = Array.from(byUser.values()).sort(function (a, b) {
          return a.name.localeCompare(b.name);
        });
      }
    });
    return map;
  }

  function refresh() {
    var map = presenceMap();
    render(map);
    var json = JSON.stringify(map);
    if (json !== lastPresenceJson) {
      lastPresenceJson = json;
      emit("pd:presence", map);
    }
  }

  function fill(template, name) {
    return template.split("%s").join(name);
  }

  function setText(element, text) {
    if (element.textContent !== text) element.textContent = text;
  }

  function sentences(people, source) {
    var viewing = (source && source.dataset.textViewing) || "%s is viewing";
    var typing = (source && source.dataset.textTyping) || "%s is typing a reply…";
    return people.map(function (person) {
      return fill(person.state === "typing" ? typing : viewing, person.name);
    });
  }

  function render(map) {
    var panel = document.getElementById("presence");
    if (panel && pageConversation) {
      var here = map[String(pageConversation)] || [];
      setText(panel, sentences(here, panel).join(" · "));
      panel.dataset.presenceState = stateOf(here);
    }
    var badges = document.querySelectorAll("[data-presence-for]");
    for (var i = 0; i < badges.length; i++) {
      var badge = badges[i];
      var people = map[String(positiveInt(badge.dataset.presenceFor))] || [];
      var typingMark = badge.dataset.textBadgeTyping || "%s ✎";
      var names = people.map(function (person) {
        return person.state === "typing" ? fill(typingMark, person.name) : person.name;
      });
      setText(badge, names.join(", "));
      badge.dataset.presenceState = stateOf(people);
      var title = sentences(people, panel).join("\n");
      if (badge.title !== title) badge.title = title;
    }
  }

  function stateOf(people) {
    if (!people.length) return "";
    return people.some(function (person) { return person.state === "typing"; }) ? "typing" : "viewing";
  }

  // --- presence: what this agent does -------------------------------------------------------------

  function typingTarget(element) {
    return positiveInt(element.dataset.typing) || pageConversation;
  }

  document.addEventListener(
    "input",
    function (event) {
      var element = event.target;
      if (!(element instanceof HTMLTextAreaElement) || !element.matches("textarea[data-typing]")) return;
      var conversation = typingTarget(element);
      if (!conversation) return;
      var now = Date.now();
      if (now - lastTypingSent >= TYPING_EVERY_MS) {
        lastTypingSent = now;
        send({ type: "presence", conversation: conversation, state: "typing" });
      }
      clearTimeout(typingIdleTimer);
      typingIdleTimer = setTimeout(function () {
        lastTypingSent = 0;
        send({ type: "presence", conversation: conversation, state: "viewing" });
      }, TYPING_IDLE_MS);
    },
    true
  );

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && pageConversation) {
      send({ type: "presence", conversation: pageConversation, state: "viewing" });
    }
  });

  window.addEventListener("pagehide", function () {
    if (pageConversation) send({ type: "presence", conversation: pageConversation, state: "left" });
    stopped = true;
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    if (socket) socket.close(1000);
  });

  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      // Back from the back/forward cache: a fresh socket, and whatever changed meanwhile.
      stopped = false;
      everOpened = true;
      connect();
    }
  });

  // Parts swapped in by htmx bring empty presence badges: fill them at once.
  body.addEventListener("htmx:afterSettle", function () {
    render(presenceMap());
  });

  window.postdeskLive = {
    presence: function () {
      return JSON.parse(JSON.stringify(presenceMap()));
    },
    status: status,
  };

  if (pageConversation || pageMailboxes.length) {
    setInterval(refresh, TICK_MS);
    connect();
  }
})();
