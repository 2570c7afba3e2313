// Progressive enhancement only: the console works without JavaScript. This counts the RAG
// timers' "time left" down while the page is open, offers only the chosen purpose's
// stages, and prints collapsed lists of withheld fields open.
(function () {
  function span(ms) {
    var seconds = Math.floor(Math.abs(ms) / 1000);
    var minutes = Math.floor(seconds / 60); seconds -= minutes * 60;
    var days = Math.floor(minutes / 1440); minutes -= days * 1440;
    var hours = Math.floor(minutes / 60); minutes -= hours * 60;
    return (days ? days + "d " : "") + hours + "h " + minutes + "m " + seconds + "s";
  }
  function tick() {
    var nodes = document.querySelectorAll(".rag-remaining[data-due]");
    for (var i = 0; i < nodes.length; i++) {
      var left = Date.parse(nodes[i].getAttribute("data-due")) - Date.now();
      if (isNaN(left)) continue;
      nodes[i].textContent = left > 0 ? span(left) + " left" : "OVERDUE by " + span(left);
    }
  }
  function stagesFor(purpose, stage) {
    var options = stage.querySelectorAll("option[data-purposes]");
    for (var i = 0; i < options.length; i++) {
      var of = options[i].getAttribute("data-purposes").split(" ");
      var offered = !purpose.value || of.indexOf(purpose.value) >= 0;
      options[i].hidden = !offered;
      options[i].disabled = !offered;
      if (!offered && options[i].selected) stage.value = "";
    }
  }
  var closed = [];
  window.addEventListener("beforeprint", function () {
    closed = Array.prototype.filter.call(document.querySelectorAll("details"),
                                         function (d) { return !d.open; });
    closed.forEach(function (d) { d.open = true; });
  });
  window.addEventListener("afterprint", function () {
    closed.forEach(function (d) { d.open = false; });
    closed = [];
  });
  document.addEventListener("DOMContentLoaded", function () {
    tick();
    setInterval(tick, 1000);  // the RAG timer counts down by the second
    [["purpose", "stage"], ["c-purpose", "c-stage"]].forEach(function (ids) {
      var purpose = document.getElementById(ids[0]), stage = document.getElementById(ids[1]);
      if (!purpose || !stage || purpose.tagName !== "SELECT" || stage.tagName !== "SELECT") return;
      stagesFor(purpose, stage);
      purpose.addEventListener("change", function () { stagesFor(purpose, stage); });
    });
    var summary = document.getElementById("error-summary");
    if (summary) summary.focus();
  });
})();
