// What the piano roll and the plots share: a canvas sized to where the page laid it out, cleared.
"use strict";

function clearedCanvas(canvas) {
  // Setting a canvas's width reallocates it, even to the same value: only when the layout changed.
  if (canvas.width !== canvas.clientWidth) canvas.width = canvas.clientWidth;
  const width = canvas.width;
  const height = canvas.height;
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, width, height);
  return {context, width, height};
}
