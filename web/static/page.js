// The page: one WebSocket to the worker (/live), the piano roll and plots redrawn every frame, the tables
// on each update. window.midiView holds what the page shows, for the browser tests to read.
"use strict";

const roll = new PianoRoll(document.getElementById("roll"));
const latencyPlot = new TimePlot(document.getElementById("latency"));
const timingPlot = new TimePlot(document.getElementById("timing"));
// Drawn this far behind the worker's clock, so notes pushed every update enter smoothly at the right edge.
const DRAW_BEHIND = 0.25;
// The page may share the machine with the worker it watches: the roll is redrawn at most this often,
// the plots (a minute across) less, neither when nothing is on them, the tables only when they changed.
const ROLL_FRAME_MS = 40;
const PLOT_FRAME_MS = 200;
const IDLE_CHECK_MS = 250;
const TABLE_MS = 250;
const view = window.midiView = {updates: 0, songs: {}, partitions: [], broker: null, dropped: 0, roll};
let clockOffset = null;  // the worker's time minus this page's, s
let retryDelay = 500;
let rollDrawnAt = 0;
let plotsDrawnAt = 0;
const shown = {songs: "", partitions: "", broker: ""};

// Whether ``value`` differs from what the page shows as ``what``; remembers it.
function changed(what, value) {
  const text = JSON.stringify(value);
  if (shown[what] === text) return false;
  shown[what] = text;
  return true;
}

document.getElementById("roll-seconds").textContent = ROLL_SECONDS;

function workerNow() {
  return clockOffset === null ? Date.now() / 1000 : Date.now() / 1000 + clockOffset;
}

function cell(row, text, bad) {
  const td = row.insertCell();
  td.textContent = text === null || text === undefined ? "" : text;
  if (bad) td.className = "bad";
  return td;
}

// The songs' table changes with every update while songs play: rebuilt at most every TABLE_MS, the
// last state always shown.
let songsShownAt = 0;
let songsPending = null;

function showSongsSoon(songs) {
  const wait = TABLE_MS - (performance.now() - songsShownAt);
  if (songsPending === null && wait > 0) {
    setTimeout(() => songsPending !== null && showSongs(songsPending), wait);
  }
  songsPending = songs;
  if (wait <= 0) showSongs(songs);
}

function showSongs(songs) {
  songsPending = null;
  songsShownAt = performance.now();
  if (!changed("songs", songs)) return;
  const body = document.querySelector("#songs tbody");
  body.replaceChildren();
  for (const song of songs) {
    view.songs[song.song] = song;
    const row = body.insertRow();
    row.dataset.song = song.song;
    if (song.ended) row.className = "ended";
    cell(row, song.song);
    cell(row, `${song.topic}/${song.partition}`);
    for (const field of ["events", "notes", "lost", "duplicates", "reordered", "late", "dropped"]) {
      cell(row, song[field], field !== "events" && field !== "notes" && song[field] > 0).dataset.field = field;
    }
    cell(row, song.latency_ms ? song.latency_ms.p99 : "");
    cell(row, song.timing_error_ms ? song.timing_error_ms.p99 : "");
    cell(row, song.ended || "playing");
    if (song.ended) roll.closeSong(song.song, workerNow());
  }
}

function showPartitions(partitions) {
  view.partitions = partitions;
  if (!changed("partitions", partitions)) return;
  const body = document.querySelector("#partitions tbody");
  body.replaceChildren();
  for (const p of partitions) {
    const row = body.insertRow();
    row.dataset.partition = p.partition;
    cell(row, p.topic);
    cell(row, p.partition);
    cell(row, p.position);
    cell(row, p.end);
    cell(row, p.lag, p.lag > 0).dataset.field = "lag";
    cell(row, p.stale ? "end offset from the last fetch: the broker does not answer" : "");
  }
}

function showBroker(broker) {
  view.broker = broker;
  if (broker.reachable && !changed("broker", broker)) return;
  const element = document.getElementById("broker");
  if (broker.reachable) {
    element.textContent = "broker reachable";
    element.className = "status good";
  } else {
    const since = new Date(broker.unreachable_since * 1000);
    const seconds = Math.round(workerNow() - broker.unreachable_since);
    element.textContent = `broker unreachable since ${since.toLocaleTimeString()} (${seconds} s)` +
      (broker.reason ? `: ${broker.reason}` : "");
    element.className = "status bad";
  }
}

function showChannels() {
  const legend = document.getElementById("channels");
  if (legend.childElementCount === roll.channels.size) return;
  legend.replaceChildren();
  for (const channel of [...roll.channels].sort((a, b) => a - b)) {
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = `hsl(${channelHue(channel)}, 75%, 55%)`;
    item.append(swatch, `channel ${channel + 1}`);
    legend.append(item);
  }
}

function receive(message) {
  if (message.type === "dropped") {
    view.dropped = message.count;
    document.getElementById("dropped").textContent = `${message.count} updates dropped (this page read too slowly)`;
    return;
  }
  clockOffset = message.now - Date.now() / 1000;
  if (message.type === "hello") {
    roll.reset();
    latencyPlot.series.clear();
    timingPlot.series.clear();
  }
  roll.add(message.notes);
  for (const [at, song, latency, timing] of message.points) {
    latencyPlot.add(song, at, latency);
    timingPlot.add(song, at, timing);
  }
  showSongsSoon(message.songs);
  showPartitions(message.partitions);
  showBroker(message.broker);
  showChannels();
  view.updates += 1;
}

function connect() {
  const status = document.getElementById("connection");
  const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/live`);
  socket.onopen = () => {
    status.textContent = "live";
    status.className = "status good";
    retryDelay = 500;
  };
  socket.onmessage = (event) => receive(JSON.parse(event.data));
  socket.onclose = () => {
    status.textContent = "worker gone: reconnecting";
    status.className = "status bad";
    setTimeout(connect, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 10000);
  };
}

function frame() {
  const at = performance.now();
  const now = workerNow() - DRAW_BEHIND;
  const rollMoves = roll.bars.length + roll.barsOnCanvas > 0 || !rollDrawnAt;
  if (rollMoves && at - rollDrawnAt >= ROLL_FRAME_MS) {
    roll.draw(now);
    rollDrawnAt = at;
  }
  const plotsMove = latencyPlot.moves() || timingPlot.moves() || !plotsDrawnAt;
  if (plotsMove && at - plotsDrawnAt >= PLOT_FRAME_MS) {
    latencyPlot.draw(now);
    timingPlot.draw(now);
    plotsDrawnAt = at;
  }
  // With nothing on screen to scroll, no animation frames: a few checks a second for new notes.
  if (rollMoves || plotsMove) requestAnimationFrame(frame);
  else setTimeout(frame, IDLE_CHECK_MS);
}

connect();
frame();
