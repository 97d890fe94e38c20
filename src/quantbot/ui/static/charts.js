// Draws every Plotly figure a page embeds: <div class="qb-chart"> holding a
// <script type="application/json" class="qb-figure"> (the figure, from quantbot.ui.charts)
// and a <div class="qb-plot"> to draw in. Also after htmx swaps in new content.
(function () {
  "use strict";
  var CONFIG = {responsive: true, displaylogo: false,
                modeBarButtonsToRemove: ["lasso2d", "select2d"]};

  function draw(root) {
    root.querySelectorAll(".qb-chart").forEach(function (box) {
      var spec = box.querySelector("script.qb-figure");
      var target = box.querySelector(".qb-plot");
      if (!spec || !target || target.dataset.drawn) { return; }
      var fig = JSON.parse(spec.textContent);
      target.dataset.drawn = "1";
      var legend = fig.layout.legend || {};
      if (target.clientWidth < 600 && legend.orientation === "v") {
        // a narrow screen: a legend at the side would squash the plot; put it below the
        // x axis title, two names a row, and make the figure taller by as much
        var layout = fig.layout, margin = Object.assign({t: 30, b: 50}, layout.margin);
        var extra = 22 * Math.ceil(fig.data.length / 2);
        layout.height = (layout.height || 400) + extra;
        margin.b += extra;
        layout.margin = margin;
        var plotHeight = layout.height - margin.t - margin.b;
        layout.legend = Object.assign({}, legend, {orientation: "h", x: 0, xanchor: "left",
                                                   y: -70 / plotHeight, yanchor: "top"});
      }
      Plotly.newPlot(target, fig.data, fig.layout, CONFIG);
    });
  }

  function copyButtons(root) {
    root.querySelectorAll("[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var source = document.getElementById(button.dataset.copy);
        var text = source.value !== undefined ? source.value : source.textContent;
        function selected() {  // no clipboard API (plain http off loopback): select it
          source.focus(); if (source.select) { source.select(); }
          button.textContent = "selected: press Ctrl+C";
        }
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(text).then(function () {
            button.textContent = "copied";
            setTimeout(function () { button.textContent = "copy"; }, 1500);
          }, selected);
        } else { selected(); }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    draw(document); copyButtons(document);
  });
  document.addEventListener("htmx:afterSwap", function (event) { draw(event.target); });
})();
