// A plot of figures over time, one line per song, the last PLOT_SECONDS, its scale following its values.
"use strict";

const PLOT_SECONDS = 60;

function songHue(index) {
  return (index * 97 + 200) % 360;
}

class TimePlot {
  constructor(canvas) {
    this.canvas = canvas;
    this.series = new Map();  // song -> [[time, value]]
    this.songIndex = new Map();
    this.linesOnCanvas = 0;
  }

  add(song, at, value) {
    if (value === null || value === undefined) return;
    if (!this.series.has(song)) {
      this.series.set(song, []);
      this.songIndex.set(song, this.songIndex.size);
    }
    this.series.get(song).push([at, value]);
  }

  // Whether there is a line on the plot, or one still to be cleared from it.
  moves() {
    return this.series.size > 0 || this.linesOnCanvas > 0;
  }

  draw(now) {
    const {context, width, height} = clearedCanvas(this.canvas);
    const from = now - PLOT_SECONDS;
    let top = 1;
    for (const [song, points] of this.series) {
      while (points.length && points[0][0] < from) points.shift();
      if (!points.length) this.series.delete(song);
      for (const [, value] of points) top = Math.max(top, value);
    }
    top = niceCeiling(top);
    this.linesOnCanvas = this.series.size;
    context.fillStyle = "#888";
    context.font = "10px sans-serif";
    for (const fraction of [0.25, 0.5, 0.75, 1]) {
      const y = height - fraction * (height - 12);
      context.fillRect(0, y, width, 0.5);
      context.fillText(`${+(top * fraction).toPrecision(3)}`, 2, y + 10);
    }
    const x = (t) => ((t - from) / PLOT_SECONDS) * width;
    const y = (v) => height - (v / top) * (height - 12);
    for (const [song, points] of this.series) {
      context.strokeStyle = `hsl(${songHue(this.songIndex.get(song))}, 70%, 40%)`;
      context.beginPath();
      points.forEach(([t, v], i) => (i ? context.lineTo(x(t), y(v)) : context.moveTo(x(t), y(v))));
      context.stroke();
    }
  }
}

function niceCeiling(value) {
  const step = 10 ** Math.floor(Math.log10(value));
  for (const multiple of [1, 2, 5, 10]) {
    if (value <= multiple * step) return multiple * step;
  }
  return 10 * step;
}
