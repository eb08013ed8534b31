// The supervisor's wallboard: figures read every few seconds and at once on call events.
"use strict";
(function () {
  const board = document.getElementById("wallboard");
  if (!board) { return; }
  const stateBox = document.getElementById("feed-state");
  function show(id, text, missed) {
    const tile = document.getElementById(id);
    tile.querySelector(".value").textContent = text;
    tile.classList.toggle("missed", Boolean(missed));
  }
  function percent(value) { return value === null ? "–" : value.toFixed(1) + " %"; }
  function seconds(value) { return value === null ? "–" : Math.round(value) + " s"; }
  async function load() {
    let reply;
    try {
      reply = await fetch("/wallboard.json", { credentials: "same-origin" });
    } catch (err) { stateBox.dataset.state = "reconnecting"; stateBox.textContent = "Reconnecting…"; return; }
    if (!reply.ok) { return; }
    const body = await reply.json();
    const f = body.figures, t = body.targets, ops = body.operators;
    show("w-waiting", f.waiting);
    show("w-oldest", seconds(f.oldest_wait_s));
    show("w-answered15", percent(f.answered_15s), f.answered_15s !== null && f.answered_15s < t.answered_15s);
    show("w-emergency60", percent(f.emergency_60s), f.emergency_60s !== null && f.emergency_60s < t.emergency_60s);
    show("w-emergency180", percent(f.emergency_180s), f.emergency_180s !== null && f.emergency_180s < t.emergency_180s);
    show("w-abandoned", f.abandoned_today);
    show("w-logged-in", ops ? ops.logged_in : "–");
    show("w-paused", ops ? ops.paused : "–");
    show("w-on-call", ops ? ops.on_call : "–");
    show("w-available", ops ? ops.available : "–");
    show("w-vendors", percent(f.vendor_acceptance) + " (" + f.vendor_offers_today + " offers)");
    show("w-escalated", f.escalated_waiting);
    board.dataset.loaded = "yes";
  }
  let soon = null;
  function loadSoon() { if (!soon) { soon = setTimeout(function () { soon = null; load(); }, 300); } }
  const source = new EventSource("/live/events");
  source.addEventListener("status", function (msg) {
    const state = JSON.parse(msg.data).state;
    stateBox.dataset.state = state;
    stateBox.textContent = state === "live" ? "Live" : "Reconnecting…";
  });
  source.onmessage = loadSoon;
  source.onerror = function () { stateBox.dataset.state = "reconnecting"; stateBox.textContent = "Reconnecting…"; };
  load();
  setInterval(load, 3000);
})();
