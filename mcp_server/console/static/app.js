// The memory console: plain DOM, no framework. Every stored string reaches the page as a text node (el() and
// Node.append never parse HTML), so a memory holding markup shows its characters and runs nothing.

const TOKEN_KEY = "agent-memory-console-token";
const PAGE = 20;
const $ = (id) => document.getElementById(id);

const state = { me: null, memoryCursors: [null], sessionCursors: [null], request: 0 };

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function say(message) {
  // Cleared first so that the same sentence twice is announced twice.
  $("status").textContent = "";
  window.setTimeout(() => { $("status").textContent = message; }, 30);
}

async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(new URL(`api/${path}`, document.baseURI), {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "omit", cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "The console could not reach the server: check that it is running, then try again.");
  }
  let data = null;
  try { data = await response.json(); } catch { /* not JSON: the status says enough */ }
  if (!response.ok) {
    const message = (data && data.message) || `The server answered ${response.status}: try again.`;
    if (response.status === 401 && path !== "whoami") signIn("Your sign-in is no longer accepted: sign in again.");
    throw new ApiError(response.status, message);
  }
  return data;
}

const query = (params) => {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value) search.set(key, value);
  const text = search.toString();
  return text ? `?${text}` : "";
};

function when(iso) {
  if (!iso) return "never";
  return el("time", { datetime: iso }, new Date(iso).toLocaleString());
}

function localInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function fromLocalInput(value) {
  return value ? new Date(value).toISOString() : null;
}

function problem(error) {
  return el("p", { class: "error", role: "alert" }, error.message || String(error));
}

function heading(text) {
  return el("h1", { tabindex: "-1", id: "view-title" }, text);
}

function show(...nodes) {
  $("view").replaceChildren(...nodes);
}

function focusTitle() {
  const title = $("view-title");
  if (title && document.activeElement !== $("memory-search") && document.activeElement !== $("history-search")) {
    title.focus({ preventScroll: true });
  }
}

function segments(parts, fallback) {
  if (!parts || !parts.length) return [fallback || ""];
  return parts.map(([text, hit]) => (hit ? el("mark", {}, text) : text));
}

function pager(cursors, nextCursor, onMove, label) {
  const newer = el("button", { type: "button", disabled: cursors.length < 2 }, "Newer");
  const older = el("button", { type: "button", disabled: !nextCursor }, "Older");
  newer.addEventListener("click", () => { cursors.pop(); onMove(); });
  older.addEventListener("click", () => { cursors.push(nextCursor); onMove(); });
  return el("nav", { class: "pager", "aria-label": label }, newer, older);
}

function countText(total, capped, noun) {
  const word = total === 1 && !capped ? noun.replace(/s$/, "") : noun;
  return `${capped ? "more than " : ""}${total.toLocaleString()} ${word}`.trim();
}

function jsonText(value) {
  // Small objects read best on one line; larger ones indented.
  const flat = JSON.stringify(value);
  return flat.length <= 80 ? flat : JSON.stringify(value, null, 2);
}

// --- sign-in --------------------------------------------------------------------------------------------------

function signIn(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.me = null;
  $("nav").hidden = true;
  $("account").hidden = true;
  $("view").replaceChildren();
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = message || "";
  $("token").value = "";
  $("token").focus();
}

async function start() {
  try {
    state.me = await api("whoami");
  } catch (error) {
    if (error.status === 401) {
      signIn(sessionStorage.getItem(TOKEN_KEY) ? "The server did not accept this token: check it and try again." : "");
      return;
    }
    show(problem(error));
    return;
  }
  $("sign-in").hidden = true;
  $("nav").hidden = false;
  $("account").hidden = false;
  const access = state.me.read_only ? " (read-only)" : "";
  $("who").textContent = `${state.me.user} with ${state.me.agent}${access}`;
  route();
}

// --- memories -------------------------------------------------------------------------------------------------

function memoryFacts(memory) {
  const facts = [["Scope", memory.scope], ["Created", when(memory.created_at)], ["Updated", when(memory.updated_at)]];
  if (memory.expires_at) facts.push(["Expires", when(memory.expires_at)]);
  if (memory.read_mode !== "tool") facts.push(["Read mode", memory.read_mode]);
  if (memory.access === "read_only") facts.push(["Access", "read-only"]);
  if (memory.description) facts.push(["Description", memory.description]);
  if (memory.score !== undefined) facts.push(["Score", memory.score.toFixed(3)]);
  const list = el("dl", { class: "facts" }, facts.map(([name, value]) => [el("dt", {}, name), el("dd", {}, value)]));
  if (memory.metadata && Object.keys(memory.metadata).length) {
    list.append(el("dt", {}, "Metadata"), el("dd", {}, el("pre", {}, jsonText(memory.metadata))));
  }
  return list;
}

function memoryCard(memory) {
  const titleId = `memory-${memory.id}`;
  const item = el("li", { class: "card", "data-id": memory.id });
  const render = () => {
    const content = el("p", { class: "content" }, segments(memory.parts, memory.content));
    if (memory.truncated) content.append(el("span", { class: "hint" }, " … (shortened: Edit shows it whole)"));
    const actions = el("div", { class: "actions" });
    if (!state.me.read_only && memory.access !== "read_only") {
      actions.append(
        el("button", { type: "button", "aria-describedby": titleId, onclick: () => editMemory(item, memory, render) }, "Edit"),
        el("button", { type: "button", class: "danger", "aria-describedby": titleId, onclick: () => deleteMemory(item, memory) }, "Delete"),
      );
    }
    item.replaceChildren(el("article", { "aria-labelledby": titleId },
      el("h2", { id: titleId, class: memory.name ? "name" : "name unnamed" }, memory.name || "Unnamed memory"),
      content, memoryFacts(memory), actions));
  };
  render();
  return item;
}

function field(label, control, hint) {
  const id = `f-${Math.random().toString(36).slice(2)}`;
  control.id = id;
  return el("div", { class: "field" }, el("label", { for: id }, label), control, hint ? el("p", { class: "hint" }, hint) : null);
}

async function editMemory(item, memory, render) {
  let full = memory;
  if (memory.truncated) {
    try { full = (await api(`memories/${memory.id}`)).memory; } catch (error) { item.append(problem(error)); return; }
  }
  const content = el("textarea", { rows: 5, required: true }); content.value = full.content;
  const name = el("input", { type: "text", maxlength: 500 }); name.value = full.name || "";
  const expires = el("input", { type: "datetime-local" }); expires.value = localInput(full.expires_at);
  const error = el("p", { class: "error", role: "alert" });
  const cancel = el("button", { type: "button" }, "Cancel");
  const form = el("form", { class: "edit", novalidate: true },
    field("Content", content), field("Name", name, "Empty: no name."), field("Expires", expires, "Empty: never."),
    el("div", { class: "actions" }, el("button", { type: "submit" }, "Save"), cancel), error);
  const close = () => { render(); item.querySelector("button")?.focus(); };
  cancel.addEventListener("click", close);
  form.addEventListener("keydown", (event) => { if (event.key === "Escape") { event.preventDefault(); close(); } });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const change = {};
    if (content.value !== full.content) change.content = content.value;
    if (name.value.trim() !== (full.name || "")) change.name = name.value.trim() || null;
    if (expires.value !== localInput(full.expires_at)) change.expires_at = fromLocalInput(expires.value);
    if (!Object.keys(change).length) { close(); return; }
    try {
      const saved = (await api(`memories/${memory.id}`, { method: "PATCH", body: change })).memory;
      Object.assign(memory, saved, { parts: null, truncated: false });
      close();
      say("Memory saved.");
    } catch (failure) {
      error.textContent = failure.message;
    }
  });
  item.replaceChildren(el("article", {}, el("h2", { class: "name" }, `Editing ${full.name || "an unnamed memory"}`), form));
  content.focus();
}

function confirmDelete(memory) {
  const dialog = $("confirm");
  const preview = memory.content.length > 120 ? `${memory.content.slice(0, 120)}…` : memory.content;
  $("confirm-text").textContent = `${memory.name ? `“${memory.name}”: ` : ""}${preview} — it is deleted for good.`;
  return new Promise((resolve) => {
    const done = (answer) => {
      dialog.removeEventListener("close", onClose);
      $("confirm-delete").onclick = null;
      $("confirm-cancel").onclick = null;
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    const onClose = () => done(false);
    dialog.addEventListener("close", onClose);
    $("confirm-delete").onclick = () => done(true);
    $("confirm-cancel").onclick = () => done(false);
    dialog.showModal();
    $("confirm-cancel").focus();
  });
}

async function deleteMemory(item, memory) {
  const opener = document.activeElement;
  if (!(await confirmDelete(memory))) { opener?.focus(); return; }
  try {
    await api(`memories/${memory.id}`, { method: "DELETE" });
  } catch (error) {
    item.append(problem(error));
    opener?.focus();
    return;
  }
  const next = item.nextElementSibling || item.previousElementSibling;
  item.remove();
  say("Memory deleted.");
  (next?.querySelector("button") || $("view-title"))?.focus();
}

function newMemoryForm(slot, reload) {
  const content = el("textarea", { rows: 4, required: true });
  const name = el("input", { type: "text", maxlength: 500 });
  const scope = el("select", {}, state.me.writable_scopes.filter((s) => s !== "session").map((s) => el("option", { value: s }, s)));
  const expires = el("input", { type: "datetime-local" });
  const error = el("p", { class: "error", role: "alert" });
  const cancel = el("button", { type: "button" }, "Cancel");
  const form = el("form", { class: "edit card", novalidate: true, "aria-label": "New memory" },
    field("Content", content), field("Name", name, "Optional: storing again under a name updates that memory."),
    field("Scope", scope, "user: you with this agent; agent: every user of this agent."), field("Expires", expires, "Empty: never."),
    el("div", { class: "actions" }, el("button", { type: "submit" }, "Save"), cancel), error);
  cancel.addEventListener("click", () => { slot.replaceChildren(); $("new-memory")?.focus(); });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { content: content.value, scope: scope.value };
    if (name.value.trim()) body.name = name.value.trim();
    if (expires.value) body.expires_at = fromLocalInput(expires.value);
    try {
      const written = await api("memories", { method: "POST", body });
      slot.replaceChildren();
      say(written.outcome === "unchanged" ? "That memory was already stored." : "Memory saved.");
      state.memoryCursors = [null];
      await reload();
      $("new-memory")?.focus();
    } catch (failure) {
      error.textContent = failure.message;
    }
  });
  slot.replaceChildren(form);
  content.focus();
}

function showMemories() {
  const search = el("input", { type: "search", id: "memory-search", autocomplete: "off" });
  const scope = el("select", { id: "memory-scope" }, el("option", { value: "" }, "All scopes"),
    state.me.scopes.map((s) => el("option", { value: s }, s)));
  const status = el("p", { class: "summary", "aria-live": "polite", id: "memory-summary" });
  const list = el("ol", { class: "cards", id: "memory-list" });
  const paging = el("div");
  const slot = el("div");
  const load = async () => {
    const ticket = ++state.request;
    const q = search.value.trim();
    try {
      if (q) {
        const found = await api(`memories/search${query({ q, scope: scope.value })}`);
        if (ticket !== state.request) return;
        list.replaceChildren(...found.results.map(memoryCard));
        paging.replaceChildren();
        status.textContent = found.results.length ? `${found.results.length} best matches for “${q}”, best first.` : `No memory matches “${q}”.`;
        return;
      }
      const cursor = state.memoryCursors[state.memoryCursors.length - 1];
      const page = await api(`memories${query({ limit: PAGE, cursor, scope: scope.value })}`);
      if (ticket !== state.request) return;
      list.replaceChildren(...page.memories.map(memoryCard));
      paging.replaceChildren(pager(state.memoryCursors, page.next_cursor, load, "Memory pages"));
      const first = (state.memoryCursors.length - 1) * PAGE + 1;
      status.textContent = page.memories.length
        ? `Memories ${first}–${first + page.memories.length - 1} of ${countText(page.total, page.total_capped, "")}`.trim() + ", newest first."
        : "No memories yet.";
    } catch (error) {
      if (ticket === state.request) { list.replaceChildren(); status.replaceChildren(problem(error)); }
    }
  };
  let timer = 0;
  search.addEventListener("input", () => { window.clearTimeout(timer); timer = window.setTimeout(load, 250); });
  scope.addEventListener("change", () => { state.memoryCursors = [null]; load(); });
  const form = el("form", { role: "search", class: "search", "aria-label": "Memories" },
    el("label", { for: "memory-search" }, "Search memories"), search,
    el("label", { for: "memory-scope" }, "Scope"), scope, el("button", { type: "submit" }, "Search"));
  form.addEventListener("submit", (event) => { event.preventDefault(); window.clearTimeout(timer); load(); });
  const tools = el("div", { class: "toolbar" }, form);
  if (!state.me.read_only) {
    tools.append(el("button", { type: "button", id: "new-memory", onclick: () => newMemoryForm(slot, load) }, "New memory"));
  } else {
    tools.append(el("p", { class: "hint" }, "This token is read-only: you can search and read, not change."));
  }
  show(heading("Memories"), tools, slot, status, list, paging);
  return load();
}

// --- sessions -------------------------------------------------------------------------------------------------

function sessionLink(id, name) {
  return el("a", { href: `#/sessions/${encodeURIComponent(id)}` }, name || "Untitled session");
}

function showSessions() {
  const search = el("input", { type: "search", id: "history-search", autocomplete: "off" });
  const status = el("p", { class: "summary", "aria-live": "polite" });
  const results = el("ol", { class: "cards" });
  const list = el("ol", { class: "sessions" });
  const paging = el("div");
  const load = async () => {
    const ticket = ++state.request;
    try {
      const cursor = state.sessionCursors[state.sessionCursors.length - 1];
      const page = await api(`sessions${query({ limit: PAGE, cursor })}`);
      if (ticket !== state.request) return;
      list.replaceChildren(...page.sessions.map((s) => el("li", {}, sessionLink(s.id, s.name), el("span", { class: "meta" },
        ` ${countText(s.message_count ?? 0, false, "messages")} · ${s.platform ? `${s.platform} · ` : ""}updated `, when(s.updated_at)))));
      paging.replaceChildren(pager(state.sessionCursors, page.next_cursor, load, "Session pages"));
      if (!search.value.trim()) status.textContent = page.sessions.length ? `${countText(page.total, page.total_capped, "sessions")}, newest first.` : "No sessions yet.";
    } catch (error) {
      status.replaceChildren(problem(error));
    }
  };
  const find = async () => {
    const q = search.value.trim();
    if (!q) { results.replaceChildren(); load(); return; }
    try {
      const found = await api(`sessions/search${query({ q })}`);
      results.replaceChildren(...found.results.map((m) => el("li", { class: "card" },
        el("p", { class: "meta" }, `${m.role}${m.name ? ` (${m.name})` : ""} · `, when(m.created_at), " · ", sessionLink(m.session_id, "Open its session")),
        el("p", { class: "content" }, segments(m.parts, m.text_content)))));
      status.textContent = found.results.length ? `${found.results.length} messages match “${q}”, best first.` : `No message matches “${q}”.`;
    } catch (error) {
      status.replaceChildren(problem(error));
    }
  };
  let timer = 0;
  search.addEventListener("input", () => { window.clearTimeout(timer); timer = window.setTimeout(find, 250); });
  const form = el("form", { role: "search", class: "search", "aria-label": "History" },
    el("label", { for: "history-search" }, "Search history"), search, el("button", { type: "submit" }, "Search"));
  form.addEventListener("submit", (event) => { event.preventDefault(); window.clearTimeout(timer); find(); });
  show(heading("Sessions"), el("div", { class: "toolbar" }, form), status, results, el("h2", {}, "All sessions"), list, paging);
  return load();
}

function messageItem(message) {
  const item = el("li", { class: `message role-${message.role}` },
    el("p", { class: "meta" }, el("strong", {}, message.role), message.name ? ` (${message.name})` : "", " · ", when(message.created_at)));
  if (message.text_content) item.append(el("p", { class: "content" }, message.text_content));
  if (message.truncated) item.append(el("p", { class: "hint" }, "(shortened)"));
  for (const [key, label] of [["tool_calls", "Tool calls"], ["tool_outputs", "Tool output"]]) {
    if (message[key] !== undefined && message[key] !== null) {
      item.append(el("details", {}, el("summary", {}, label), el("pre", {}, jsonText(message[key]))));
    }
  }
  if (message.media_url) item.append(el("p", { class: "meta" }, `Media: ${message.media_url}`));
  return item;
}

async function showTranscript(id) {
  show(heading("Session"), el("p", { class: "summary" }, "Loading…"));
  let page;
  try {
    page = await api(`sessions/${encodeURIComponent(id)}`);
  } catch (error) {
    show(el("p", {}, el("a", { href: "#/sessions" }, "Back to the session list")), heading("Session"), problem(error));
    return;
  }
  const session = page.session;
  const list = el("ol", { class: "transcript" }, page.messages.map(messageItem));
  const more = el("div");
  const older = (cursor) => {
    if (!cursor) { more.replaceChildren(); return; }
    const button = el("button", { type: "button" }, "Older messages");
    button.addEventListener("click", async () => {
      try {
        const next = await api(`sessions/${encodeURIComponent(id)}${query({ cursor })}`);
        list.prepend(...next.messages.map(messageItem));
        older(next.next_cursor);
        say(`${next.messages.length} older messages shown.`);
        (more.querySelector("button") || list.querySelector("li"))?.focus();
      } catch (error) {
        more.append(problem(error));
      }
    });
    more.replaceChildren(button);
  };
  older(page.next_cursor);
  const shown = page.next_cursor ? `the latest ${page.messages.length} messages` : countText(page.messages.length, false, "messages");
  const facts = `${shown}${session.platform ? ` · ${session.platform}` : ""} · started `;
  show(el("p", {}, el("a", { href: "#/sessions" }, "Back to the session list")), heading(session.name || "Untitled session"),
    el("p", { class: "summary" }, facts, when(session.created_at)), more, list);
  focusTitle();
}

// --- overview -------------------------------------------------------------------------------------------------

function bytes(n) {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let value = n; let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return unit ? `${value.toFixed(1)} ${units[unit]}` : `${value} bytes`;
}

async function showOverview() {
  show(heading("Overview"));
  try {
    const o = await api("overview");
    const rows = [
      ["Memories you can see", countText(o.memories, o.memories_capped, "")],
      ["Sessions", countText(o.sessions, o.sessions_capped, "")],
      ["Messages in them", countText(o.messages, o.messages_capped, "")],
      ["Database", `${o.database_dialect}, ${bytes(o.database_bytes)}`],
      ["Schema revision", o.schema_revision || "none"],
    ];
    $("view").append(el("dl", { class: "facts overview" }, rows.map(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v).trim())])));
  } catch (error) {
    $("view").append(problem(error));
  }
}

// --- routing --------------------------------------------------------------------------------------------------

async function route() {
  if (!state.me) return;
  const [page, id] = (location.hash || "#/memories").replace(/^#\/?/, "").split("/");
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.page === (page || "memories")) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (page === "sessions" && id) return showTranscript(decodeURIComponent(id));
  if (page === "sessions") { await showSessions(); return focusTitle(); }
  if (page === "overview") { await showOverview(); return focusTitle(); }
  await showMemories();
  return focusTitle();
}

function boot() {
  // `agent-memory-mcp console` opens the page with its secret in the fragment: keep it for this tab, drop it
  // from the address bar and the history.
  const handed = location.hash.match(/^#token=([^&]+)$/);
  if (handed) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(handed[1]));
    history.replaceState(null, "", `${location.pathname}#/memories`);
  }
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    if (!token) { $("sign-in-error").textContent = "Paste your token first."; $("token").focus(); return; }
    sessionStorage.setItem(TOKEN_KEY, token);
    $("token").value = "";
    start();
  });
  $("sign-out").addEventListener("click", () => { signIn("Signed out."); });
  window.addEventListener("hashchange", route);
  start();
}

boot();
