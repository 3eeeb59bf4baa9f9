// Progressive enhancement: the table above holds every figure; this draws them as a chart.
(function () {
  function draw() {
    var target = document.getElementById("quality-chart");
    var data = document.getElementById("quality-data");
    if (!target || !data || !window.Plotly) { return; }
    var figure = JSON.parse(data.textContent);
    window.Plotly.newPlot(target, figure.data, figure.layout, {responsive: true, displaylogo: false});
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
