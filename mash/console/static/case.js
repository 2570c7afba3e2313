// The live family picture (progressive enhancement: without JavaScript the page shows the
// stored picture and its "Ask again" button). While the page is open it posts to the case's
// /live address every data-every seconds (with the session's CSRF token); the console asks
// again any agency NOT CHECKED whose agent now answers, and any agency registered since, and
// sends the grid back only when it changed. Cells are built with textContent, never HTML.
(function () {
  "use strict";
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function cellOf(c) {
    var td = el("td", "grid-cell state-" + c.css);
    td.setAttribute("data-state", c.css);
    td.setAttribute("data-agency", c.agency);
    var details = el("details"), summary = el("summary");
    summary.appendChild(el("span", "state-badge", c.symbol + " " + c.word));
    if (c.reason) {
      summary.appendChild(el("br"));
      summary.appendChild(el("span", "state-explanation", c.reason));
    }
    details.appendChild(summary);
    details.appendChild(el("p", "", c.detail || "No further detail."));
    td.appendChild(details);
    return td;
  }
  function draw(table, data) {
    var head = table.tHead.rows[0];
    while (head.cells.length > 1) head.deleteCell(1);
    data.agencies.forEach(function (a) {
      var th = el("th", "", a.name);
      th.setAttribute("scope", "col");
      head.appendChild(th);
    });
    var changed = [];
    data.rows.forEach(function (row) {
      var tr = document.getElementById("person-" + row.index);
      if (!tr) return;
      var before = {};
      Array.prototype.forEach.call(tr.querySelectorAll("td.grid-cell"), function (td) {
        before[td.getAttribute("data-agency")] = td.getAttribute("data-state");
        td.parentNode.removeChild(td);
      });
      row.cells.forEach(function (c) {
        tr.appendChild(cellOf(c));
        if (before[c.agency] !== c.css) {
          changed.push(tr.cells[0].firstChild.textContent + ", " + c.agency_name + ": " + c.word);
        }
      });
    });
    var list = document.getElementById("grid-details-list");
    if (list) {
      while (list.firstChild) list.removeChild(list.firstChild);
      data.rows.forEach(function (row) {
        var tr = document.getElementById("person-" + row.index);
        row.cells.forEach(function (c) {
          if (!c.detail || !tr) return;
          list.appendChild(el("dt", "", tr.cells[0].firstChild.textContent + " – " +
                              c.agency_name + ": " + c.word));
          list.appendChild(el("dd", "", c.detail));
        });
      });
    }
    var ask = document.getElementById("ask-again");
    var note = document.getElementById("no-agreement-note");
    if (ask) ask.hidden = !data.can_ask;  // nothing left that asking again may change
    if (note) note.hidden = !!data.can_ask;
    var warning = document.getElementById("not-checked-warning");
    if (warning) warning.hidden = data.not_checked === 0;
    var count = document.getElementById("not-checked-count");
    if (count) {
      count.textContent = data.not_checked + (data.not_checked === 1 ? " answer was" :
                                              " answers were") + " NOT CHECKED.";
    }
    return changed;
  }
  document.addEventListener("DOMContentLoaded", function () {
    var table = document.getElementById("family-grid");
    if (!table || !window.fetch) return;
    var status = document.getElementById("live-status");
    var every = Math.max(1, parseFloat(table.getAttribute("data-every")) || 15) * 1000;
    var busy = false;
    function poll() {
      if (busy) return;
      busy = true;
      var body = new URLSearchParams({csrf_token: table.getAttribute("data-csrf"),
                                      since: table.getAttribute("data-revision")});
      fetch(table.getAttribute("data-live-url"), {method: "POST", body: body,
                                                  credentials: "same-origin",
                                                  headers: {"Accept": "application/json"}})
        .then(function (r) {
          if (!r.ok) throw new Error("status " + r.status);
          return r.json();
        })
        .then(function (data) {
          if (!data.changed) return;
          var changed = draw(table, data);
          table.setAttribute("data-revision", String(data.revision));
          table.setAttribute("data-updated", new Date().toISOString());
          if (status) {
            status.textContent = "Updated " + new Date().toTimeString().slice(0, 5) +
              (changed.length ? ": " + changed.join("; ") : ": no state changed") + ".";
          }
        })
        .catch(function () {
          if (status) status.textContent = "Later answers cannot be fetched just now: " +
            "reload the page or use Ask again.";
        })
        .then(function () { busy = false; });
    }
    setInterval(poll, every);
  });
})();
