// Progressive enhancement only: the console works without JavaScript. This keeps the RAG
// timers' "time left" current while the page is open.
(function () {
  function span(ms) {
    var minutes = Math.floor(Math.abs(ms) / 60000);
    var days = Math.floor(minutes / 1440); minutes -= days * 1440;
    var hours = Math.floor(minutes / 60); minutes -= hours * 60;
    return (days ? days + "d " : "") + hours + "h " + minutes + "m";
  }
  function tick() {
    var nodes = document.querySelectorAll(".rag-remaining[data-due]");
    for (var i = 0; i < nodes.length; i++) {
      var left = Date.parse(nodes[i].getAttribute("data-due")) - Date.now();
      if (isNaN(left)) continue;
      nodes[i].textContent = left > 0 ? span(left) + " left" : "OVERDUE by " + span(left);
    }
  }
  document.addEventListener("DOMContentLoaded", function () {
    tick();
    setInterval(tick, 30000);
    var summary = document.getElementById("error-summary");
    if (summary) summary.focus();
  });
})();
