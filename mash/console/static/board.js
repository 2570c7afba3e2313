// The board report's charts, drawn with the vendored Chart.js from the report's own JSON
// (<script type="application/json" id="board-data">). Suppressed counts ("<5") and hidden
// shares (null) are left as gaps: a chart never shows a value the tables do not.
(function () {
  var STATES = ["KNOWN", "NOT_KNOWN", "WITHHELD", "NOT_CHECKED"];
  var COLOURS = {KNOWN: "#00703c", NOT_KNOWN: "#1d70b8", WITHHELD: "#f47738",
                 NOT_CHECKED: "#d4351c"};
  var PALETTE = ["#1d70b8", "#d4351c", "#00703c", "#f47738", "#4c2c92", "#b58840",
                 "#28a197", "#d53880", "#505a5f", "#85994b"];
  function num(v) { return typeof v === "number" ? v : null; }
  function bar(id, labels, datasets, stacked, max) {
    var node = document.getElementById(id);
    if (!node) return;
    var scale = {beginAtZero: true, stacked: stacked};
    if (max) scale.max = max;
    new Chart(node, {type: "bar", data: {labels: labels, datasets: datasets},
      options: {animation: false, responsive: true,
                scales: {x: {stacked: stacked}, y: scale}}});
  }
  function line(id, periods, datasets) {
    var node = document.getElementById(id);
    if (!node) return;
    new Chart(node, {type: "line", data: {labels: periods, datasets: datasets},
      options: {animation: false, responsive: true, spanGaps: false,
                scales: {y: {beginAtZero: true, max: 1}}}});
  }
  function draw() {
    var source = document.getElementById("board-data");
    if (!source || typeof Chart === "undefined") return;
    var r = JSON.parse(source.textContent);
    var purposes = Object.keys(r.lookups.by_purpose);
    bar("chart-purpose", purposes, [{label: "Lookups",
      data: purposes.map(function (p) { return num(r.lookups.by_purpose[p]); }),
      backgroundColor: "#1d70b8"}], false);
    var urgencies = Object.keys(r.lookups.by_urgency);
    bar("chart-urgency", urgencies, [{label: "Lookups",
      data: urgencies.map(function (u) { return num(r.lookups.by_urgency[u]); }),
      backgroundColor: urgencies.map(function (u) {
        return {red: "#d4351c", amber: "#f47738", green: "#00703c"}[u] || "#505a5f"; })}],
      false);
    var ids = Object.keys(r.agencies);
    var names = ids.map(function (a) { return r.agencies[a].name; });
    bar("chart-states", names, STATES.map(function (s) {
      return {label: s.replace("_", " "), backgroundColor: COLOURS[s],
              data: ids.map(function (a) { return num(r.agencies[a].states[s]); })};
    }), true);
    var reasons = {};
    ids.forEach(function (a) {
      Object.keys(r.agencies[a].not_checked_reasons).forEach(function (k) { reasons[k] = 1; });
    });
    bar("chart-reasons", names, Object.keys(reasons).sort().map(function (k, i) {
      return {label: k.replace(/_/g, " "), backgroundColor: PALETTE[i % PALETTE.length],
              data: ids.map(function (a) { return num(r.agencies[a].not_checked_reasons[k]); })};
    }), true);
    var periods = {};
    ids.forEach(function (a) {
      r.agencies[a].over_time.forEach(function (s) { periods[s.period] = 1; });
    });
    var labels = Object.keys(periods).sort();
    ["availability", "completeness"].forEach(function (measure) {
      line("chart-" + measure, labels, ids.map(function (a, i) {
        var by = {};
        r.agencies[a].over_time.forEach(function (s) { by[s.period] = s[measure]; });
        return {label: r.agencies[a].name, borderColor: PALETTE[i % PALETTE.length],
                backgroundColor: PALETTE[i % PALETTE.length],
                data: labels.map(function (p) { return num(by[p]); })};
      }));
    });
    document.getElementById("board-report").setAttribute("data-charts", "drawn");
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
