// The operator's live screen: screen-pop cards and the worklist, pushed by server-sent
// events. Every piece of data is inserted as text (textContent), never as HTML.
"use strict";
(function () {
  const root = document.getElementById("live-screen");
  if (!root) { return; }
  const seat = root.dataset.seat || "";
  const callBackBlocked = root.dataset.callBackBlocked || "";
  const cardsBox = document.getElementById("cards");
  const listBox = document.getElementById("worklist");
  const stateBox = document.getElementById("feed-state");
  const alarmBox = document.getElementById("alarm");
  const cards = new Map();        // uniqueid -> card element
  const gone = new Set();         // uniqueids answered elsewhere or abandoned
  let lastId = "";                // the last stream id handled
  let skew = 0;                   // the page's clock minus the server's, ms
  let source = null;

  const REASONS = {
    handset_emergency: "Emergency: one-key handset", caller_emergency: "Emergency: key 9",
    emergency_callback: "Emergency: call-back", spoken_emergency: "Emergency: said so",
    unknown_caller: "Unknown caller", withheld_number: "Withheld number",
    caller_request: "Asked for a human", no_input: "Pressed nothing",
    invalid_input: "Wrong keys", no_menu_elder: "Elder without menu",
    speech_not_understood: "Not understood", storage_unavailable: "System busy",
  };
  const WORK_KINDS = new Set(["screen_pop", "emergency_open", "call_answered",
    "queue_abandoned", "callback_needed", "alarm_acknowledged", "alarm_emergency",
    "spooled_emergency", "family_acknowledged", "message_left"]);

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    if (cls) { node.className = cls; }
    return node;
  }
  function idKey(id) {
    const parts = String(id).split("-");
    return [Number(parts[0]) || 0, Number(parts[1]) || 0];
  }
  function after(a, b) {
    if (!b) { return true; }
    const x = idKey(a), y = idKey(b);
    return x[0] > y[0] || (x[0] === y[0] && x[1] > y[1]);
  }
  function age(birth) {
    if (!birth) { return ""; }
    const born = new Date(birth);
    const now = new Date();
    let years = now.getFullYear() - born.getFullYear();
    if (now < new Date(now.getFullYear(), born.getMonth(), born.getDate())) { years -= 1; }
    return years + " years";
  }
  function minutes(seconds) {
    const s = Math.max(0, Math.round(seconds));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  // -- the feed -------------------------------------------------------------------------
  let signedOut = false;
  function setState(state) {
    if (signedOut) { return; }
    stateBox.dataset.state = state;
    stateBox.textContent = state === "live" ? "Live" : "Reconnecting…";
  }
  // The session ended (disabled, expired, signed out elsewhere): stop, and say so plainly
  // rather than show a screen that no longer updates.
  function signOut() {
    if (signedOut) { return; }
    setState("signed_out");
    signedOut = true;
    if (source) { source.close(); source = null; }
    stateBox.dataset.state = "signed_out";
    stateBox.textContent = "Signed out: this screen no longer updates. ";
    const again = el("a", "Sign in again");
    again.href = "/live";  // the sign-in page, then back here
    stateBox.appendChild(again);
    alarm([]);
  }
  function connect() {
    const query = lastId ? "since=" + encodeURIComponent(lastId)
      : "replay=" + encodeURIComponent(root.dataset.replay || "0");
    // screen=1: an operator's screen; a call waits a moment for its card to reach one
    source = new EventSource("/live/events?screen=1&" + query);
    source.addEventListener("status", function (msg) {
      const status = JSON.parse(msg.data);
      if (status.state === "signed_out") { signOut(); return; }
      skew = Date.now() - status.now;
      setState(status.state);
      if (status.state === "live") { refreshSoon(); }
    });
    source.onmessage = function (msg) {
      if (msg.lastEventId && !after(msg.lastEventId, lastId)) { return; }  // seen already
      if (msg.lastEventId) { lastId = msg.lastEventId; }
      handle(JSON.parse(msg.data));
    };
    source.onerror = function () {
      setState("reconnecting");
      if (source && source.readyState === EventSource.CLOSED) {  // refused: why?
        source = null;
        setTimeout(retry, 2000);
      }
    };
  }
  // The stream was refused: signed out (401), or the console is restarting (try again).
  async function retry() {
    try {
      const reply = await fetch("/live/worklist.json", { credentials: "same-origin" });
      if (reply.status === 401) { signOut(); return; }
    } catch (err) { /* the console is down: keep trying */ }
    connect();
  }
  function handle(event) {
    const data = event.data || {};
    if (event.kind === "screen_pop") { addCard(data, event.t); }
    else if (event.kind === "call_answered") { answered(data); }
    else if (event.kind === "order_created") { orderStored(data); }
    else if (event.kind === "queue_abandoned" || event.kind === "callback_needed") {
      dropCard(data.uniqueid);
    }
    if (WORK_KINDS.has(event.kind)
        || (event.kind === "order_created" && data.service === "emergency")) {
      refreshSoon();
    }
  }

  // -- screen-pop cards -----------------------------------------------------------------
  function row(list, label, value) {
    if (value === undefined || value === null || value === "") { return; }
    list.appendChild(el("dt", label));
    list.appendChild(el("dd", value));
  }
  // An emergency's caller is queued while its order is stored: the order's number reaches a
  // card that is already up, or waits here for the card whose pop is still on its way.
  const orderOfCall = new Map();
  function orderStored(data) {
    if (!data.uniqueid || !data.order_no) { return; }
    const card = cards.get(data.uniqueid);
    if (!card) {
      orderOfCall.set(data.uniqueid, data.order_no);
      if (orderOfCall.size > 1000) { orderOfCall.delete(orderOfCall.keys().next().value); }
      return;
    }
    if (card.dataset.orderNo) { return; }
    card.dataset.orderNo = data.order_no;
    row(card.querySelector("dl"), "Order", data.order_no);
    (card.callBackFields || []).forEach(function (f) { f.order_no = data.order_no; });
  }
  function addCard(pop, at) {
    if (!pop.uniqueid || cards.has(pop.uniqueid) || gone.has(pop.uniqueid)) { return; }
    if (!pop.order_no && orderOfCall.has(pop.uniqueid)) {
      pop = Object.assign({}, pop, { order_no: orderOfCall.get(pop.uniqueid) });
      orderOfCall.delete(pop.uniqueid);
    }
    const profile = pop.profile || {};
    const card = el("article", null, "card" + (pop.priority >= 10 ? " emergency" : ""));
    card.dataset.uniqueid = pop.uniqueid;
    card.dataset.since = String(at);
    card.dataset.shownAt = String(Date.now());
    if (pop.order_no) { card.dataset.orderNo = pop.order_no; }
    const wait = el("span", minutes((Date.now() - skew - at) / 1000), "wait");
    card.appendChild(wait);
    card.appendChild(el("h3", profile.name || pop.caller || "Unknown caller", "name"));
    card.appendChild(el("p", REASONS[pop.reason] || pop.reason, "reason"));
    const owner = el("p", "", "owner");
    card.appendChild(owner);
    const list = el("dl");
    row(list, "Age", age(profile.birth_date));
    row(list, "Address", profile.address);
    row(list, "Health", profile.health_notes);
    row(list, "Phones", (profile.phones || []).map(function (p) {
      return p.number + " (" + p.kind + ")"; }).join(", "));
    row(list, "Family", (profile.family || []).map(function (f) {
      return f.name + " (" + f.relation + ") " + f.number; }).join("; "));
    row(list, "Orders", (profile.recent_orders || []).map(function (o) {
      return o.order_no + " " + o.service + " " + o.status; }).join("; "));
    row(list, "Order", pop.order_no);
    row(list, "Caller", pop.relation ? pop.caller + " (" + pop.relation + ")" : pop.caller);
    const others = (pop.household || []).filter(function (m) {
      return m && m.elder_id !== profile.elder_id; });
    row(list, "Household", others.map(function (m) { return m.name; }).join(", "));
    card.appendChild(list);
    card.callBackFields = [];
    if (profile.elder_id) {
      const calls = el("p", null, "call-back");
      (profile.phones || []).forEach(function (p) {
        const fields = { elder_id: String(profile.elder_id), number: p.number };
        if (pop.order_no) { fields.order_no = pop.order_no; }
        card.callBackFields.push(fields);
        calls.appendChild(callBackButton("Call back " + p.number, fields));
      });
      card.appendChild(calls);
    }
    const empty = cardsBox.querySelector(".empty");
    if (empty) { empty.remove(); }
    cardsBox.prepend(card);
    cards.set(pop.uniqueid, card);
    if (watcher) { watcher.observe(card); }
    onScreenNow(pop.uniqueid);
  }
  // The console hears which cards are on this screen: a call is held (briefly) until its
  // card is on every open screen of its region, so the phones ring after it shows. One
  // report in flight at a time; the cards shown meanwhile go in the next one.
  const SHOWN_MAX = 200;
  const shownIds = [];
  let reporting = false;
  const CALL_ID = /^[A-Za-z0-9._-]{1,64}$/;  // what the console takes (ivr.pop_delivery)
  function onScreenNow(uniqueid) {
    if (!CALL_ID.test(uniqueid)) { return; }
    shownIds.push(uniqueid);
    reportShown();
  }
  async function reportShown() {
    if (reporting || !shownIds.length || signedOut) { return; }
    reporting = true;
    const ids = shownIds.splice(0, SHOWN_MAX);
    try {
      await window.hotline.post("/live/shown", { uniqueids: ids.join(",") });
    } catch (err) { /* the console is down: the call goes on after its short wait */ }
    reporting = false;
    reportShown();
  }
  function answered(data) {
    const card = cards.get(data.uniqueid);
    if (seat && data.seat === seat) {
      if (card && !card.classList.contains("mine")) {
        card.classList.add("mine");
        card.dataset.answeredAt = String(Date.now());
        const owner = card.querySelector(".owner");
        owner.textContent = "Yours: answered on " + seat + " ";
        const dismiss = el("button", "Dismiss", "dismiss");
        dismiss.type = "button";
        dismiss.addEventListener("click", function () { removeCard(data.uniqueid); });
        owner.appendChild(dismiss);
      }
      return;
    }
    gone.add(data.uniqueid);
    dropCard(data.uniqueid);
  }
  function dropCard(uniqueid) {
    const card = cards.get(uniqueid);
    if (!uniqueid || !card || card.classList.contains("mine")) { return; }
    gone.add(uniqueid);
    removeCard(uniqueid);
  }
  function removeCard(uniqueid) {
    const card = cards.get(uniqueid);
    if (!card) { return; }
    card.remove();
    cards.delete(uniqueid);
    if (watcher) { watcher.unobserve(card); onScreen.delete(card); }
    if (!cards.size) { cardsBox.appendChild(el("p", "No call is waiting.", "empty")); }
  }
  // Only the cards on screen tick: a busy night has hundreds, and rewriting every one's
  // wait each second would keep the page from showing the next card. A card coming into
  // view is brought up to date at once.
  const onScreen = new Set();
  const watcher = window.IntersectionObserver ? new IntersectionObserver(function (seen) {
    seen.forEach(function (entry) {
      if (entry.isIntersecting) { onScreen.add(entry.target); tickCard(entry.target); }
      else { onScreen.delete(entry.target); }
    });
  }) : null;
  function tickCard(card, now) {
    const wait = card.firstChild;  // the .wait span
    const text = minutes(((now || Date.now() - skew) - Number(card.dataset.since)) / 1000);
    if (wait.textContent !== text) { wait.textContent = text; }
  }
  function tick() {
    const now = Date.now() - skew;
    (watcher ? onScreen : cards).forEach(function (card) { tickCard(card, now); });
  }

  // -- the worklist ---------------------------------------------------------------------
  // At most one reload every REFRESH_MS however many events come: a busy night must not
  // turn every event into a database read, nor hold up the next card.
  const REFRESH_MS = 2000;
  let refreshTimer = null;
  let lastLoad = 0;
  function refreshSoon() {
    if (refreshTimer) { return; }
    const wait = Math.max(150, lastLoad + REFRESH_MS - Date.now());
    refreshTimer = setTimeout(function () { refreshTimer = null; loadWorklist(); }, wait);
  }
  async function loadWorklist() {
    if (signedOut) { return; }
    lastLoad = Date.now();
    let reply;
    try {
      // `seen`: a copy read before the last event we handled would not show it
      const query = lastId ? "?seen=" + encodeURIComponent(lastId) : "";
      reply = await fetch("/live/worklist.json" + query, { credentials: "same-origin" });
    } catch (err) { return; }
    if (reply.status === 401) { signOut(); return; }
    if (!reply.ok) { return; }
    renderWorklist((await reply.json()).items);
  }
  const SECTIONS = [["unattended", "Emergencies nobody has answered"],
    ["awaiting_disposition", "Answered, awaiting a disposition"],
    ["call_back", "Callers to call back"]];
  const DISPOSITIONS = [["real_emergency", "Real emergency"], ["accidental", "Accidental"],
    ["test", "Test"], ["no_response", "No response"]];
  // One row per item, kept from one reload to the next while the item is unchanged: a
  // reload builds only what changed, and a note being typed survives it.
  const rows = new Map();  // key -> {tr, sig}
  function rowKey(item) {
    return item.order_no ? "o:" + item.order_no : "c:" + item.phone + "@" + item.since;
  }
  function buildRow(item) {
    const tr = el("tr", null, item.section + (item.acknowledged ? " acknowledged" : ""));
    if (item.order_no) { tr.dataset.orderNo = item.order_no; }
    tr.appendChild(el("td", item.section === "unattended" && !item.acknowledged ? "!" : ""));
    [item.order_no, item.elder_name, item.phone, item.address].forEach(function (v) {
      tr.appendChild(el("td", v || "")); });
    tr.appendChild(el("td", "", "age"));
    tr.appendChild(el("td", item.note || ""));
    tr.appendChild(actions(item));
    return tr;
  }
  function rowFor(item, kept) {
    const key = rowKey(item);
    const sig = JSON.stringify([item.section, item.acknowledged, item.elder_name, item.phone,
      item.recording,
      item.address, item.note]);
    let row = rows.get(key);
    if (!row || row.sig !== sig) {
      row = { tr: buildRow(item), sig: sig };
      rows.set(key, row);
    }
    const age = row.tr.querySelector(".age");
    const text = minutes(item.age_s);
    if (age.textContent !== text) { age.textContent = text; }
    kept.add(key);
    return row.tr;
  }
  // One table for the page's life: a reload puts the rows in order, moving only those whose
  // place changed, so a busy list costs the page little and the cards never wait on it.
  const COLUMNS = [["flag", ""], ["order", "Order"], ["elder", "Elder"], ["phone", "Phone"],
    ["address", "Address"], ["age", "Waiting"], ["note", "Note"], ["actions", ""]];
  let table = null;
  const titles = new Map();  // section -> its heading row
  function worklistTable() {
    if (table) { return table; }
    table = el("table");
    const cols = el("colgroup");
    const head = el("tr");
    COLUMNS.forEach(function (c) {
      cols.appendChild(el("col", null, c[0]));
      head.appendChild(el("th", c[1]));
    });
    table.append(cols, head);
    SECTIONS.forEach(function (section) {
      const title = el("tr", null, "section");
      const cell = el("th");
      cell.colSpan = COLUMNS.length;
      title.appendChild(cell);
      titles.set(section[0], title);
    });
    listBox.replaceChildren(table);
    return table;
  }
  // A night of hundreds of open alarms: the page builds the first ROWS_SHOWN rows, in the
  // worklist's order, and says how many follow ("Show all" builds every one). A reload then
  // costs the page little, and a new card is never held up behind a long table.
  const ROWS_SHOWN = 100;
  let showAll = false;
  const more = el("tr", null, "more");
  const moreCell = el("td");
  const moreButton = el("button", "Show all");
  moreButton.type = "button";
  moreButton.addEventListener("click", function () { showAll = true; loadWorklist(); });
  moreCell.colSpan = COLUMNS.length;
  more.appendChild(moreCell);
  function renderWorklist(items) {
    const box = worklistTable();
    const sounding = [];
    const kept = new Set();
    const wanted = [];
    let room = showAll ? Infinity : ROWS_SHOWN;
    SECTIONS.forEach(function (section) {
      const shown = items.filter(function (i) { return i.section === section[0]; });
      const title = titles.get(section[0]);
      const text = section[1] + ": " + shown.length;
      if (title.firstChild.textContent !== text) { title.firstChild.textContent = text; }
      wanted.push(title);
      shown.forEach(function (item) {
        if (room > 0) { wanted.push(rowFor(item, kept)); room -= 1; }
        if (item.section === "unattended" && !item.acknowledged) { sounding.push(item); }
      });
    });
    const hidden = items.length - (showAll ? items.length : Math.min(items.length, ROWS_SHOWN));
    if (hidden > 0) {
      moreCell.replaceChildren(el("span", "… and " + hidden + " more below these. "),
        moreButton);
      wanted.push(more);
    }
    rows.forEach(function (row, key) {
      if (!kept.has(key)) { row.tr.remove(); rows.delete(key); }
    });
    // the rows after the heading, in order: each one is moved only if it is out of place
    let at = box.rows[0].nextElementSibling;
    wanted.forEach(function (tr) {
      if (at === tr) { at = at.nextElementSibling; return; }
      box.insertBefore(tr, at);
    });
    while (at) { const next = at.nextElementSibling; at.remove(); at = next; }
    // an alarm of mine closed with its disposition: its card has served
    const open = new Set(items.map(function (i) { return i.order_no; }));
    cards.forEach(function (card, uniqueid) {
      if (card.classList.contains("mine") && card.dataset.orderNo &&
          !open.has(card.dataset.orderNo)) { removeCard(uniqueid); }
    });
    listBox.dataset.loaded = "yes";
    alarm(sounding);
  }
  // A button ringing the operator's own seat, then the caller (/calls/call-back); disabled
  // with the reason when the account has no seat or the console no AMI.
  function callBackButton(label, fields) {
    const button = el("button", label, "call-back");
    button.type = "button";
    if (callBackBlocked) {
      button.disabled = true;
      button.title = callBackBlocked;
      return button;
    }
    button.addEventListener("click", async function () {
      button.disabled = true;
      const reply = await window.hotline.post("/calls/call-back", fields);
      let body = {};
      try { body = await reply.json(); } catch (err) { /* plain text */ }
      button.disabled = false;
      button.title = reply.ok ? body.message : (body.error || "refused");
      if (!reply.ok) { window.alert(button.title); }
      loadWorklist();
    });
    return button;
  }
  function actions(item) {
    const td = el("td", null, "actions");
    if (item.recording) {
      const audio = el("audio", null, "message");
      audio.controls = true;
      audio.preload = "none";
      audio.src = "/recordings/" + encodeURIComponent(item.recording);
      td.appendChild(audio);
    }
    if (item.call) { td.appendChild(callBackButton("Call back", { call: item.call })); }
    if (!item.order_no) { return td; }
    if (item.section === "unattended" && !item.acknowledged) {
      const ack = el("button", "Acknowledge", "ack");
      ack.type = "button";
      ack.addEventListener("click", function () {
        send("/live/worklist/ack", { order_no: item.order_no });
      });
      td.appendChild(ack);
    }
    const form = el("form", null, "close");
    const choice = el("select");
    choice.name = "disposition";
    DISPOSITIONS.forEach(function (d) {
      const option = el("option", d[1]);
      option.value = d[0];
      choice.appendChild(option);
    });
    const note = el("input");
    note.name = "note";
    note.maxLength = 500;
    note.placeholder = "Note";
    const button = el("button", "Close");
    button.type = "submit";
    form.append(choice, note, button);
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      send("/live/worklist/close",
        { order_no: item.order_no, disposition: choice.value, note: note.value });
    });
    td.appendChild(form);
    return td;
  }
  async function send(url, fields) {
    const reply = await window.hotline.post(url, fields);
    if (!reply.ok) {
      let message = "refused";
      try { message = (await reply.json()).error; } catch (err) { /* plain text */ }
      window.alert(message);
    }
    loadWorklist();
  }

  // -- the sound of a new emergency, until someone acknowledges it -----------------------
  const ALARM_NAMES = 10;  // the banner names the first few; the worklist has them all
  let audio = null;
  let beeping = null;
  function beep() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      if (audio.state === "suspended") { audio.resume(); }
      const tone = audio.createOscillator();
      const gain = audio.createGain();
      tone.frequency.value = 880;
      gain.gain.value = 0.2;
      tone.connect(gain).connect(audio.destination);
      tone.start();
      tone.stop(audio.currentTime + 0.4);
      document.body.dataset.beeps = String(Number(document.body.dataset.beeps || 0) + 1);
    } catch (err) { /* no audio device: the banner still shows */ }
  }
  function alarm(items) {
    const on = items.length > 0;
    document.body.dataset.alarm = on ? "on" : "off";
    alarmBox.hidden = !on;
    const named = items.slice(0, ALARM_NAMES).map(function (i) {
      return (i.elder_name || "") + " " + (i.order_no || ""); }).join(", ");
    document.getElementById("alarm-text").textContent = items.length > ALARM_NAMES
      ? named + " and " + (items.length - ALARM_NAMES) + " more" : named;
    if (on && !beeping) { beep(); beeping = setInterval(beep, 1500); }
    if (!on && beeping) { clearInterval(beeping); beeping = null; }
  }

  setState("reconnecting");
  connect();
  loadWorklist();
  setInterval(tick, 1000);
  setInterval(loadWorklist, 20000);
})();
