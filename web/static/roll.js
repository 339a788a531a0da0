// The piano roll: every note message played, as bars from note-on to note-off, time across, pitch up.
// One colour per MIDI channel; a bar is darker the later its note was than the song's quickest one.
"use strict";

const ROLL_SECONDS = 10;
// Lateness (ms beyond the song's quickest note) at which a bar is drawn darkest.
const LATE_MS = 20;

function channelHue(channel) {
  return (channel * 137.5) % 360;  // golden-angle steps: neighbouring channels far apart
}

class PianoRoll {
  constructor(canvas) {
    this.canvas = canvas;
    this.reset();
  }

  // Forget every note: a page that reconnects is sent the recent ones again.
  reset() {
    this.bars = [];              // {song, channel, key, start, end (null while sounding), lateness}
    this.sounding = new Map();   // "song|channel|key" -> its bar
    this.quickest = new Map();   // song -> lowest latency seen, ms
    this.notesDrawn = new Map(); // song -> note messages placed on the roll (on and off, as the summary counts)
    this.barsDrawn = 0;
    this.barsOnCanvas = 0;  // bars on the canvas at its last drawing
    this.channels = new Set();
    this.lowKey = 48;
    this.highKey = 84;
  }

  // notes: [played_at, song, channel, key, velocity (0: off), latency ms]
  add(notes) {
    for (const [at, song, channel, key, velocity, latency] of notes) {
      this.notesDrawn.set(song, (this.notesDrawn.get(song) || 0) + 1);
      const quickest = Math.min(this.quickest.get(song) ?? latency, latency);
      this.quickest.set(song, quickest);
      const id = `${song}|${channel}|${key}`;
      const open = this.sounding.get(id);
      if (open) {
        open.end = at;
        this.sounding.delete(id);
      }
      if (velocity > 0) {
        const bar = {song, channel, key, start: at, end: null, lateness: latency - quickest};
        this.bars.push(bar);
        this.sounding.set(id, bar);
        this.barsDrawn += 1;
        this.channels.add(channel);
        this.lowKey = Math.min(this.lowKey, key - 2);
        this.highKey = Math.max(this.highKey, key + 2);
      } else if (!open) {
        // A note-off with no note-on seen (the page opened mid-note): a tick where it ended.
        this.bars.push({song, channel, key, start: at, end: at, lateness: latency - quickest});
        this.barsDrawn += 1;
      }
    }
  }

  // A song's notes left sounding when it ends (a lost note-off) stop at its end.
  closeSong(song, at) {
    for (const [id, bar] of this.sounding) {
      if (bar.song === song) {
        bar.end = at;
        this.sounding.delete(id);
      }
    }
  }

  draw(now) {
    const {context, width, height} = clearedCanvas(this.canvas);
    const from = now - ROLL_SECONDS;
    this.bars = this.bars.filter((bar) => bar.end === null || bar.end >= from);
    // Drawn once more after the last bar scrolled off, to leave the roll empty.
    this.barsOnCanvas = this.bars.length;
    const keys = this.highKey - this.lowKey + 1;
    const rowHeight = height / keys;
    // Octave lines at each C, labelled.
    context.fillStyle = "#888";
    context.font = "10px sans-serif";
    for (let key = this.lowKey; key <= this.highKey; key++) {
      if (key % 12 === 0) {
        const y = height - (key - this.lowKey + 1) * rowHeight;
        context.fillRect(0, y + rowHeight, width, 0.5);
        context.fillText(`C${key / 12 - 1}`, 2, y + rowHeight - 2);
      }
    }
    const x = (t) => ((t - from) / ROLL_SECONDS) * width;
    for (const bar of this.bars) {
      const late = Math.min(1, Math.max(0, bar.lateness) / LATE_MS);
      context.fillStyle = `hsl(${channelHue(bar.channel)}, 75%, ${65 - 40 * late}%)`;
      const left = x(bar.start);
      const right = bar.end === null ? x(now) : x(bar.end);
      const y = height - (bar.key - this.lowKey + 1) * rowHeight;
      context.fillRect(left, y, Math.max(2, right - left), Math.max(2, rowHeight - 1));
    }
  }
}
