// Parley's web client: plain JavaScript, no framework, no build step. It speaks Parley's JSON protocol
// (docs/PROTOCOL.md, "JSON lines") over the WebSocket at /ws, one JSON object per message.
//
// Everything a user or the server wrote reaches the page through textContent or createTextNode, never
// innerHTML, so no message can become markup; links are made elements whose href is checked to be http(s).
"use strict";

const $ = (id) => document.getElementById(id);
const el = (tag, className, text) => {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
};

// ---------------------------------------------------------------- state

/** One conversation: a room or a private one with a nick. */
class Conversation {
  static limit = 5000;

  constructor(name) {
    this.name = name;
    this.isRoom = name.startsWith("#");
    this.messages = []; // sorted by id; pending own messages (no id yet) at the end
    this.unread = 0;
    this.mentioned = false;
    this.topic = "";
    this.nicks = [];
    this.operators = new Set();
    this.voiced = new Set();
    this.noOlder = false; // the server has nothing older
    this.loadingOlder = false;
    this.joined = this.isRoom;
  }
  get newestId() {
    for (let i = this.messages.length - 1; i >= 0; i--) if (this.messages[i].id) return this.messages[i].id;
    return 0;
  }
  get oldestId() {
    const first = this.messages.find((m) => m.id);
    return first ? first.id : 0;
  }
  /** Adds messages it does not hold yet, in order; returns how many were new. */
  merge(messages) {
    const known = new Set(this.messages.filter((m) => m.id).map((m) => m.id));
    const fresh = messages.filter((m) => !m.id || !known.has(m.id));
    if (fresh.length === 0) return 0;
    this.messages = this.messages.concat(fresh);
    this.messages.sort((a, b) => sortKey(a) - sortKey(b) || a.seq - b.seq);
    // Live messages push the oldest out; paging back stops at the limit (`loadOlder`), so it never trims what
    // it just fetched.
    if (this.messages.length > Conversation.limit) this.messages.splice(0, this.messages.length - Conversation.limit);
    return fresh.length;
  }
}

/** Where a line goes: a message by its id; a line of the client's own (a join, an error) just after the newest
    message when it was written; one of our messages not yet acknowledged, at the end. */
function sortKey(message) {
  if (message.pending) return Infinity;
  return message.id || (message.after || 0) + 0.5;
}

const state = {
  nick: localStorage.getItem("parley.nick") || "",
  password: "", // kept in memory for reconnects only, never stored
  registerAfterWelcome: false,
  socket: null,
  welcomed: false,
  everWelcomed: false,
  leaving: false, // the user quit: no reconnect
  conversations: new Map(),
  current: "#general",
  away: new Set(),
  inputHistory: [],
  historyIndex: -1,
  draft: "",
  refs: 0,
  seq: 0,
  pendingSends: new Map(), // ref -> the pending message shown already
  olderRequests: new Map(), // ref -> conversation name
  backoff: 1,
  firstDrop: 0,
  retryTimer: null,
  countdownTimer: null,
  missedSinceDrop: null, // conversation name -> count, while reconnecting
  resuming: null, // the rooms whose replay has not come yet after a reconnect (lowercased)
  resumeRequests: new Map(), // ref -> private conversation name, its replay after a reconnect
  reportTimer: null,
  helloRetries: 0,
  refused: false, // the sign-in was refused: no reconnecting until the user tries again
  heard: 0, // when the server last sent anything
  pingSent: 0,
  candidatePassword: null, // a password sent with /login, /register or /passwd, kept once the server agrees
  server: location.host,
  // Where the chat is: this page's node first, then the other nodes of the chat (`GET /nodes`), tried in
  // turn when one cannot be reached.
  nodes: [(location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws"],
  node: 0,
  triedInRound: 0, // nodes that could not be reached since the last that could
};

/** The other nodes this page may move to, as its own node lists them; none when it lists none. */
fetch("/nodes")
  .then((response) => (response.ok ? response.json() : { nodes: [] }))
  .then((found) => {
    for (const url of found.nodes || []) if (!state.nodes.includes(url)) state.nodes.push(url);
  })
  .catch(() => {});

function conversation(name, create = true) {
  const key = name.toLowerCase();
  let found = state.conversations.get(key);
  if (!found && create) {
    found = new Conversation(name);
    state.conversations.set(key, found);
    renderSidebar();
  }
  return found;
}

const nextRef = () => `w${++state.refs}`;

// ---------------------------------------------------------------- the connection

function connect() {
  clearTimeout(state.retryTimer);
  clearInterval(state.countdownTimer);
  // A socket still connecting is given up: only the newest one's events count (each handler checks).
  const previous = state.socket;
  state.socket = null;
  if (previous) previous.close();
  setStatus("connecting", "Connecting…");
  const socket = new WebSocket(state.nodes[state.node % state.nodes.length]);
  state.socket = socket;
  socket.addEventListener("open", () => {
    socket.opened = true;
    state.triedInRound = 0;
    if (state.socket === socket) sendHello();
  });
  socket.addEventListener("message", (event) => {
    if (state.socket !== socket) return;
    state.heard = Date.now();
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      return;
    }
    handle(data);
  });
  socket.addEventListener("close", () => dropped(socket));
}

/** The connection ended (closed, or found dead by `keepAlive`): reconnect, unless the user left or was refused. */
function dropped(socket) {
  if (state.socket !== socket) return;
  state.socket = null;
  socket.close();
  const wasWelcomed = state.welcomed;
  state.welcomed = false;
  connectionLost();
  if (state.leaving) {
    setStatus("offline", "Disconnected");
    return showSignin("You left the chat. Join again whenever you like.");
  }
  // Refused at sign-in (a wrong password, a taken nick): the user decides what to try next.
  if (state.refused) return setStatus("offline", "Not connected");
  // A node that could not be reached: the next at once, until every node was tried; then wait and start over
  // (a node that was reached and then lost is tried again first: it may be restarting).
  if (!socket.opened && state.nodes.length > 1) {
    state.node = (state.node + 1) % state.nodes.length;
    state.triedInRound += 1;
    if (state.triedInRound < state.nodes.length) return connect();
    state.triedInRound = 0;
  }
  if (!state.everWelcomed) {
    showSignin("Cannot reach the chat server. Trying again…");
  } else if (wasWelcomed) {
    systemLine(state.current, "Disconnected from the server. Reconnecting…", "error-line");
    state.missedSinceDrop = new Map();
    state.firstDrop = state.firstDrop || Date.now();
  }
  scheduleReconnect();
}

/** What belonged to the connection that just ended: requests it will never answer. Messages not yet
    acknowledged are marked as not sent (a replay after the reconnect shows those the server did store). */
function connectionLost() {
  clearTimeout(state.reportTimer);
  for (const { conversation: name, message } of state.pendingSends.values()) {
    message.pending = false;
    message.failed = true;
    const c = conversation(name, false);
    if (c && c.name === state.current) renderLog(isAtBottom());
  }
  state.pendingSends.clear();
  state.olderRequests.clear();
  state.resumeRequests.clear();
  for (const c of state.conversations.values()) {
    c.loadingOlder = false;
    c.asked = false;
  }
}

/** Every 25 s a ping: it keeps proxies from closing a quiet connection, and a link that died without a word
    (a laptop's Wi-Fi, a NAT's timeout) is noticed when nothing at all has come back 10 s later. */
function keepAlive() {
  if (!state.socket || !state.welcomed) return;
  if (state.pingSent && state.heard < state.pingSent && Date.now() - state.pingSent > 10000) {
    state.pingSent = 0;
    // Not waiting for the close event: on a dead link the closing handshake can take minutes.
    return dropped(state.socket);
  }
  if (Date.now() - state.heard > 25000 && !(state.pingSent > state.heard)) {
    state.pingSent = Date.now();
    send({ type: "ping", ref: "keepalive" });
  }
}

/** Waits a little longer after each failure: 1 s, 2 s, 4 s, then 5 s for the first minute (a LAN's restart is
    over by then), then up to 15 s; about a dozen tries a minute, well inside the server's 20 connections a
    minute per address. */
function scheduleReconnect() {
  const cap = Date.now() - (state.firstDrop || Date.now()) < 60000 ? 5 : 15;
  let wait = Math.min(state.backoff, cap);
  state.backoff = Math.min(state.backoff * 2, 15);
  setStatus("offline", `Offline — retrying in ${wait} s`);
  state.countdownTimer = setInterval(() => {
    wait -= 1;
    if (wait > 0) setStatus("offline", `Offline — retrying in ${wait} s`);
  }, 1000);
  state.retryTimer = setTimeout(connect, wait * 1000);
}

function send(request) {
  if (!state.socket || state.socket.readyState !== WebSocket.OPEN) {
    systemLine(state.current, "Not connected: that was not sent. Reconnecting…", "error-line");
    return false;
  }
  state.socket.send(JSON.stringify(request));
  return true;
}

function sendHello() {
  const hello = { type: "hello", version: 1, nick: state.nick, ref: "hello" };
  if (state.password && !state.registerAfterWelcome) hello.password = state.password;
  const resume = {};
  for (const c of state.conversations.values()) if (c.isRoom && c.newestId) resume[c.name] = c.newestId;
  if (Object.keys(resume).length) hello.resume = resume;
  send(hello);
}

// ---------------------------------------------------------------- events from the server

function handle(event) {
  switch (event.type) {
    case "welcome": return onWelcome(event);
    case "motd": return onMotd(event);
    case "joined": return onJoined(event);
    case "left": return onLeft(event);
    case "members": return onMembers(event);
    case "history": return onHistory(event);
    case "message": return onMessage(event);
    case "ack": return onAck(event);
    case "nick": return onNick(event);
    case "topic": return onTopic(event);
    case "notice": return onNotice(event);
    case "error": return onError(event);
    case "away": return onAway(event);
    case "current_room": return;
    case "shutdown": return systemLine(state.current, "The server is shutting down.", "error-line");
    case "pong": return;
    case "whois": return onWhois(event);
    case "rooms": return onRooms(event);
    case "moderation": return onModeration(event);
    case "invited": return systemLine(state.current, `${event.by} invites you to ${event.room}. Type /join ${event.room}`, "notice");
    case "inviting": return systemLine(state.current, `${event.nick} was invited to ${event.room}.`, "notice");
    default: return;
  }
}

function onWelcome(event) {
  state.welcomed = true;
  state.nick = event.nick;
  localStorage.setItem("parley.nick", event.nick);
  const reconnected = state.everWelcomed;
  state.everWelcomed = true;
  state.backoff = 1;
  state.firstDrop = 0;
  clearInterval(state.countdownTimer);
  setStatus("online", `Connected to ${event.server}`);
  $("me").textContent = event.nick;
  showApp();
  if (state.registerAfterWelcome) {
    state.registerAfterWelcome = false;
    send({ type: "register", password: state.password, ref: nextRef() });
  }
  state.helloRetries = 0;
  state.refused = false;
  if (reconnected) {
    // The server puts us back in #general; the other rooms are joined again, each replaying what was missed,
    // and each private conversation asks for what came after its newest message.
    state.resuming = new Set(["#general"]);
    for (const c of state.conversations.values()) {
      if (c.isRoom && (!c.joined || c.name.toLowerCase() === "#general")) continue;
      state.resuming.add(c.name.toLowerCase());
      if (c.isRoom) {
        send({ type: "join", room: c.name });
      } else if (c.newestId) {
        const ref = nextRef();
        state.resumeRequests.set(ref, c.name);
        send({ type: "history", room: c.name, after: c.newestId, limit: 500, ref });
      } else {
        state.resuming.delete(c.name.toLowerCase());
      }
    }
    // A room that cannot be joined again sends no replay: say what is known after a while all the same.
    state.reportTimer = setTimeout(reportMissed, 5000);
  }
}

/** After a reconnect, once every room's replay is in: how much was missed, where. */
function reportMissed() {
  clearTimeout(state.reportTimer);
  const missed = state.missedSinceDrop;
  state.missedSinceDrop = null;
  state.resuming = null;
  if (!missed) return;
  let total = 0;
  for (const count of missed.values()) total += count;
  const where = [...missed.entries()].filter(([, n]) => n > 0).map(([room, n]) => `${n} in ${room}`).join(", ");
  systemLine(state.current, total ? `Reconnected. You missed ${total} message${total === 1 ? "" : "s"}: ${where}.` : "Reconnected. You missed nothing.", "notice");
}

function onJoined(event) {
  const c = conversation(event.room);
  if (sameNick(event.nick, state.nick)) {
    c.joined = true;
    // The room becomes current when the user asked for it, or when the current window is no longer a room one
    // is in; a reconnect's joins leave the window being read (a private conversation too) as it is.
    const current = conversation(state.current, false);
    if (!current || (current.isRoom && !current.joined) || state.switchOnJoin === c.name.toLowerCase()) {
      state.switchOnJoin = null;
      select(c.name);
    }
    renderSidebar();
    return;
  }
  if (!c.nicks.some((n) => sameNick(n, event.nick))) c.nicks.push(event.nick);
  eventLine(c.name, `${event.nick} joined ${event.room}`);
  if (c.name === state.current) renderMembers();
}

function onLeft(event) {
  const c = conversation(event.room, false);
  if (!c) return;
  const reason = event.reason ? ` (${event.reason})` : "";
  if (sameNick(event.nick, state.nick)) {
    c.joined = false;
    eventLine(c.name, event.cause === "kicked" ? `You were removed from ${c.name}${reason}` : `You left ${c.name}`);
    if (event.cause !== "kicked") closeConversation(c.name);
    renderSidebar();
    return;
  }
  c.nicks = c.nicks.filter((n) => !sameNick(n, event.nick));
  c.operators.delete(event.nick.toLowerCase());
  const verb = { part: "left", quit: "quit", kicked: "was removed", lost: "lost the connection", send_queue_full: "was too slow and was disconnected", shutdown: "left" }[event.cause] || "left";
  eventLine(c.name, `${event.nick} ${verb}${reason}`);
  if (c.name === state.current) renderMembers();
}

function onMembers(event) {
  if (!event.room) {
    if (event.ref) systemLine(state.current, `Online: ${event.nicks.join(", ")}`, "notice");
    return;
  }
  const c = conversation(event.room);
  c.nicks = event.nicks.slice();
  c.operators = new Set((event.operators || []).map((n) => n.toLowerCase()));
  c.voiced = new Set((event.voiced || []).map((n) => n.toLowerCase()));
  if (event.ref) systemLine(c.name, `In ${c.name}: ${event.nicks.map((n) => prefix(c, n) + n).join(", ")}`, "notice");
  if (c.name === state.current) renderMembers();
}

function toMessage(m) {
  return { id: m.id, ts: m.ts, from: m.from, kind: m.kind, text: m.text, seq: ++state.seq };
}

function onHistory(event) {
  const name = event.room;
  const c = conversation(name);
  const messages = (event.messages || []).map(toMessage);
  const older = state.olderRequests.get(event.ref);
  if (older !== undefined) {
    state.olderRequests.delete(event.ref);
    c.loadingOlder = false;
    if (messages.length < 50) c.noOlder = true;
    const log = $("log");
    const fromBottom = log.scrollHeight - log.scrollTop;
    c.merge(messages);
    if (c.name === state.current) {
      renderLog();
      log.scrollTop = log.scrollHeight - fromBottom;
    }
    return;
  }
  if (state.resumeRequests.has(event.ref)) state.resumeRequests.delete(event.ref);
  else if (event.ref) return;
  // Our own messages that the drop left unconfirmed, and that the server did store: the stored copy stays.
  const stored = new Set(messages.filter((m) => sameNick(m.from, state.nick)).map((m) => m.text));
  c.messages = c.messages.filter((m) => !(m.failed && stored.has(m.text)));
  const before = c.newestId;
  const added = c.merge(messages);
  if (added && c.name === state.current) renderLog(true);
  if (state.missedSinceDrop && before) {
    const after = messages.filter((m) => m.id > before).length;
    state.missedSinceDrop.set(c.name, (state.missedSinceDrop.get(c.name) || 0) + after);
    if (after && c.name !== state.current) {
      c.unread += after;
      renderSidebar();
      updateTitle();
    }
  }
  if (state.resuming && state.resuming.delete(c.name.toLowerCase()) && state.resuming.size === 0) reportMissed();
}

function onMessage(event) {
  const name = event.room || (sameNick(event.to, state.nick) ? event.from : event.to) || state.current;
  const c = conversation(name);
  const message = toMessage(event);
  if (!c.merge([message])) return;
  const mention = !sameNick(event.from || "", state.nick) && mentions(event.text);
  if (c.name === state.current && document.visibilityState === "visible") {
    appendLine(c, message);
  } else {
    c.unread += 1;
    if (mention || !c.isRoom) c.mentioned = true;
    if (c.name === state.current) appendLine(c, message);
    renderSidebar();
  }
  if ((mention || !c.isRoom) && event.from && document.visibilityState !== "visible") notify(c, event);
  updateTitle();
}

function onAck(event) {
  const pending = state.pendingSends.get(event.ref);
  if (!pending) return;
  state.pendingSends.delete(event.ref);
  pending.message.id = event.id;
  pending.message.ts = event.ts;
  pending.message.pending = false;
  const c = conversation(pending.conversation);
  const before = c.messages.indexOf(pending.message);
  c.messages.sort((a, b) => sortKey(a) - sortKey(b) || a.seq - b.seq);
  // Usually it stays where it was shown (the newest): then only its look changes, no redraw (a paste of fifty
  // lines is fifty acks).
  if (c.messages.indexOf(pending.message) === before && pending.message.node) pending.message.node.classList.remove("pending");
  else if (c.name === state.current) renderLog(isAtBottom());
}

function onNick(event) {
  const mine = sameNick(event.from, state.nick);
  if (mine) {
    state.nick = event.to;
    localStorage.setItem("parley.nick", event.to);
    $("me").textContent = event.to;
  }
  const talk = conversation(event.from, false);
  if (talk && !talk.isRoom && !mine && !state.conversations.has(event.to.toLowerCase())) {
    // A private conversation follows the other's new nick.
    state.conversations.delete(event.from.toLowerCase());
    talk.name = event.to;
    state.conversations.set(event.to.toLowerCase(), talk);
    eventLine(talk.name, `${event.from} is now known as ${event.to}`);
    if (sameNick(state.current, event.from)) state.current = event.to;
    renderSidebar();
    renderHeader();
  }
  for (const c of state.conversations.values()) {
    const index = c.nicks.findIndex((n) => sameNick(n, event.from));
    if (index >= 0 || mine) {
      if (index >= 0) c.nicks[index] = event.to;
      for (const set of [c.operators, c.voiced]) {
        if (set.delete(event.from.toLowerCase())) set.add(event.to.toLowerCase());
      }
      if (c.isRoom && (index >= 0 || mine)) eventLine(c.name, mine ? `You are now known as ${event.to}` : `${event.from} is now known as ${event.to}`);
    }
  }
  renderMembers();
}

function onTopic(event) {
  const c = conversation(event.room);
  c.topic = event.text || "";
  if (event.by && !event.ts) eventLine(c.name, c.topic ? `${event.by} set the topic: ${c.topic}` : `${event.by} cleared the topic`);
  if (c.name === state.current) renderHeader();
}

function onError(event) {
  if (!state.welcomed && state.everWelcomed && event.code === "nick_taken" && state.helloRetries < 12) {
    // Reconnecting at once, our nick may still be held by the connection that just dropped (the server finds
    // a vanished peer within about two minutes): ask again, a little later each time.
    const wait = Math.min(2000 * 2 ** state.helloRetries, 15000);
    state.helloRetries += 1;
    setStatus("connecting", `Your nick is still held by the old connection — trying again in ${Math.round(wait / 1000)} s`);
    setTimeout(() => {
      if (!state.welcomed) sendHello();
    }, wait);
    return;
  }
  if (!state.welcomed) {
    state.refused = true;
    const words = {
      nick_taken: "That nickname is taken. Choose another.",
      invalid_nick: event.text,
      nick_registered: "That nickname is registered. Enter its password, or choose another nickname.",
      login_failed: "Wrong nickname or password.",
    };
    showSignin(words[event.code] || event.text);
    if (event.code === "server_password" || event.code === "insecure_connection") state.leaving = true;
    return;
  }
  if (event.ref && state.pendingSends.has(event.ref)) {
    const pending = state.pendingSends.get(event.ref);
    state.pendingSends.delete(event.ref);
    const c = conversation(pending.conversation);
    c.messages = c.messages.filter((m) => m !== pending.message);
    if (c.name === state.current) renderLog(isAtBottom());
  }
  if (event.code === "line_too_long" && !event.ref) {
    // Too long to be read, so it carries no ref: the oldest message still waiting is the one.
    const [ref, pending] = state.pendingSends.entries().next().value || [];
    if (pending) {
      state.pendingSends.delete(ref);
      pending.message.pending = false;
      pending.message.failed = true;
      if (pending.conversation === state.current) renderLog(isAtBottom());
    }
  }
  if (event.ref && state.olderRequests.has(event.ref)) {
    const c = conversation(state.olderRequests.get(event.ref));
    state.olderRequests.delete(event.ref);
    c.loadingOlder = false;
  }
  systemLine(state.current, event.text, "error-line");
}

/** The message of the day, as a banner at the top of the conversation; shown again after a reconnect only
    when it changed. */
function onMotd(event) {
  const text = (event.lines || []).join("\n");
  if (!text || text === state.motd) return;
  state.motd = text;
  for (const line of event.lines) systemLine(state.current, line, "motd");
}

function onNotice(event) {
  // The server agreed to the password just sent: it is the one to log in with after a reconnect.
  if (state.candidatePassword !== null && /logged in as|registered to you|password has been changed/i.test(event.text)) {
    state.password = state.candidatePassword;
    state.candidatePassword = null;
  }
  systemLine(state.current, event.text, "notice");
}

function onAway(event) {
  if (event.message) state.away.add(event.nick.toLowerCase());
  else state.away.delete(event.nick.toLowerCase());
  if (sameNick(event.nick, state.nick)) systemLine(state.current, event.message ? `You are away: ${event.message}` : "You are back.", "notice");
  renderMembers();
}

function onWhois(event) {
  if (!event.online) return systemLine(state.current, `${event.nick} is not online.`, "notice");
  const parts = [`${event.nick}`];
  if (event.real_name) parts.push(`(${event.real_name})`);
  if (event.account) parts.push(`logged in as ${event.account}`);
  if (event.rooms && event.rooms.length) parts.push(`in ${event.rooms.join(", ")}`);
  if (event.away) parts.push(`away: ${event.away}`);
  systemLine(state.current, parts.join(" "), "notice");
}

function onRooms(event) {
  const rooms = (event.rooms || []).map((r) => `${r.name} (${r.members})${r.topic ? " — " + r.topic : ""}`);
  systemLine(state.current, rooms.length ? `Rooms: ${rooms.join("; ")}` : "No rooms.", "notice");
}

function onModeration(event) {
  const c = conversation(event.room, false);
  if (!c) return;
  const by = event.by ? ` by ${event.by}` : "";
  if (event.action === "op") c.operators.add(event.target.toLowerCase());
  if (event.action === "deop") c.operators.delete(event.target.toLowerCase());
  if (event.action === "voice") c.voiced.add(event.target.toLowerCase());
  if (event.action === "devoice") c.voiced.delete(event.target.toLowerCase());
  eventLine(c.name, `${event.action} ${event.target || ""}${by}${event.reason ? " (" + event.reason + ")" : ""}`.replace(/\s+/g, " "));
  if (c.name === state.current) renderMembers();
}

// ---------------------------------------------------------------- the page

function showSignin(error) {
  $("signin").hidden = false;
  $("app").hidden = true;
  $("signin-error").textContent = error || "";
  $("signin-button").disabled = false;
  if (state.nick) $("nick").value = state.nick;
}

function showApp() {
  $("signin").hidden = true;
  $("app").hidden = false;
  renderSidebar();
  renderHeader();
  renderMembers();
  $("input").focus();
}

function setStatus(kind, text) {
  const status = $("status");
  status.className = "status " + kind;
  status.textContent = text;
}

function select(name) {
  const c = conversation(name);
  if (!c.isRoom && !c.asked && state.welcomed) {
    // A private conversation's history (kept for logged-in accounts): asked for once, when it is opened.
    c.asked = true;
    const ref = nextRef();
    c.loadingOlder = true;
    state.olderRequests.set(ref, c.name);
    send({ type: "history", room: c.name, limit: 50, ref });
  }
  state.current = c.name;
  c.unread = 0;
  c.mentioned = false;
  renderSidebar();
  renderHeader();
  renderMembers();
  renderLog(true);
  $("sidebar").classList.remove("open");
  $("menu-toggle").setAttribute("aria-expanded", "false");
  updateTitle();
}

function closeConversation(name) {
  state.conversations.delete(name.toLowerCase());
  if (state.current.toLowerCase() === name.toLowerCase()) {
    const next = [...state.conversations.values()].find((c) => c.isRoom && c.joined) || conversation("#general");
    select(next.name);
  }
  renderSidebar();
}

function renderSidebar() {
  for (const [listId, rooms] of [["rooms", true], ["queries", false]]) {
    const list = $(listId);
    list.replaceChildren();
    const items = [...state.conversations.values()].filter((c) => c.isRoom === rooms).sort((a, b) => a.name.localeCompare(b.name));
    for (const c of items) {
      const button = el("button");
      button.type = "button";
      if (c.name === state.current) button.setAttribute("aria-current", "true");
      if (c.unread) button.classList.add("unread");
      const label = el("span", "name", c.name);
      if (!c.isRoom) label.classList.add(nickClass(c.name));
      if (c.isRoom && !c.joined) label.classList.add("muted");
      button.append(label);
      if (c.unread) {
        const badge = el("span", "badge" + (c.mentioned ? " mention" : ""), String(c.unread));
        badge.setAttribute("aria-label", `${c.unread} unread${c.mentioned ? ", mentions you" : ""}`);
        button.append(badge);
      }
      button.addEventListener("click", () => select(c.name));
      // Leaving a room (or closing a private conversation) without typing /part.
      const close = el("button", "close", "×");
      close.type = "button";
      close.setAttribute("aria-label", c.isRoom ? `Leave ${c.name}` : `Close the conversation with ${c.name}`);
      close.title = c.isRoom ? "Leave the room" : "Close";
      close.addEventListener("click", () => {
        if (c.isRoom) send({ type: "part", room: c.name, ref: nextRef() });
        else closeConversation(c.name);
      });
      const item = el("li");
      item.append(button, close);
      list.append(item);
    }
  }
}

function renderHeader() {
  const c = conversation(state.current);
  $("title").textContent = c.name;
  $("topic").textContent = c.isRoom ? c.topic : "Private conversation";
  document.querySelector(".heading").title = c.topic;
}

function renderMembers() {
  const c = conversation(state.current, false);
  const list = $("member-list");
  list.replaceChildren();
  if (!c) return;
  const nicks = c.isRoom ? c.nicks.slice() : [state.nick, c.name];
  const rank = (n) => (c.operators.has(n.toLowerCase()) ? 0 : c.voiced.has(n.toLowerCase()) ? 1 : 2);
  nicks.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b, undefined, { sensitivity: "base" }));
  $("members-title").textContent = c.isRoom ? `Members — ${nicks.length}` : "Members";
  for (const nick of nicks) {
    const item = el("li");
    const mark = prefix(c, nick);
    const sign = el("span", "prefix", mark);
    if (mark === "@") sign.title = "room operator";
    if (mark === "+") sign.title = "may speak in a moderated room";
    const name = el("span", nickClass(nick), nick);
    item.append(sign, name);
    if (state.away.has(nick.toLowerCase())) {
      item.classList.add("away");
      item.title = "away";
    }
    list.append(item);
  }
}

function prefix(c, nick) {
  if (!c.isRoom) return "";
  if (c.operators.has(nick.toLowerCase())) return "@";
  if (c.voiced.has(nick.toLowerCase())) return "+";
  return "";
}

function isAtBottom() {
  const log = $("log");
  return log.scrollHeight - log.scrollTop - log.clientHeight < 40;
}

/** Draws the current conversation anew; `toBottom` scrolls to its end. */
function renderLog(toBottom) {
  const c = conversation(state.current);
  const log = $("log");
  const stick = toBottom || isAtBottom();
  log.replaceChildren();
  if (c.noOlder && c.messages.length) log.append(el("li", "older", "Beginning of the history"));
  let previous = null;
  for (const message of c.messages) {
    for (const line of linesFor(message, previous)) log.append(line);
    previous = message;
  }
  if (stick) log.scrollTop = log.scrollHeight;
  $("more-below").hidden = true;
  // Too short to scroll: what is older cannot be scrolled to, so it is asked for now.
  if (log.scrollHeight <= log.clientHeight) loadOlder();
}

function appendLine(c, message) {
  const log = $("log");
  const stick = isAtBottom();
  const index = c.messages.indexOf(message);
  const last = index === c.messages.length - 1;
  if (!last) return renderLog(stick);
  for (const line of linesFor(message, c.messages[index - 1] || null)) log.append(line);
  if (stick || sameNick(message.from || "", state.nick)) log.scrollTop = log.scrollHeight;
  else $("more-below").hidden = false;
}

const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long", year: "numeric", month: "long", day: "numeric" });
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

/** The list items of one message: a day separator when the day changed, then the message itself (without its
    sender's name when it continues that sender's run of the last five minutes). */
function linesFor(message, previous) {
  const lines = [];
  const when = message.ts ? new Date(message.ts) : new Date();
  const before = previous && previous.ts ? new Date(previous.ts) : null;
  if (!before || before.toDateString() !== when.toDateString()) {
    lines.push(el("li", "day", dayFormat.format(when)));
  }
  const item = el("li");
  message.node = item;
  if (message.pending) item.classList.add("pending");
  if (message.failed) {
    item.classList.add("failed");
    item.title = "Not sent: the connection ended first, or it was too long";
  }
  const time = el("time", "time", timeFormat.format(when));
  time.dateTime = when.toISOString();
  time.title = when.toLocaleString();
  item.append(time);
  if (message.kind === "event" || message.kind === "system") {
    item.append(el("span", message.className || "event", message.text));
    lines.push(item);
    return lines;
  }
  if (message.kind === "topic") {
    item.append(el("span", "event", `${message.from || "The server"} set the topic: ${message.text}`));
    lines.push(item);
    return lines;
  }
  const continues = previous && previous.from && message.from && sameNick(previous.from, message.from)
    && previous.kind !== "event" && previous.kind !== "system" && before && when - before < 5 * 60000 && message.kind === "normal" && previous.kind === "normal";
  if (!continues) item.classList.add("first");
  if (message.kind === "action") {
    item.append(el("span", "from " + nickClass(message.from || ""), "* " + (message.from || "")));
  } else if (message.kind === "notice" || !message.from) {
    item.append(el("span", "from notice", message.from ? `-${message.from}-` : "*"));
  } else if (!continues) {
    item.append(el("span", "from " + nickClass(message.from), message.from));
  }
  const body = el("span", "text");
  appendLinkified(body, message.text || "");
  item.append(body);
  if (message.from && !sameNick(message.from, state.nick) && mentions(message.text)) item.classList.add("mention");
  lines.push(item);
  return lines;
}

const urlPattern = /\bhttps?:\/\/[^\s<>"'`]+[^\s<>"'`.,;:!?)\]]/g;

/** Text with its http(s) URLs as links; everything goes in as text nodes. */
function appendLinkified(parent, text) {
  let at = 0;
  for (const match of text.matchAll(urlPattern)) {
    parent.append(document.createTextNode(text.slice(at, match.index)));
    let url;
    try {
      url = new URL(match[0]);
    } catch {
      url = null;
    }
    if (url && (url.protocol === "http:" || url.protocol === "https:")) {
      const link = el("a", null, match[0]);
      link.href = url.href;
      link.rel = "noopener noreferrer nofollow";
      link.target = "_blank";
      parent.append(link);
    } else {
      parent.append(document.createTextNode(match[0]));
    }
    at = match.index + match[0].length;
  }
  parent.append(document.createTextNode(text.slice(at)));
}

/** A line of our own (a join, an error) in a conversation: kept with its messages, with no id. */
function systemLine(name, text, className) {
  const c = conversation(name);
  const message = { kind: "system", className: className || "notice", text, ts: new Date().toISOString(), after: c.newestId, seq: ++state.seq };
  c.merge([message]);
  if (c.name === state.current) appendLine(c, message);
}

function eventLine(name, text) {
  const c = conversation(name);
  const message = { kind: "event", text, ts: new Date().toISOString(), after: c.newestId, seq: ++state.seq };
  c.merge([message]);
  if (c.name === state.current) appendLine(c, message);
}

function nickClass(nick) {
  // FNV-1a over the lowercased nick's UTF-8, as the terminal client (ChatView.colour(of:)) picks its colour.
  let hash = 2166136261;
  for (const byte of new TextEncoder().encode(nick.toLowerCase())) hash = Math.imul(hash ^ byte, 16777619) >>> 0;
  return "nick-" + (hash % 6);
}

const sameNick = (a, b) => (a || "").toLowerCase() === (b || "").toLowerCase();

function mentions(text) {
  if (!state.nick || !text) return false;
  const escaped = state.nick.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(^|[^\\p{L}\\p{N}_])${escaped}($|[^\\p{L}\\p{N}_])`, "iu").test(text);
}

function updateTitle() {
  let unread = 0;
  for (const c of state.conversations.values()) unread += c.unread;
  document.title = unread ? `(${unread}) Parley` : "Parley";
}

function notify(c, event) {
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  const title = c.isRoom ? `${event.from} in ${c.name}` : `${event.from} (private)`;
  try {
    const notification = new Notification(title, { body: event.text, tag: c.name });
    notification.addEventListener("click", () => {
      window.focus();
      select(c.name);
    });
  } catch {
    // Some browsers (Android's) allow notifications only from a service worker: the title still counts.
  }
}

// ---------------------------------------------------------------- scrollback

function loadOlder() {
  const c = conversation(state.current);
  if (c.noOlder || c.loadingOlder || !c.oldestId || c.messages.length >= Conversation.limit) return;
  c.loadingOlder = true;
  const ref = nextRef();
  state.olderRequests.set(ref, c.name);
  if (!send({ type: "history", room: c.name, before: c.oldestId, limit: 50, ref })) {
    c.loadingOlder = false;
    state.olderRequests.delete(ref);
  }
}

// ---------------------------------------------------------------- what the user types

const commands = [
  ["/join #room [key]", "join a room, or create it"],
  ["/part [#room] [reason]", "leave a room (the current one by default)"],
  ["/msg nick text", "a private message"],
  ["/query nick", "open a private conversation"],
  ["/close", "close the current conversation (a room: leave it)"],
  ["/me text", "an action"],
  ["/nick name", "change your nickname"],
  ["/topic [text]", "show or set the room's topic"],
  ["/who [#room]", "who is in the room (or online)"],
  ["/rooms", "list the rooms"],
  ["/whois nick", "about someone"],
  ["/away [text]", "mark yourself away; /back to return"],
  ["/register password", "register your nickname"],
  ["/login nick password", "log in to your account"],
  ["/passwd old new", "change your password"],
  ["/invite nick [#room]", "invite someone to a room"],
  ["/kick nick [reason]", "remove someone from the room (operators)"],
  ["/ban mask", "ban (operators); /unban, /mute, /unmute likewise"],
  ["/op nick", "make someone an operator; /deop"],
  ["/clear", "clear this window"],
  ["/quit [reason]", "leave the chat"],
  ["/help", "this list"],
];

function runCommand(line) {
  const [word, ...rest] = line.slice(1).split(" ");
  const args = rest.filter((part) => part.length);
  const restText = rest.join(" ").trim();
  const c = conversation(state.current);
  const room = c.isRoom ? c.name : null;
  const ref = nextRef();
  switch (word.toLowerCase()) {
    case "join": case "j": {
      if (!args[0]) return usage("/join #room");
      const name = args[0].startsWith("#") ? args[0] : "#" + args[0];
      state.switchOnJoin = name.toLowerCase();
      const existing = conversation(name, false);
      if (existing && existing.joined) return select(existing.name);
      return send({ type: "join", room: name, ...(args[1] ? { key: args[1] } : {}), ref });
    }
    case "part": case "leave": {
      const target = args[0] && args[0].startsWith("#") ? args.shift() : room;
      if (!target) return usage("/part #room");
      return send({ type: "part", room: target, ...(args.length ? { reason: args.join(" ") } : {}), ref });
    }
    case "close":
      if (c.isRoom) return send({ type: "part", room: c.name, ref });
      return closeConversation(c.name);
    case "msg": case "query": {
      if (!args[0]) return usage(`/${word} nick`);
      const text = rest.join(" ").trim().slice(args[0].length).trim();
      select(conversation(args[0]).name);
      if (text) sendText(text);
      return;
    }
    case "me":
      if (!restText) return usage("/me text");
      return sendText(restText, "action");
    case "nick":
      if (!args[0]) return usage("/nick name");
      return send({ type: "nick", nick: args[0], ref });
    case "topic":
      if (!room) return usage("/topic in a room");
      return send(restText ? { type: "topic", room, text: restText, ref } : { type: "topic", room, ref });
    case "who":
      return send({ type: "who", ...(args[0] || room ? { room: args[0] || room } : {}), ref });
    case "rooms": case "list":
      return send({ type: "rooms", ref });
    case "whois":
      if (!args[0]) return usage("/whois nick");
      return send({ type: "whois", nick: args[0], ref });
    case "away":
      return send(restText ? { type: "away", text: restText, ref } : { type: "away", ref });
    case "back":
      return send({ type: "away", ref });
    case "register":
      if (!args[0]) return usage("/register password");
      state.candidatePassword = args[0];
      return send({ type: "register", password: args[0], ref });
    case "login":
      if (args.length < 2) return usage("/login nick password");
      state.candidatePassword = args[1];
      return send({ type: "login", nick: args[0], password: args[1], ref });
    case "passwd":
      if (args.length < 2) return usage("/passwd old new");
      state.candidatePassword = args[1];
      return send({ type: "passwd", old: args[0], new: args[1], ref });
    case "invite":
      if (!args[0]) return usage("/invite nick [#room]");
      return send({ type: "invite", nick: args[0], room: args[1] || room, ref });
    case "kick":
      if (!args[0] || !room) return usage("/kick nick [reason] in a room");
      return send({ type: "kick", room, nick: args[0], ...(args.length > 1 ? { reason: args.slice(1).join(" ") } : {}), ref });
    case "ban": case "mute": {
      if (!args[0] || !room) return usage(`/${word} nick|mask [duration like 10m or 7d] [reason] in a room`);
      const request = { type: word.toLowerCase(), room, mask: args[0], ref };
      const duration = seconds(args[1]);
      const reason = args.slice(duration ? 2 : 1).join(" ");
      if (duration) request.duration = duration;
      if (reason) request.reason = reason;
      return send(request);
    }
    case "unban": case "unmute":
      if (!args[0] || !room) return usage(`/${word} nick|mask in a room`);
      return send({ type: word.toLowerCase(), room, mask: args[0], ref });
    case "op": case "deop": case "voice": case "devoice":
      if (!args[0] || !room) return usage(`/${word} nick in a room`);
      return send({ type: word.toLowerCase(), room, nick: args[0], ref });
    case "clear":
      c.messages = [];
      return renderLog(true);
    case "quit":
      state.leaving = true;
      send(restText ? { type: "quit", reason: restText } : { type: "quit" });
      return;
    case "help":
      return toggleHelp(true);
    default:
      return systemLine(state.current, `Unknown command /${word}. Type /help for the list.`, "error-line");
  }
}

/** `90`, `10m`, `2h`, `7d`, `1w` as seconds; undefined for anything else. */
function seconds(text) {
  const match = /^(\d+)([smhdw]?)$/.exec(text || "");
  if (!match) return undefined;
  return Number(match[1]) * { "": 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[match[2]];
}

function usage(text) {
  systemLine(state.current, `Usage: ${text}`, "error-line");
}

function sendText(text, kind) {
  const c = conversation(state.current);
  const ref = nextRef();
  const request = c.isRoom ? { type: "send", room: c.name, text, ref } : { type: "send", to: c.name, text, ref };
  if (kind) request.kind = kind;
  if (!send(request)) return;
  const message = { from: state.nick, kind: kind || "normal", text, ts: new Date().toISOString(), pending: true, seq: ++state.seq };
  state.pendingSends.set(ref, { conversation: c.name, message });
  c.merge([message]);
  appendLine(c, message);
}

function submitInput() {
  const input = $("input");
  const text = input.value;
  if (!text.trim()) return;
  input.value = "";
  resizeInput();
  state.inputHistory.push(text);
  if (state.inputHistory.length > 200) state.inputHistory.shift();
  state.historyIndex = -1;
  // A paste of several lines is sent as that many lines of text, in order, never run as commands (a pasted
  // log may hold a /quit); a single line starting with / is a command, // sends a line starting with /.
  const lines = text.split(/\r?\n/).filter((line) => line.trim());
  if (lines.length === 1 && lines[0].startsWith("/") && !lines[0].startsWith("//")) return runCommand(lines[0].trim());
  for (const line of lines) sendText(line.startsWith("//") ? line.slice(1) : line);
}

function resizeInput() {
  const input = $("input");
  input.style.height = "auto";
  input.style.height = Math.min(input.scrollHeight, 160) + "px";
}

/** Tab: completes the word before the cursor with a nick of the conversation or a room name. */
function complete(input) {
  const before = input.value.slice(0, input.selectionStart);
  const word = before.match(/[^\s]*$/)[0];
  if (!word) return false;
  const c = conversation(state.current);
  const candidates = word.startsWith("#")
    ? [...state.conversations.values()].filter((x) => x.isRoom).map((x) => x.name)
    : (c.isRoom ? c.nicks : [c.name]).filter((n) => !sameNick(n, state.nick));
  const matches = candidates.filter((n) => n.toLowerCase().startsWith(word.toLowerCase())).sort();
  if (!matches.length) return false;
  const start = before.length - word.length;
  const atLineStart = start === 0 && !word.startsWith("#");
  const completion = matches[0] + (atLineStart ? ": " : " ");
  input.value = input.value.slice(0, start) + completion + input.value.slice(input.selectionStart);
  input.selectionStart = input.selectionEnd = start + completion.length;
  return true;
}

function toggleHelp(show) {
  const help = $("help");
  help.hidden = !show;
  if (show) $("help-close").focus();
  else $("input").focus();
}

// ---------------------------------------------------------------- wiring

function start() {
  const list = $("help-list");
  for (const [usageText, description] of commands) list.append(el("dt", null, usageText), el("dd", null, description));
  if (state.nick) $("nick").value = state.nick;
  $("signin-server").textContent = `Choose a nickname to join the chat at ${location.host}.`;
  $("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const nick = $("nick").value.trim();
    if (!nick) return;
    state.nick = nick;
    state.password = $("password").value;
    state.registerAfterWelcome = $("register").checked && state.password.length > 0;
    state.leaving = false;
    state.refused = false;
    $("signin-error").textContent = "";
    $("signin-button").disabled = true;
    // Asked while the user is clicking: browsers show the prompt only for a gesture.
    if ("Notification" in window && Notification.permission === "default") Notification.requestPermission();
    if (state.socket && state.socket.readyState === WebSocket.OPEN) sendHello();
    else connect();
  });
  $("input-form").addEventListener("submit", (event) => {
    event.preventDefault();
    submitInput();
  });
  const input = $("input");
  input.addEventListener("input", resizeInput);
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submitInput();
    } else if (event.key === "Tab" && !event.shiftKey) {
      if (complete(input)) event.preventDefault();
    } else if (event.key === "ArrowUp" && !input.value.slice(0, input.selectionStart).includes("\n") && state.inputHistory.length) {
      event.preventDefault();
      if (state.historyIndex === -1) {
        state.draft = input.value;
        state.historyIndex = state.inputHistory.length;
      }
      state.historyIndex = Math.max(0, state.historyIndex - 1);
      input.value = state.inputHistory[state.historyIndex];
    } else if (event.key === "ArrowDown" && state.historyIndex !== -1 && !input.value.slice(input.selectionEnd).includes("\n")) {
      event.preventDefault();
      state.historyIndex += 1;
      if (state.historyIndex >= state.inputHistory.length) {
        state.historyIndex = -1;
        input.value = state.draft;
      } else {
        input.value = state.inputHistory[state.historyIndex];
      }
    } else if (event.key === "Escape") {
      toggleHelp(false);
    }
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !$("help").hidden) return toggleHelp(false);
    // Alt+Up/Down: the previous or next conversation.
    if (!event.altKey || (event.key !== "ArrowUp" && event.key !== "ArrowDown")) return;
    const all = [...state.conversations.values()].sort((a, b) => (a.isRoom === b.isRoom ? a.name.localeCompare(b.name) : a.isRoom ? -1 : 1));
    const index = all.findIndex((c) => c.name === state.current);
    const next = all[(index + (event.key === "ArrowUp" ? -1 : 1) + all.length) % all.length];
    if (next) {
      event.preventDefault();
      select(next.name);
    }
  });
  $("join-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const name = $("join-room").value.trim();
    if (!name) return;
    $("join-room").value = "";
    runCommand("/join " + name);
  });
  $("log").addEventListener("scroll", () => {
    const log = $("log");
    if (log.scrollTop < 80) loadOlder();
    if (isAtBottom()) $("more-below").hidden = true;
  });
  $("more-below").addEventListener("click", () => {
    const log = $("log");
    log.scrollTop = log.scrollHeight;
    $("more-below").hidden = true;
  });
  $("help-button").addEventListener("click", () => toggleHelp(true));
  $("help-close").addEventListener("click", () => toggleHelp(false));
  for (const [button, panel] of [["menu-toggle", "sidebar"], ["members-toggle", "members"]]) {
    $(button).addEventListener("click", () => {
      const open = $(panel).classList.toggle("open");
      $(button).setAttribute("aria-expanded", String(open));
    });
  }
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState !== "visible") return;
    const c = conversation(state.current, false);
    if (c && c.unread) {
      c.unread = 0;
      c.mentioned = false;
      renderSidebar();
      updateTitle();
    }
  });
  setInterval(keepAlive, 5000);
  showSignin();
  $("nick").focus();
}

start();
