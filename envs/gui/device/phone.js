// PhoneOS: the system shell (status bar, navigation bar, launcher, recents, soft keyboard, dialogs) and the apps.
// App data lives in the Python store behind /api; this page only renders it and sends committed edits.
"use strict";
const APPS = [
  ["contacts", "Contacts", "#1a73e8", "\u263A"], ["messages", "Messages", "#188038", "\u2709"],
  ["phone", "Phone", "#137333", "\u260E"], ["calendar", "Calendar", "#d93025", "\u2637"],
  ["notes", "Notes", "#f9ab00", "\u270E"], ["expenses", "Expenses", "#9334e6", "$"],
  ["clock", "Clock", "#12b5cb", "\u25F7"], ["settings", "Settings", "#5f6368", "\u2699"],
  ["browser", "Browser", "#e37400", "\u2641"]];
const NAMES = Object.fromEntries(APPS.map(a => [a[0], a[1]]));
const CATS = ["Food", "Transport", "Shopping", "Bills", "Other"];
const P = window.__phone = { busy: 0, version: 0 };
let S = null;                       // the store's state (read-only here)
let current = "home";               // "home", "recents" or an app id
const stacks = {};                  // per-app back stacks of screens {name, id}
const recents = [];                 // most recent first
const shownPopup = new Set();
let dialog = null, toast = null, form = {}, buildTaps = 0, longTimer = null, longFired = false;

const esc = s => String(s ?? "").replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const attrs = o => Object.entries(o).filter(([, v]) => v !== undefined && v !== null && v !== false)
  .map(([k, v]) => v === true ? k : `${k}="${esc(v)}"`).join(" ");
const W = (tag, cls, o, inner = "") => `<${tag} ${attrs({"data-cls": cls, ...o})}>${inner}</${tag}>`;
const text = (t, rid, extra = {}) => W("span", "android.widget.TextView", {"data-rid": rid, ...extra}, esc(t));
const button = (label, act, rid, o = {}) => W("button", "android.widget.Button", {"data-act": act, "data-rid": rid, ...o}, esc(label));
const iconBtn = (glyph, desc, act, rid, o = {}) => W("button", "android.widget.ImageButton", {"data-act": act, "data-rid": rid, "aria-label": desc, class: "icon", ...o}, glyph);
const field = (name, hint, rid, o = {}) => W(o.multiline ? "textarea" : "input", "android.widget.EditText",
  {class: "field", name, placeholder: hint, "data-rid": rid, "data-enter": o.enter, value: o.multiline ? undefined : (form[name] ?? "")},
  o.multiline ? esc(form[name] ?? "") : "");
const sw = (on, act, rid, desc, o = {}) => W("button", "android.widget.Switch", {class: "switch", role: "switch", "aria-checked": on ? "true" : "false", "aria-label": desc, "data-act": act, "data-rid": rid, ...o});
const fab = (desc, act, rid) => W("button", "android.widget.ImageButton", {class: "fab", "aria-label": desc, "data-act": act, "data-rid": rid}, "+");
const list = (rid, rows, empty = "Nothing here") => W("div", "androidx.recyclerview.widget.RecyclerView", {class: "scroll", "data-rid": rid}, rows.join("") || `<div class="empty">${esc(empty)}</div>`);
function bar(title, rid, actions = "") {
  const lead = actions.startsWith(backBtn) ? backBtn : "";   // the up arrow sits left of the title
  return `<div class="bar">${lead}${W("span", "android.widget.TextView", {class: "title", "data-rid": rid + "/title"}, esc(title))}${actions.slice(lead.length)}</div>`;
}
const row = (act, rid, o, main, sub = "", lead = "") => W("div", "android.widget.LinearLayout", {class: "row", "data-act": act, "data-rid": rid, ...o},
  `${lead}<div class="grow">${text(main, rid + "_title")}${sub ? "<br>" + `<span class="sub">${text(sub, rid + "_sub")}</span>` : ""}</div>`);

// --- the store ------------------------------------------------------------------------------------
async function api(op, args = {}) {
  P.busy++;
  try {
    const r = await fetch("/api/op", {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify({op, args})});
    const body = await r.json();
    S = body.state;
    if (body.error) showToast(body.error);
    return !body.error;
  } finally { P.busy--; }
}
function byId(kind, id) { return S[kind].find(x => String(x.id) === String(id)); }

// --- navigation -----------------------------------------------------------------------------------
function topScreen() { const s = stacks[current]; return s ? s[s.length - 1] : null; }
function openApp(app) {
  if (!NAMES[app]) return;
  if (!stacks[app]) stacks[app] = [{name: "main"}];
  current = app; form = {};
  const i = recents.indexOf(app); if (i >= 0) recents.splice(i, 1); recents.unshift(app);
  const popup = S.meta.popups[app];
  if (popup && !shownPopup.has(app)) { shownPopup.add(app); dialog = popup === "permission"
    ? {title: `Allow ${NAMES[app]} to access your contacts?`, pos: ["Allow", "dismiss"], neg: ["Don't allow", "dismiss"]}
    : {title: `Enjoying ${NAMES[app]}? Rate us on the store!`, pos: ["Rate now", "dismiss"], neg: ["Not now", "dismiss"]}; }
  render(true);
}
function push(name, id, keepForm) { stacks[current].push({name, id}); if (!keepForm) form = {}; render(true); }
function goHome() { blur(); current = "home"; render(true); }
function back() {
  if (kbdOpen()) { blur(); return; }
  if (dialog) { dialog = null; render(); return; }
  if (current === "home") return;
  if (current === "recents") { current = "home"; render(true); return; }
  const s = stacks[current];
  if (s.length > 1) { s.pop(); form = {}; render(true); } else goHome();
}
function replaceTop(name, id) { const s = stacks[current]; s[s.length - 1] = {name, id}; form = {}; render(true); }
function showToast(msg) { toast = msg; }

// --- soft keyboard --------------------------------------------------------------------------------
const KROWS = ["qwertyuiop", "asdfghjkl", "zxcvbnm"];
function kbdOpen() { return document.getElementById("kbd").classList.contains("show"); }
function blur() { const a = document.activeElement; if (a && a.blur) a.blur(); setKbd(false); }
function setKbd(on) {
  document.getElementById("kbd").classList.toggle("show", on);
  document.getElementById("app").style.paddingBottom = on ? document.getElementById("kbd").offsetHeight + "px" : "0";
}
function kbdHtml() {
  const k = (c, cls = "k") => `<div class="${cls}" data-key="${esc(c)}">${esc(c === " " ? "space" : c)}</div>`;
  return KROWS.map(r => `<div class="krow">${[...r].map(c => k(c)).join("")}</div>`).join("") +
    `<div class="krow">${k("\u232B", "k act")}${k(" ", "k wide")}${k("\u21B5", "k act")}</div>`;
}
function typeKey(key) {
  const el = document.activeElement;
  if (!el || !("value" in el)) return;
  if (key === "\u21B5") { enter(el); return; }
  el.value = key === "\u232B" ? el.value.slice(0, -1) : el.value + key;
  el.dispatchEvent(new Event("input", {bubbles: true}));
}
function enter(el) {
  const act = el.dataset.enter;
  if (el.tagName === "TEXTAREA") { el.value += "\n"; el.dispatchEvent(new Event("input", {bubbles: true})); return; }
  blur();
  if (act) handle(act, el.dataset);
}

// --- screens --------------------------------------------------------------------------------------
const backBtn = `<button data-cls="android.widget.ImageButton" aria-label="Navigate up" data-act="up" data-rid="appbar/up">\u2190</button>`;
const screens = {
  home() {
    return `<div class="scroll"><div class="grid">${APPS.map(([id, name, color, glyph]) =>
      W("button", "android.widget.TextView", {class: "appicon", "data-act": "open", "data-app": id, "data-rid": "launcher/" + id, "data-text": name},
        `<span class="glyph" style="background:${color}">${glyph}</span>${esc(name)}`)).join("")}</div></div>`;
  },
  recents() {
    return bar("Recent apps", "recents") + list("recents/list", recents.map(a => row("open", "recents/card", {"data-app": a}, NAMES[a])), "No recent apps") +
      `<div>${button("Clear all", "clear-recents", "recents/clear", {class: "btn"})}</div>`;
  },
  contacts: {
    main: () => bar("Contacts", "contacts") + list("contacts/list", [...S.contacts].sort((a, b) => a.name.localeCompare(b.name))
      .map(c => row("push", "contacts/row", {"data-screen": "detail", "data-id": c.id}, c.name, "", `<span class="avatar">${esc(c.name[0])}</span>`)), "No contacts") +
      fab("Create contact", "push", "contacts/fab") .replace('data-act="push"', 'data-act="push" data-screen="edit"'),
    detail(id) { const c = byId("contacts", id); if (!c) return screens.contacts.main();
      return bar("", "contacts", backBtn) + `<div class="detail"><div class="big">${text(c.name, "contacts/name")}</div>${text(c.phone, "contacts/phone")}<br>${text(c.email || "", "contacts/email")}</div>` +
        `<div class="icons">${iconBtn("\u260E", "Call", "call-contact", "contacts/call", {"data-id": id})}${iconBtn("\u2709", "Message", "message-contact", "contacts/message", {"data-id": id})}` +
        `${iconBtn("\u270E", "Edit", "edit-contact", "contacts/edit", {"data-id": id})}${iconBtn("\u{1F5D1}", "Delete", "confirm", "contacts/delete", {"data-what": "contact", "data-id": id})}</div>`; },
    edit(id) { return bar(id ? "Edit contact" : "Create contact", "contacts", backBtn + button("Save", "save-contact", "contacts/save", {"data-id": id})) +
      `<div class="scroll">${field("name", "Name", "contacts/name_field")}${field("phone", "Phone", "contacts/phone_field")}${field("email", "Email", "contacts/email_field")}</div>`; },
  },
  messages: {
    main: () => { const threads = []; for (const m of [...S.messages].reverse()) if (!threads.includes(m.with)) threads.push(m.with);
      return bar("Messages", "messages") + list("messages/list", threads.map(t => { const last = [...S.messages].reverse().find(m => m.with === t);
        return row("push", "messages/thread", {"data-screen": "thread", "data-id": t}, t, last.text, `<span class="avatar">${esc(t[0])}</span>`); }), "No conversations") +
        fab("Start chat", "push", "messages/fab").replace('data-act="push"', 'data-act="push" data-screen="new"'); },
    new: () => bar("New conversation", "messages", backBtn) + `<div class="scroll">${field("to", "Type a name or phone number", "messages/to_field", {enter: "start-chat"})}${button("Next", "start-chat", "messages/next", {class: "btn"})}</div>`,
    thread: (who) => bar(who, "messages", backBtn) + list("messages/bubbles", S.messages.filter(m => m.with === who)
      .map(m => W("div", "android.widget.TextView", {class: "bubble" + (m.out ? " out" : ""), "data-rid": "messages/bubble"}, esc(m.text))), "No messages yet") +
      `<div class="compose">${field("body", "Text message", "messages/compose")}${iconBtn("\u27A4", "Send", "send", "messages/send", {"data-id": who})}</div>`,
  },
  phone: {
    main: () => tabs("phone", ["Recents", "Keypad"]) + (form.tab === "Keypad" ?
      `<div class="scroll">${field("digits", "Enter a number", "phone/digits")}<div class="keys">${[..."123456789*0#"].map(d => button(d, "digit", "phone/key_" + d, {"data-d": d})).join("")}</div>` +
      `<div style="text-align:center">${iconBtn("\u260E", "Call", "dial", "phone/call")}</div></div>` :
      list("phone/calls", S.calls.map(c => row("push", "phone/call_row", {"data-screen": "call", "data-id": c.id}, c.name || c.number, `${c.kind} \u00B7 ${c.time}`)), "No recent calls")),
    call(id) { const c = byId("calls", id); if (!c) return screens.phone.main();
      return bar(c.name || c.number, "phone", backBtn) + `<div class="detail">${text(c.number, "phone/number")}<br>${text(c.kind + " call, " + c.time, "phone/when")}</div>` +
        `<div class="icons">${iconBtn("\u260E", "Call back", "call-number", "phone/call_back", {"data-n": c.number})}</div>` +
        (c.name ? "" : button("Add to contacts", "add-to-contacts", "phone/add_contact", {class: "btn", "data-n": c.number})); },
  },
  calendar: {
    main: () => bar("Calendar", "calendar") + list("calendar/list", [...S.events].sort((a, b) => (a.date + a.time).localeCompare(b.date + b.time))
      .map(e => row("push", "calendar/event", {"data-screen": "event", "data-id": e.id}, e.title, `${e.date} \u00B7 ${e.time}`)), "No events") +
      fab("New event", "push", "calendar/fab").replace('data-act="push"', 'data-act="push" data-screen="edit"'),
    event(id) { const e = byId("events", id); if (!e) return screens.calendar.main();
      return bar(e.title, "calendar", backBtn + iconBtn("\u{1F5D1}", "Delete", "confirm", "calendar/delete", {"data-what": "event", "data-id": id})) +
        `<div class="detail">${text(e.title, "calendar/title_text")}<br>${text(e.date, "calendar/date_text")}<br>${text(e.time, "calendar/time_text")}</div>`; },
    edit: () => bar("New event", "calendar", backBtn + button("Save", "save-event", "calendar/save")) +
      `<div class="scroll">${field("title", "Title", "calendar/title_field")}${field("date", "Date (YYYY-MM-DD)", "calendar/date_field")}${field("time", "Time (HH:MM)", "calendar/time_field")}</div>`,
  },
  notes: {
    main: () => bar("Notes", "notes") + list("notes/list", [...S.notes].sort((a, b) => a.title.localeCompare(b.title))
      .map(n => row("push", "notes/row", {"data-screen": "note", "data-id": n.id, "data-long": "note", "data-cls": "android.widget.LinearLayout"}, n.title, n.body.split("\n")[0].slice(0, 40))), "No notes") +
      fab("New note", "push", "notes/fab").replace('data-act="push"', 'data-act="push" data-screen="edit"'),
    note(id) { const n = byId("notes", id); if (!n) return screens.notes.main();
      return bar(n.title, "notes", backBtn + iconBtn("\u270E", "Edit", "edit-note", "notes/edit", {"data-id": id}) + iconBtn("\u{1F5D1}", "Delete", "confirm", "notes/delete", {"data-what": "note", "data-id": id})) +
        `<div class="scroll detail">${text(n.body, "notes/body_text")}</div>`; },
    edit: (id) => bar(id ? "Edit note" : "New note", "notes", backBtn + button("Save", "save-note", "notes/save", {"data-id": id})) +
      `<div class="scroll">${field("title", "Title", "notes/title_field")}${field("body", "Note", "notes/body_field", {multiline: true})}</div>`,
  },
  expenses: {
    main: () => bar("Expenses", "expenses") + `<div class="section">${text("Total: " + S.expenses.reduce((s, e) => s + e.amount, 0).toFixed(2), "expenses/total")}</div>` +
      list("expenses/list", S.expenses.map(e => row("push", "expenses/row", {"data-screen": "expense", "data-id": e.id}, e.name, `${e.amount.toFixed(2)} \u00B7 ${e.category}`)), "No expenses") +
      fab("Add expense", "push", "expenses/fab").replace('data-act="push"', 'data-act="push" data-screen="edit"'),
    expense(id) { const e = byId("expenses", id); if (!e) return screens.expenses.main();
      return bar(e.name, "expenses", backBtn + iconBtn("\u{1F5D1}", "Delete", "confirm", "expenses/delete", {"data-what": "expense", "data-id": id})) +
        `<div class="detail">${text(e.name, "expenses/name_text")}<br>${text(e.amount.toFixed(2), "expenses/amount_text")}<br>${text(e.category, "expenses/category_text")}</div>`; },
    edit: () => bar("Add expense", "expenses", backBtn + button("Save", "save-expense", "expenses/save")) +
      `<div class="scroll">${field("name", "Name", "expenses/name_field")}${field("amount", "Amount", "expenses/amount_field")}<div style="padding:0 12px">` +
      CATS.map(c => W("button", "android.widget.RadioButton", {class: "chip", role: "radio", "aria-checked": form.category === c ? "true" : "false", "data-act": "category", "data-c": c, "data-rid": "expenses/category_" + c.toLowerCase()}, esc(c))).join("") + `</div></div>`,
  },
  clock: {
    main: () => tabs("clock", ["Alarm", "Timer"]) + (form.tab === "Timer" ?
      `<div class="scroll">${field("minutes", "Minutes", "clock/minutes_field")}${field("label", "Label", "clock/label_field")}${button("Start", "start-timer", "clock/start", {class: "btn"})}` +
      S.timers.map(t => row("noop", "clock/timer", {}, `${t.minutes} min`, t.label)).join("") + `</div>` :
      list("clock/alarms", [...S.alarms].sort((a, b) => a.time.localeCompare(b.time)).map(a => W("div", "android.widget.LinearLayout", {class: "row", "data-rid": "clock/alarm"},
        `<div class="grow">${text(a.time, "clock/alarm_time")}</div>${sw(a.on, "toggle-alarm", "clock/alarm_switch", "Alarm " + a.time, {"data-id": a.id})}`)), "No alarms") +
      fab("Add alarm", "push", "clock/fab").replace('data-act="push"', 'data-act="push" data-screen="alarm"')),
    alarm: () => bar("New alarm", "clock", backBtn + button("Save", "save-alarm", "clock/save")) + `<div class="scroll">${field("time", "Time (HH:MM)", "clock/time_field")}</div>`,
  },
  settings: {
    main: () => bar("Settings", "settings") + list("settings/list", [["network", "Network & internet", "Wi-Fi, airplane mode"], ["devices", "Connected devices", "Bluetooth"],
      ["display", "Display", "Dark theme, font size"], ["system", "System", "Developer options"], ["about", "About phone", "Build number"]]
      .map(([k, t, s]) => row("push", "settings/" + k, {"data-screen": k}, t, s))),
    network: () => settingsPage("Network & internet", [["wifi", "Wi-Fi"], ["airplane", "Airplane mode"]]),
    devices: () => settingsPage("Connected devices", [["bluetooth", "Bluetooth"]]),
    display: () => settingsPage("Display", [["dark_theme", "Dark theme"]]) + `<div class="section">${text("Font size", "settings/font_label")}</div><div style="padding:0 12px">` +
      ["Small", "Default", "Large"].map(f => W("button", "android.widget.RadioButton", {class: "chip", role: "radio", "aria-checked": S.settings.font_size === f ? "true" : "false", "data-act": "font", "data-f": f, "data-rid": "settings/font_" + f.toLowerCase()}, esc(f))).join("") + "</div>",
    system: () => bar("System", "settings", backBtn) + list("settings/system_list", S.settings.developer ? [row("push", "settings/developer", {"data-screen": "developer"}, "Developer options")] : [],
      "Developer options are hidden"),
    developer: () => settingsPage("Developer options", [["usb_debugging", "USB debugging"], ["stay_awake", "Stay awake"]]),
    about: () => bar("About phone", "settings", backBtn) + list("settings/about_list", [row("noop", "settings/model", {}, "Model", S.meta.model),
      row("build-number", "settings/build", {}, "Build number", S.meta.build)]),
  },
  browser: {
    main: () => bar("Browser", "browser") + `<div class="section">${text("Bookmarks", "browser/bookmarks_label")}</div>` +
      list("browser/bookmarks", S.pages.map(p => row("push", "browser/bookmark", {"data-screen": "page", "data-id": p.id}, p.title, p.url))),
    page(id) { const p = byId("pages", id); if (!p) return screens.browser.main();
      return bar(p.url, "browser", backBtn) + `<div class="scroll detail"><div class="big">${text(p.title, "browser/page_title")}</div>` +
        p.body.map((para, i) => `<p style="margin:10px 0">${text(para, "browser/para_" + i)}</p>`).join("") + "</div>"; },
  },
};
function settingsPage(title, keys) {
  return bar(title, "settings", backBtn) + list("settings/page", keys.map(([k, label]) => W("div", "android.widget.LinearLayout", {class: "row", "data-rid": "settings/row_" + k},
    `<div class="grow">${text(label, "settings/label_" + k)}</div>${sw(S.settings[k], "toggle", "settings/switch_" + k, label, {"data-k": k})}`)));
}
function tabs(app, names) {
  if (!form.tab) form.tab = names[0];
  return `<div class="bar">${W("span", "android.widget.TextView", {class: "title", "data-rid": app + "/title"}, esc(NAMES[app]))}</div><div class="tabs">` +
    names.map(n => W("button", "android.widget.TextView", {role: "tab", "aria-selected": form.tab === n ? "true" : "false", "data-act": "tab", "data-t": n, "data-rid": `${app}/tab_${n.toLowerCase()}`}, esc(n))).join("") + "</div>";
}

// --- actions --------------------------------------------------------------------------------------
function readForm() { for (const el of document.querySelectorAll("#app [name]")) form[el.name] = el.value; return form; }
async function handle(act, d) {
  readForm();
  const f = form;
  switch (act) {
    case "open": return openApp(d.app);
    case "clear-recents": recents.length = 0; for (const k of Object.keys(stacks)) delete stacks[k]; return render();
    case "push": return push(d.screen, d.id);
    case "up": return back();
    case "tab": form = {tab: d.t}; return render();
    case "dismiss": dialog = null; return render();
    case "confirm": dialog = {title: `Delete this ${d.what}?`, pos: ["Delete", "delete-" + d.what, d.id], neg: ["Cancel", "dismiss"]}; return render();
    case "delete-contact": case "delete-event": case "delete-note": case "delete-expense": {
      dialog = null; const kind = act.slice(7);
      if (await api(kind + ".delete", {id: Number(d.id)})) { const s = stacks[current]; if (s.length > 1) s.pop(); }
      return render(true); }
    case "save-contact": if (await api(d.id ? "contact.update" : "contact.add", {id: d.id ? Number(d.id) : undefined, name: f.name ?? "", phone: f.phone ?? "", email: f.email ?? ""})) { showToast("Contact saved"); stacks[current].pop(); } return render(true);
    case "edit-contact": { const c = byId("contacts", d.id); push("edit", d.id); form = {name: c.name, phone: c.phone, email: c.email || ""}; return render(); }
    case "call-contact": { const c = byId("contacts", d.id); await api("call.place", {number: c.phone}); showToast("Calling " + c.name); return render(); }
    case "call-number": await api("call.place", {number: d.n}); showToast("Calling " + d.n); return render();
    case "message-contact": { const c = byId("contacts", d.id); openApp("messages"); if (!dialog) push("thread", c.name); else stacks.messages.push({name: "thread", id: c.name}); return render(); }
    case "add-to-contacts": openApp("contacts"); stacks.contacts.push({name: "edit"}); form = {phone: d.n}; return render(true);
    case "start-chat": { const to = (f.to || "").trim(); if (!to) { showToast("Enter a recipient"); return render(); } replaceTop("thread", to); return; }
    case "send": { const body = (f.body || "").trim(); if (!body) return render(); if (await api("message.send", {to: d.id, text: body})) form.body = ""; return render(); }
    case "digit": form.digits = (f.digits || "") + d.d; return render();
    case "dial": { const n = (f.digits || "").trim(); if (!n) return render(); await api("call.place", {number: n}); showToast("Calling " + n); form = {tab: "Recents"}; return render(); }
    case "save-event": if (await api("event.add", {title: f.title ?? "", date: f.date ?? "", time: f.time ?? ""})) stacks[current].pop(); return render(true);
    case "save-note": if (await api(d.id ? "note.update" : "note.add", {id: d.id ? Number(d.id) : undefined, title: f.title ?? "", body: f.body ?? ""})) stacks[current].pop(); return render(true);
    case "edit-note": { const n = byId("notes", d.id); push("edit", d.id); form = {title: n.title, body: n.body}; return render(); }
    case "category": form.category = d.c; return render();
    case "save-expense": if (await api("expense.add", {name: f.name ?? "", amount: f.amount ?? "", category: f.category ?? ""})) stacks[current].pop(); return render(true);
    case "start-timer": if (await api("timer.start", {minutes: f.minutes ?? "", label: f.label ?? ""})) form = {tab: "Timer"}; return render();
    case "save-alarm": if (await api("alarm.add", {time: f.time ?? ""})) stacks[current].pop(); return render(true);
    case "toggle-alarm": await api("alarm.set", {id: Number(d.id), on: !byId("alarms", d.id).on}); return render();
    case "toggle": await api("setting.set", {key: d.k, value: !S.settings[d.k]}); return render();
    case "font": await api("setting.set", {key: "font_size", value: d.f}); return render();
    case "build-number": if (S.settings.developer) { showToast("You are already a developer"); return render(); }
      buildTaps++; if (buildTaps >= 7) { await api("setting.set", {key: "developer", value: true}); showToast("You are now a developer!"); }
      else if (buildTaps >= 3) showToast(`You are now ${7 - buildTaps} steps away from being a developer.`); return render();
    default: return;
  }
}
function longPress(el) {
  if (el.dataset.long === "note") dialog = {title: `Delete this note?`, pos: ["Delete", "delete-note", el.dataset.id], neg: ["Cancel", "dismiss"]};
  render();
}

// --- rendering ------------------------------------------------------------------------------------
function render(entering) {
  P.version++;
  const app = document.getElementById("app");
  let html;
  if (current === "home") html = screens.home();
  else if (current === "recents") html = screens.recents();
  else { const t = topScreen(); const page = screens[current]; html = (page[t.name] || page.main)(t.id); }
  if (dialog) html += `<div class="scrim" data-rid="dialog/scrim"><div class="dialog" data-cls="android.widget.FrameLayout" role="dialog" data-rid="dialog/panel">` +
    `<div class="dtitle">${text(dialog.title, "dialog/title")}</div><div class="dacts">${button(dialog.neg[0], dialog.neg[1], "dialog/negative")}` +
    `${button(dialog.pos[0], dialog.pos[1], "dialog/positive", {"data-id": dialog.pos[2], "data-what": undefined})}</div></div></div>`;
  if (toast) { html += `<div class="toast">${text(toast, "toast/text")}</div>`; toast = null; }
  app.innerHTML = `<div id="page" class="${entering ? "enter" : ""}" style="flex:1;display:flex;flex-direction:column;min-height:0;position:relative">${html}</div>`;
  document.getElementById("clock").textContent = S.meta.clock;
  document.getElementById("sysicons").textContent = (S.settings.airplane ? "\u2708 " : "") + (S.settings.wifi ? "\u25B2 " : "") + (S.settings.bluetooth ? "\u16D2 " : "") + S.meta.battery + "%";
  document.body.style.filter = S.settings.dark_theme ? "invert(0.9) hue-rotate(180deg)" : "";
  if (kbdOpen() && !(document.activeElement && document.activeElement.matches("input,textarea"))) setKbd(false);
}

// --- input ----------------------------------------------------------------------------------------
document.addEventListener("click", (e) => {
  if (longFired) { longFired = false; return; }
  const t = e.target.closest("[data-act]");
  if (t) { e.preventDefault(); handle(t.dataset.act, t.dataset); }
});
document.addEventListener("focusin", (e) => { if (e.target.matches("input,textarea")) setKbd(true); });
document.addEventListener("input", (e) => { if (e.target.name) form[e.target.name] = e.target.value; });
document.addEventListener("keydown", (e) => { if (e.key === "Enter" && e.target.matches("input,textarea")) { e.preventDefault(); enter(e.target); } });
document.addEventListener("touchstart", (e) => {
  longFired = false; clearTimeout(longTimer);
  const t = e.target.closest("[data-long]");
  if (t) longTimer = setTimeout(() => { longFired = true; longPress(t); }, 400);
}, {passive: true});
document.addEventListener("touchend", () => clearTimeout(longTimer));
document.addEventListener("touchmove", () => clearTimeout(longTimer), {passive: true});
function boot() {
  const kbd = document.getElementById("kbd");
  kbd.innerHTML = kbdHtml();
  const press = (e) => { e.preventDefault(); const k = e.target.closest("[data-key]"); if (k) typeKey(k.dataset.key); };
  kbd.addEventListener("touchstart", press); kbd.addEventListener("mousedown", press);
  document.getElementById("nav").addEventListener("click", (e) => {
    const b = e.target.closest("button"); if (!b) return;
    if (b.dataset.nav === "back") back(); else if (b.dataset.nav === "home") goHome(); else { blur(); current = "recents"; render(true); }
  });
  render();
}
window.__phoneNav = { back, home: goHome, open: openApp, blur };
fetch("/api/state").then(r => r.json()).then(s => { S = s; boot(); P.ready = true; });
