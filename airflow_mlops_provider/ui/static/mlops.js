/* Charts of the ML view, drawn with uPlot (vendored: uPlot.iife.min.js, MIT, see uPlot.LICENSE).
 * Data arrives in <script type="application/json"> elements rendered by the server; nothing is
 * fetched from outside the Airflow API server, and labels are set with textContent (never HTML). */
(function () {
  "use strict";
  function read(id) { return JSON.parse(document.getElementById(id).textContent); }
  function box(container, title) {
    var div = document.createElement("div"); div.className = "chart";
    var h = document.createElement("div"); h.className = "chart-title"; h.textContent = title;
    div.appendChild(h); container.appendChild(div); return div;
  }
  function width() { return Math.max(320, Math.min(640, (document.body.clientWidth || 700) - 40)); }
  function pointsOnly(values, status, wanted) {
    return values.map(function (v, i) { return status[i] === wanted ? v : null; });
  }
  function metricCharts(containerId, dataId) {
    var container = document.getElementById(containerId);
    read(dataId).forEach(function (s) {
      var el = box(container, s.task_id + " · " + s.name);
      var hasLower = s.lower.some(function (v) { return v !== null; });
      var hasUpper = s.upper.some(function (v) { return v !== null; });
      var data = [s.x, s.value, hasLower ? s.lower : s.x.map(function () { return null; }),
        hasUpper ? s.upper : s.x.map(function () { return null; }),
        pointsOnly(s.value, s.status, "failed"), pointsOnly(s.value, s.status, "warning")];
      new uPlot({
        width: width(), height: 220,
        scales: { x: { time: true } },
        series: [
          { label: "run" },
          { label: s.name, stroke: "#1565c0", width: 2, points: { show: true, size: 4 } },
          { label: "lower bound", stroke: "#9e9e9e", dash: [6, 4], points: { show: false }, show: hasLower },
          { label: "upper bound", stroke: "#9e9e9e", dash: [6, 4], points: { show: false }, show: hasUpper },
          { label: "failed", stroke: "#e53935", width: 0, points: { show: true, size: 10, fill: "#e53935" } },
          { label: "warning", stroke: "#ffb300", width: 0, points: { show: true, size: 9, fill: "#ffb300" } }
        ]
      }, data, el);
    });
  }
  function trendChart(containerId, dataId) {
    var t = read(dataId), container = document.getElementById(containerId);
    new uPlot({
      width: width(), height: 220, scales: { x: { time: true } },
      series: [{ label: "run" },
        { label: "duration (s)", stroke: "#1565c0", width: 2, scale: "s" },
        { label: "peak memory (MiB)", stroke: "#6a1b9a", width: 2, scale: "mb" }],
      axes: [{}, { scale: "s", label: "s" }, { scale: "mb", side: 1, label: "MiB", grid: { show: false } }]
    }, [t.x, t.duration, t.memory], box(container, "duration and peak memory"));
  }
  window.mlops = { metricCharts: metricCharts, trendChart: trendChart };
})();
