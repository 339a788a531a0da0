// What the piano roll and the plots share: a canvas sized to where the page laid it out, cleared.
"use strict";

function clearedCanvas(canvas) {
  const width = canvas.width = canvas.clientWidth;
  const height = canvas.height;
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, width, height);
  return {context, width, height};
}
