// The sandbox chat page: renders the fake Meta's chats and sends what the user does to
// the page API (/api/...), whose backend turns it into signed Meta webhooks for the bot.
// Plain JavaScript, no build step, no external assets.
(function () {
  "use strict";

  var state = {
    business: { name: "Bank Assistant" },
    botWebhookUrl: "",
    users: new Map(), // wa_id -> {wa_id, name, typing, messages: []}
    current: null,
    unread: new Map(),
  };
  var ICONS = {
    clock: '<svg viewBox="0 0 16 15" width="16" height="15"><path fill="currentColor" d="M8 1.5a6 6 0 1 0 0 12 6 6 0 0 0 0-12zm0 1.2a4.8 4.8 0 1 1 0 9.6 4.8 4.8 0 0 1 0-9.6zM7.4 4.2v3.8l3 1.8.6-1-2.4-1.4V4.2z"/></svg>',
    sent: '<svg viewBox="0 0 16 11" width="16" height="11"><path fill="currentColor" d="M11.07.65 4.4 7.3 1.92 4.83.86 5.9l3.54 3.53L12.13 1.7z"/></svg>',
    double: '<svg viewBox="0 0 16 11" width="16" height="11"><path fill="currentColor" d="M11.07.65 4.4 7.3 1.92 4.83.86 5.9l3.54 3.53L12.13 1.7zM15.07.65 8.4 7.3l-.62-.62-1.06 1.06 1.68 1.69L16.13 1.7z"/></svg>',
    failed: '<svg viewBox="0 0 16 16" width="15" height="15"><circle cx="8" cy="8" r="7" fill="currentColor"/><path fill="#fff" d="M7.1 3.8h1.8l-.3 5.4H7.4zM8 10.4a1 1 0 1 1 0 2 1 1 0 0 1 0-2z"/></svg>',
    reply: '<svg viewBox="0 0 24 24" width="18" height="18"><path fill="currentColor" d="M10 9V5l-7 7 7 7v-4.1c5 0 8.5 1.6 11 5.1-1-5-4-10-11-11z"/></svg>',
    list: '<svg viewBox="0 0 24 24" width="18" height="18"><path fill="currentColor" d="M3 5h2v2H3zm4 0h14v2H7zM3 11h2v2H3zm4 0h14v2H7zm-4 6h2v2H3zm4 0h14v2H7z"/></svg>',
    play: '<svg viewBox="0 0 24 24" width="30" height="30"><path fill="currentColor" d="M8 5.1v13.8L19 12z"/></svg>',
    pause: '<svg viewBox="0 0 24 24" width="30" height="30"><path fill="currentColor" d="M6 5h4v14H6zm8 0h4v14h-4z"/></svg>',
    mic: '<svg viewBox="0 0 24 24" width="18" height="18"><path fill="currentColor" d="M12 15a3.5 3.5 0 0 0 3.5-3.5v-6a3.5 3.5 0 1 0-7 0v6A3.5 3.5 0 0 0 12 15zm6.1-3.6a.9.9 0 0 0-1.8 0A4.3 4.3 0 0 1 12 15.7a4.3 4.3 0 0 1-4.3-4.3.9.9 0 0 0-1.8 0 6.1 6.1 0 0 0 5.2 6V20H8.6a.9.9 0 0 0 0 1.8h6.8a.9.9 0 0 0 0-1.8h-2.5v-2.6a6.1 6.1 0 0 0 5.2-6z"/></svg>',
    link: '<svg viewBox="0 0 24 24" width="18" height="18"><path fill="currentColor" d="M14 3v2h3.6l-9.8 9.8 1.4 1.4L19 6.4V10h2V3h-7zm5 16H5V5h7V3H5a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h14a2 2 0 0 0 2-2v-7h-2v7z"/></svg>',
  };
  var AVATAR_COLORS = ["#00a884", "#53bdeb", "#a5b337", "#ff7eb6", "#7f66ff", "#fa6533", "#02a698", "#c4532d"];

  function $(id) { return document.getElementById(id); }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  // WhatsApp formatting: *bold*, _italic_, ~strike~, ```mono```, links and newlines.
  function formatText(text) {
    var html = escapeHtml(text || "");
    html = html.replace(/```([\s\S]+?)```/g, "<code>$1</code>");
    var edge = "(^|[\\s.,!?;:()\\[\\]])";
    var after = "(?=$|[\\s.,!?;:()\\[\\]])";
    html = html.replace(new RegExp(edge + "\\*(?!\\s)([^*\\n]+?)\\*" + after, "g"), "$1<strong>$2</strong>");
    html = html.replace(new RegExp(edge + "_(?!\\s)([^_\\n]+?)_" + after, "g"), "$1<em>$2</em>");
    html = html.replace(new RegExp(edge + "~(?!\\s)([^~\\n]+?)~" + after, "g"), "$1<del>$2</del>");
    html = html.replace(/(https?:\/\/[^\s<]+[^\s<.,!?;:)])/g, '<a href="$1" target="_blank" rel="noopener noreferrer">$1</a>');
    return html.replace(/\n/g, "<br>");
  }

  function plainText(text) {
    return String(text || "").replace(/[*_~]/g, "").replace(/\s+/g, " ").trim();
  }

  function formatPhone(waId) {
    var d = String(waId);
    if (d.length === 13 && d.indexOf("234") === 0) {
      return "+234 " + d.slice(3, 6) + " " + d.slice(6, 9) + " " + d.slice(9);
    }
    if (d.length === 11 && d[0] === "1") return "+1 " + d.slice(1, 4) + "-" + d.slice(4, 7) + "-" + d.slice(7);
    return "+" + d;
  }

  function timeOf(seconds) {
    return new Date(seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function initials(name) {
    var parts = String(name || "?").trim().split(/\s+/);
    return ((parts[0] || "?")[0] + (parts.length > 1 ? parts[parts.length - 1][0] : "")).toUpperCase();
  }

  function avatarColor(waId) {
    var h = 0;
    for (var i = 0; i < waId.length; i++) h = (h * 31 + waId.charCodeAt(i)) >>> 0;
    return AVATAR_COLORS[h % AVATAR_COLORS.length];
  }

  function toast(text) {
    var t = $("toast");
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { t.hidden = true; }, 5000);
  }

  function post(path, body) {
    return fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body || {}),
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) throw new Error(data.error || "HTTP " + response.status);
        return data;
      });
    });
  }

  // --- state updates (from the event stream) ---------------------------------------------

  function upsertUser(user) {
    var existing = state.users.get(user.wa_id);
    if (existing) {
      existing.name = user.name;
    } else {
      state.users.set(user.wa_id, { wa_id: user.wa_id, name: user.name, typing: !!user.typing, messages: user.messages || [] });
    }
    if (!state.current) state.current = user.wa_id;
  }

  function loadSnapshot(snapshot) {
    state.business = snapshot.business;
    state.botWebhookUrl = snapshot.bot_webhook_url;
    state.users = new Map();
    snapshot.users.forEach(upsertUser);
    var saved = localStorage.getItem("sandbox.current");
    if (saved && state.users.has(saved)) state.current = saved;
    if (!state.users.has(state.current)) state.current = snapshot.users.length ? snapshot.users[0].wa_id : null;
    $("business-name").textContent = state.business.name;
    setBotStatus(snapshot.bot_webhook);
    renderAll();
    markSeen();
  }

  function findMessage(waId, id) {
    var user = state.users.get(waId);
    if (!user) return null;
    for (var i = user.messages.length - 1; i >= 0; i--) if (user.messages[i].id === id) return user.messages[i];
    return null;
  }

  function addMessage(message) {
    var user = state.users.get(message.wa_id);
    if (!user) { upsertUser({ wa_id: message.wa_id, name: "Sandbox user" }); user = state.users.get(message.wa_id); }
    if (findMessage(message.wa_id, message.id)) return;
    user.messages.push(message);
    if (message.from === "bot") {
      user.typing = false;
      if (message.wa_id !== state.current || document.visibilityState !== "visible") {
        state.unread.set(message.wa_id, (state.unread.get(message.wa_id) || 0) + 1);
      }
    }
    renderSidebar();
    if (message.wa_id === state.current) { renderChat(); markSeen(); }
  }

  function updateStatus(update) {
    var message = findMessage(update.wa_id, update.id);
    if (!message) return;
    message.status = update.status;
    message.error = update.error;
    if (update.wa_id === state.current) renderChat();
  }

  function setTyping(update) {
    var user = state.users.get(update.wa_id);
    if (!user) return;
    user.typing = update.typing;
    renderSidebar();
    if (update.wa_id === state.current) renderChat();
  }

  function setBotStatus(bot) {
    if (!bot) return;
    $("bot-dot").className = "dot " + bot.state;
    $("bot-detail").textContent = bot.state === "verified" ? "Bot webhook verified" : bot.detail;
    $("bot-status").title = state.botWebhookUrl + " — " + bot.detail;
  }

  var notices = new Map(); // wa_id -> [{text, level}]
  function addNotice(notice) {
    var list = notices.get(notice.wa_id) || [];
    list.push({ text: notice.text, level: notice.level, after: (state.users.get(notice.wa_id) || { messages: [] }).messages.length });
    notices.set(notice.wa_id, list);
    if (notice.wa_id === state.current) renderChat();
  }

  function markSeen() {
    var user = state.users.get(state.current);
    if (!user || document.visibilityState !== "visible") return;
    state.unread.delete(user.wa_id);
    var hasBotMessages = user.messages.some(function (m) { return m.from === "bot"; });
    if (hasBotMessages) post("/api/users/" + user.wa_id + "/read").catch(function () {});
  }

  // --- rendering ---------------------------------------------------------------------

  function previewOf(message) {
    var c = message.content || {};
    switch (message.type) {
      case "text": return plainText(c.text && c.text.body);
      case "interactive":
        var i = c.interactive || {};
        if (i.type === "button_reply") return i.button_reply.title;
        if (i.type === "list_reply") return i.list_reply.title;
        return plainText(i.body && i.body.text);
      case "audio": return "Voice message";
      case "image": return "Photo" + (c.image && c.image.caption ? ": " + c.image.caption : "");
      case "document": return "Document" + (c.document && c.document.filename ? ": " + c.document.filename : "");
      case "template": return "Template: " + (c.template && c.template.name);
      default: return message.type;
    }
  }

  function renderSidebar() {
    var list = $("chats");
    list.textContent = "";
    state.users.forEach(function (user) {
      var item = el("li", "chat-item" + (user.wa_id === state.current ? " active" : ""));
      item.dataset.waId = user.wa_id;
      var avatar = el("div", "avatar", initials(user.name));
      avatar.style.background = avatarColor(user.wa_id);
      var meta = el("div", "meta");
      var top = el("div", "top");
      top.appendChild(el("span", "name", user.name));
      var last = user.messages[user.messages.length - 1];
      top.appendChild(el("span", "time", last ? timeOf(last.timestamp) : ""));
      var bottom = el("div", "bottom");
      var preview = user.typing ? el("span", "preview typing", "typing…")
        : el("span", "preview", last ? (last.from === "user" ? "You: " : "") + previewOf(last) : formatPhone(user.wa_id));
      bottom.appendChild(preview);
      var unread = state.unread.get(user.wa_id);
      if (unread) bottom.appendChild(el("span", "badge", String(unread)));
      meta.appendChild(top);
      meta.appendChild(bottom);
      if (last) meta.appendChild(el("div", "phone", formatPhone(user.wa_id)));
      item.appendChild(avatar);
      item.appendChild(meta);
      item.addEventListener("click", function () { selectUser(user.wa_id); });
      list.appendChild(item);
    });
  }

  function ticks(status, error) {
    var span = el("span", "ticks");
    if (status === "read") { span.className = "ticks read"; span.innerHTML = ICONS.double; span.title = "Read"; }
    else if (status === "delivered") { span.innerHTML = ICONS.double; span.title = "Delivered to the bot"; }
    else if (status === "sent") { span.innerHTML = ICONS.sent; span.title = "Sent"; }
    else if (status === "failed") { span.className = "ticks failed"; span.innerHTML = ICONS.failed; span.title = error || "Not delivered"; }
    else { span.innerHTML = ICONS.clock; span.title = "Sending"; }
    span.dataset.status = status;
    return span;
  }

  // The time (and ticks) sit at the bubble's bottom right; when the bubble ends in text,
  // an invisible spacer on its last line keeps them from covering the words, as in WhatsApp.
  function metaLine(message, bubble) {
    var meta = el("span", "meta-line");
    meta.appendChild(el("span", "time", timeOf(message.timestamp)));
    if (message.from === "user") meta.appendChild(ticks(message.status, message.error));
    var last = bubble.lastElementChild;
    if (last && /\b(text|reply-description)\b/.test(last.className)) {
      last.appendChild(el("span", "meta-spacer" + (message.from === "user" ? " with-ticks" : "")));
      meta.classList.add("overlay");
    }
    bubble.appendChild(meta);
    return meta;
  }

  function textBlock(text, className) {
    var div = el("div", className || "text");
    div.innerHTML = formatText(text);
    return div;
  }

  function mediaUrl(media) {
    if (!media) return "";
    return media.link || (media.id ? "/api/media/" + encodeURIComponent(media.id) : "");
  }

  function interactiveParts(bubble, interactive) {
    var header = interactive.header;
    if (header && header.type === "text" && header.text) bubble.appendChild(el("div", "i-header", header.text));
    else if (header && header.type) {
      var h = header[header.type] || {};
      bubble.appendChild(linkCard(header.type, mediaUrl(h), h.filename));
    }
    if (interactive.body) bubble.appendChild(textBlock(interactive.body.text));
    if (interactive.footer) bubble.appendChild(el("div", "i-footer", interactive.footer.text));
  }

  function linkCard(kind, url, name) {
    var card = el("div", "media-card");
    var label = { image: "IMG", video: "VID", audio: "AUD" }[kind] || (String(name || url).split(".").pop() || "DOC").slice(0, 4).toUpperCase();
    var icon = el("div", "doc-icon", label);
    if (kind !== "document") icon.style.background = "#53bdeb";
    var info = el("div", "doc-info");
    info.appendChild(el("div", "doc-name", name || String(url).split("/").pop() || kind));
    if (url) {
      var a = el("a", "", "Open " + kind);
      a.href = url; a.target = "_blank"; a.rel = "noopener noreferrer";
      info.appendChild(a);
    }
    card.appendChild(icon);
    card.appendChild(info);
    return card;
  }

  function voiceNote(url) {
    var box = el("div", "voice");
    var play = el("button", "play");
    play.type = "button";
    play.innerHTML = ICONS.play;
    play.setAttribute("aria-label", "Play voice message");
    var audio = null;
    play.addEventListener("click", function () {
      if (!audio) {
        audio = new Audio(url);
        audio.addEventListener("ended", function () { play.innerHTML = ICONS.play; });
      }
      if (audio.paused) { audio.play(); play.innerHTML = ICONS.pause; } else { audio.pause(); play.innerHTML = ICONS.play; }
    });
    var wave = el("div", "wave");
    var heights = [6, 10, 16, 22, 14, 8, 12, 20, 24, 18, 10, 6, 9, 15, 21, 13, 7, 11, 17, 12, 8, 5, 9, 14, 10, 6];
    heights.forEach(function (h) { var bar = document.createElement("i"); bar.style.height = h + "px"; wave.appendChild(bar); });
    var mic = el("span", "mic");
    mic.innerHTML = ICONS.mic;
    box.appendChild(play);
    box.appendChild(wave);
    box.appendChild(mic);
    return box;
  }

  function quoteOf(waId, contextId) {
    var quoted = contextId ? findMessage(waId, contextId) : null;
    var quote = el("div", "quote");
    quote.appendChild(el("div", "who", state.business.name));
    quote.appendChild(el("div", "excerpt", quoted ? previewOf(quoted) : "message"));
    return quote;
  }

  function botBubble(message, outer) {
    var c = message.content || {};
    var row = el("div", "stack");
    outer.appendChild(row);
    var bubble = el("div", "bubble");
    row.appendChild(bubble);
    switch (message.type) {
      case "text":
        bubble.appendChild(textBlock(c.text && c.text.body));
        break;
      case "interactive":
        var i = c.interactive || {};
        interactiveParts(bubble, i);
        if (i.type === "button") {
          var buttons = el("div", "reply-buttons" + ((i.action.buttons || []).length === 2 ? " inline" : ""));
          (i.action.buttons || []).forEach(function (b) {
            var button = el("button", "reply-button");
            button.type = "button";
            button.dataset.replyId = b.reply.id;
            button.innerHTML = ICONS.reply;
            button.appendChild(document.createTextNode(b.reply.title));
            button.addEventListener("click", function () {
              send({ type: "button_reply", context_id: message.id, id: b.reply.id });
            });
            buttons.appendChild(button);
          });
          metaLine(message, bubble);
          row.appendChild(buttons);
          return;
        }
        if (i.type === "list") {
          bubble.classList.add("has-list");
          var main = el("div", "bubble-main");
          while (bubble.firstChild) main.appendChild(bubble.firstChild);
          bubble.appendChild(main);
          metaLine(message, main);
          var open = el("button", "list-open");
          open.type = "button";
          open.innerHTML = ICONS.list;
          open.appendChild(document.createTextNode((i.action && i.action.button) || "Choose"));
          open.addEventListener("click", function () { openSheet(message); });
          bubble.appendChild(open);
          return;
        }
        if (i.type === "cta_url" && i.action && i.action.parameters) {
          var a = el("a", "reply-button", i.action.parameters.display_text || "Open");
          a.href = i.action.parameters.url; a.target = "_blank"; a.rel = "noopener noreferrer";
          metaLine(message, bubble);
          var wrap = el("div", "reply-buttons");
          wrap.appendChild(a);
          row.appendChild(wrap);
          return;
        }
        break;
      case "image":
      case "sticker":
        var media = c[message.type] || {};
        var figure = el("div", "image-wrap");
        var img = document.createElement("img");
        img.alt = media.caption || "image";
        img.src = mediaUrl(media);
        img.addEventListener("error", function () { figure.replaceChild(linkCard("image", mediaUrl(media)), img); });
        figure.appendChild(img);
        bubble.appendChild(figure);
        if (media.caption) bubble.appendChild(textBlock(media.caption, "text caption"));
        break;
      case "document":
      case "video":
        var doc = c[message.type] || {};
        bubble.appendChild(linkCard(message.type, mediaUrl(doc), doc.filename));
        if (doc.caption) bubble.appendChild(textBlock(doc.caption, "text caption"));
        break;
      case "audio":
        bubble.appendChild(voiceNote(mediaUrl(c.audio)));
        break;
      case "template":
        var t = c.template || {};
        bubble.appendChild(el("div", "i-header", "Template: " + t.name + (t.language ? " (" + t.language.code + ")" : "")));
        (t.components || []).forEach(function (component) {
          var params = (component.parameters || []).map(function (p) { return p.text || p.type; }).join(" · ");
          if (params) bubble.appendChild(el("div", "i-footer", component.type + ": " + params));
        });
        break;
      case "location":
        var loc = c.location || {};
        bubble.appendChild(el("div", "i-header", loc.name || "Location"));
        bubble.appendChild(el("div", "text", (loc.address ? loc.address + " " : "") + "(" + loc.latitude + ", " + loc.longitude + ")"));
        break;
      case "reaction":
        bubble.appendChild(el("div", "text", "Reacted " + ((c.reaction && c.reaction.emoji) || "") + " to a message"));
        break;
      default:
        break;
    }
    if (!bubble.childNodes.length) {
      bubble.appendChild(el("div", "raw-label", message.type + " message"));
      bubble.appendChild(el("pre", "raw", JSON.stringify(c[message.type] || c, null, 2)));
    }
    metaLine(message, bubble);
  }

  function userBubble(message, outer) {
    var c = message.content || {};
    var row = el("div", "stack");
    outer.appendChild(row);
    var bubble = el("div", "bubble");
    row.appendChild(bubble);
    if (message.type === "text") {
      bubble.appendChild(textBlock(c.text.body));
    } else if (message.type === "interactive") {
      var i = c.interactive;
      var reply = i.button_reply || i.list_reply || {};
      bubble.appendChild(quoteOf(message.wa_id, c.context && c.context.id));
      bubble.appendChild(el("div", "text", reply.title));
      if (reply.description) bubble.appendChild(el("div", "reply-description", reply.description));
    } else if (message.type === "audio") {
      bubble.appendChild(voiceNote("/api/media/" + encodeURIComponent(c.audio.id)));
    } else {
      bubble.appendChild(el("pre", "raw", JSON.stringify(c, null, 2)));
    }
    metaLine(message, bubble);
  }

  function renderChat() {
    var box = $("messages");
    var nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 120;
    box.textContent = "";
    var user = state.users.get(state.current);
    $("subtitle").textContent = user && user.typing ? "typing…" : "online";
    $("subtitle").className = "chat-subtitle" + (user && user.typing ? " typing" : "");
    var who = $("chat-as");
    who.textContent = "";
    if (!user) return;
    who.appendChild(el("div", "", "You are " + user.name));
    who.appendChild(el("div", "", formatPhone(user.wa_id)));

    var intro = el("div", "pill-row");
    intro.appendChild(el("div", "pill notice",
      "Local WhatsApp sandbox: what you send goes to the bot as a signed Meta webhook (" +
      state.botWebhookUrl + "). Nothing leaves this machine."));
    box.appendChild(intro);
    if (user.messages.length) {
      var day = el("div", "pill-row");
      day.appendChild(el("div", "pill", "Today"));
      box.appendChild(day);
    }
    var userNotices = notices.get(user.wa_id) || [];
    var previous = null;
    user.messages.forEach(function (message, index) {
      var row = el("div", "row " + (message.from === "user" ? "out" : "in"));
      row.dataset.id = message.id;
      row.dataset.type = message.type;
      if (!previous || previous.from !== message.from) row.classList.add("first");
      if (message.from === "user") userBubble(message, row); else botBubble(message, row);
      box.appendChild(row);
      previous = message;
      userNotices.forEach(function (notice) {
        if (notice.after === index + 1) {
          var n = el("div", "pill-row");
          n.appendChild(el("div", "pill " + (notice.level === "error" ? "error" : "notice"), notice.text));
          box.appendChild(n);
        }
      });
    });
    if (user.typing) {
      var typingRow = el("div", "row in first typing-row");
      var bubble = el("div", "bubble typing-bubble");
      bubble.setAttribute("aria-label", "typing");
      for (var k = 0; k < 3; k++) bubble.appendChild(document.createElement("i"));
      typingRow.appendChild(bubble);
      box.appendChild(typingRow);
    }
    if (nearBottom || renderChat.forceScroll) box.scrollTop = box.scrollHeight;
    renderChat.forceScroll = false;
  }

  function renderAll() {
    renderSidebar();
    renderChat.forceScroll = true;
    renderChat();
  }

  // --- the list sheet -------------------------------------------------------------------

  function openSheet(message) {
    var i = message.content.interactive;
    $("sheet-title").textContent = (i.action && i.action.button) || "Choose";
    var body = $("sheet-body");
    body.textContent = "";
    (i.action.sections || []).forEach(function (section) {
      if (section.title) body.appendChild(el("div", "sheet-section", section.title));
      (section.rows || []).forEach(function (r) {
        var row = el("button", "list-row");
        row.type = "button";
        row.dataset.rowId = r.id;
        var text = el("div", "row-text");
        text.appendChild(el("div", "row-title", r.title));
        if (r.description) text.appendChild(el("div", "row-description", r.description));
        row.appendChild(text);
        row.appendChild(el("span", "radio"));
        row.addEventListener("click", function () {
          closeSheet();
          send({ type: "list_reply", context_id: message.id, id: r.id });
        });
        body.appendChild(row);
      });
    });
    $("sheet").hidden = false;
  }

  function closeSheet() { $("sheet").hidden = true; }

  // --- user actions ----------------------------------------------------------------------

  function send(body) {
    if (!state.current) { toast("Add a user first"); return Promise.resolve(); }
    return post("/api/users/" + state.current + "/messages", body)
      .then(function (data) { addMessage(data.message); })
      .catch(function (error) { toast("Not sent: " + error.message); });
  }

  function selectUser(waId) {
    state.current = waId;
    localStorage.setItem("sandbox.current", waId);
    renderAll();
    markSeen();
    $("composer-input").focus();
  }

  function syncComposerButtons() {
    var empty = !$("composer-input").value.trim();
    $("send").hidden = empty;
    $("voice").hidden = !empty;
  }

  function submitComposer(event) {
    if (event) event.preventDefault();
    var input = $("composer-input");
    var text = input.value;
    if (!text.trim()) return;
    input.value = "";
    input.style.height = "";
    syncComposerButtons();
    send({ type: "text", text: text });
  }

  function connect() {
    var source = new EventSource("/api/events");
    source.addEventListener("snapshot", function (e) { loadSnapshot(JSON.parse(e.data)); });
    source.addEventListener("message", function (e) { addMessage(JSON.parse(e.data)); });
    source.addEventListener("status", function (e) { updateStatus(JSON.parse(e.data)); });
    source.addEventListener("typing", function (e) { setTyping(JSON.parse(e.data)); });
    source.addEventListener("user", function (e) { upsertUser(JSON.parse(e.data)); renderSidebar(); });
    source.addEventListener("bot", function (e) { setBotStatus(JSON.parse(e.data)); });
    source.addEventListener("notice", function (e) { addNotice(JSON.parse(e.data)); });
    source.addEventListener("open", function () { document.body.dataset.connected = "true"; });
    source.addEventListener("error", function () {
      document.body.dataset.connected = "false";
      $("bot-detail").textContent = "Sandbox connection lost, reconnecting…";
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("composer").addEventListener("submit", submitComposer);
    var input = $("composer-input");
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) submitComposer(event);
    });
    input.addEventListener("input", function () {
      input.style.height = "";
      input.style.height = Math.min(input.scrollHeight, 120) + "px";
      syncComposerButtons();
    });
    $("voice").addEventListener("click", function () { send({ type: "voice" }); });
    $("sheet-close").addEventListener("click", closeSheet);
    $("sheet").addEventListener("click", function (event) { if (event.target === $("sheet")) closeSheet(); });
    document.addEventListener("keydown", function (event) { if (event.key === "Escape") closeSheet(); });
    document.addEventListener("visibilitychange", markSeen);
    $("verify").addEventListener("click", function () {
      $("bot-detail").textContent = "Verifying…";
      post("/api/verify-webhook").then(setBotStatus).catch(function (e) { toast(e.message); });
    });
    $("new-user").addEventListener("submit", function (event) {
      event.preventDefault();
      post("/api/users", { wa_id: $("new-phone").value, name: $("new-name").value })
        .then(function (user) {
          upsertUser(user);
          $("new-phone").value = "";
          $("new-name").value = "";
          selectUser(user.wa_id);
        })
        .catch(function (error) { toast(error.message); });
    });
    syncComposerButtons();
    connect();
  });
})();
