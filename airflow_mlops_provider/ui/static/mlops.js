/* Charts and theme of the ML view, drawn with uPlot (vendored: uPlot.iife.min.js, MIT, see uPlot.LICENSE).
 * Data arrives in <script type="application/json"> elements rendered by the server; nothing is
 * fetched from outside the Airflow API server, and labels are set with textContent (never HTML).
 * Each chart's element keeps its uPlot instance as `.uplot` (the browser tests read its scales). */
(function () {
  "use strict";

  /* Airflow's UI keeps its colour mode in localStorage ("theme": light, dark or system); the view
   * is served from the same origin, so it follows it, and the system setting otherwise. */
  function theme() {
    var chosen = null;
    try { chosen = window.localStorage.getItem("theme"); } catch (e) { chosen = null; }
    if (chosen !== "dark" && chosen !== "light") {
      chosen = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
    }
    document.documentElement.setAttribute("data-theme", chosen);
    return chosen;
  }
  theme();
  window.addEventListener("storage", function (e) { if (e.key === "theme") { theme(); } });

  function colour(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
  }
  function read(id) { return JSON.parse(document.getElementById(id).textContent); }
  function box(container, title) {
    var div = document.createElement("div"); div.className = "chart";
    var h = document.createElement("div"); h.className = "chart-title"; h.textContent = title;
    div.appendChild(h); container.appendChild(div); return div;
  }
  function width(container) {
    var avail = (container && container.clientWidth) || document.body.clientWidth || 700;
    return Math.max(280, Math.min(640, avail - 24));
  }
  function pointsOnly(values, status, wanted) {
    return values.map(function (v, i) { return status[i] === wanted ? v : null; });
  }
  function axes() {
    var fg = colour("--fg-muted"), grid = colour("--grid");
    return { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
  }
  /* The run axis: ticks and grid lines only at whole runs (no unlabelled lines between two runs),
   * labelled "#n", far enough apart for "#1000" not to touch its neighbour. */
  var RUN_STEPS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000];
  function runAxis(ax) {
    return Object.assign({ label: "run", incrs: RUN_STEPS, space: 48, values: function (u, ticks) {
      return ticks.map(function (t) { return Number.isInteger(t) ? "#" + t : ""; });
    } }, ax);
  }
  /* x is the run's position in the window (1 = oldest shown): runs are evenly spaced whatever
   * their dates, a single run sits in the middle, and the legend names the run under the cursor. */
  function metricCharts(containerId, dataId) {
    var container = document.getElementById(containerId), data = read(dataId), runs = data.runs;
    function runLabel(x) {
      var r = runs[Math.round(x) - 1];
      return r ? "#" + Math.round(x) + " " + r.run_id + (r.date ? " (" + r.date.slice(0, 16).replace("T", " ") + ")" : "") : "";
    }
    data.series.forEach(function (s) {
      var el = box(container, s.task_id === s.name ? s.name : s.task_id + " · " + s.name);
      el.setAttribute("data-points", String(s.x.length));
      var hasLower = s.lower.some(function (v) { return v !== null; });
      var hasUpper = s.upper.some(function (v) { return v !== null; });
      var stepped = uPlot.paths.stepped({ align: 1 });  /* a bound holds from the run that set it */
      var ax = axes(), main = colour("--accent"), bound = colour("--fg-muted");
      el.uplot = new uPlot({
        width: width(container), height: 220,
        scales: { x: { time: false, range: function () { return [0.5, Math.max(runs.length, 1) + 0.5]; } } },
        axes: [runAxis(ax), ax],
        series: [
          { label: "run", value: function (u, x) { return x == null ? "" : runLabel(x); } },
          { label: s.name, stroke: main, width: 2, points: { show: true, size: 5 } },
          { label: "lower bound", stroke: bound, dash: [6, 4], paths: stepped, points: { show: false }, show: hasLower },
          { label: "upper bound", stroke: bound, dash: [6, 4], paths: stepped, points: { show: false }, show: hasUpper },
          { label: "failed", stroke: colour("--bad"), width: 0, points: { show: true, size: 10, fill: colour("--bad") } },
          { label: "warning", stroke: colour("--warn"), width: 0, points: { show: true, size: 9, fill: colour("--warn") } }
        ]
      }, [s.x, s.value, hasLower ? s.lower : s.x.map(function () { return null; }),
        hasUpper ? s.upper : s.x.map(function () { return null; }),
        pointsOnly(s.value, s.status, "failed"), pointsOnly(s.value, s.status, "warning")], el);
    });
  }
  function trendChart(containerId, dataId) {
    var t = read(dataId), container = document.getElementById(containerId), ax = axes();
    function runLabel(x) {
      var run = t.run_ids[Math.round(x) - 1];
      return run ? "#" + Math.round(x) + " " + run : "";
    }
    var el = box(container, "duration and peak memory");
    el.uplot = new uPlot({
      width: width(container), height: 220,
      scales: { x: { time: false, range: function () { return [0.5, Math.max(t.x.length, 1) + 0.5]; } } },
      series: [{ label: "run", value: function (u, x) { return x == null ? "" : runLabel(x); } },
        { label: "duration (s)", stroke: colour("--accent"), width: 2, scale: "s", points: { show: true, size: 5 } },
        { label: "peak memory (MiB)", stroke: colour("--accent-2"), width: 2, scale: "mb", points: { show: true, size: 5 } }],
      axes: [runAxis(ax), Object.assign({ scale: "s", label: "s" }, ax),
        Object.assign({}, ax, { scale: "mb", side: 1, label: "MiB", grid: { show: false } })]
    }, [t.x, t.duration, t.memory], el);
  }
  window.mlops = { metricCharts: metricCharts, trendChart: trendChart, theme: theme };
})();
