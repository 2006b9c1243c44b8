// clawlet console: the live tail. Loaded on every page, it acts only where a #tail table is.
// One EventSource per open tail page; the browser reconnects by itself, with the last event id,
// so there is no polling. Rows are built with textContent: nothing from an event is parsed as HTML.
(function () {
  "use strict";
  var MAX_ROWS = 200;

  function cell(row, text) {
    var td = document.createElement("td");
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function addRow(tbody, event) {
    var tr = document.createElement("tr");
    tr.className = "event fresh";
    tr.dataset.id = event.id;
    tr.dataset.deliveryId = event.delivery_id;
    var summary = cell(tr, "");
    summary.className = "summary";
    var link = document.createElement("a");
    link.href = "/events/" + encodeURIComponent(event.id);
    link.textContent = event.summary;
    summary.appendChild(link);
    cell(tr, event.handler);
    cell(tr, event.action ? event.type + "." + event.action : event.type);
    var status = cell(tr, "");
    var badge = document.createElement("span");
    badge.className = "badge " + (/^[a-z]+$/.test(event.status) ? event.status : "");
    badge.textContent = event.status;
    status.appendChild(badge);
    var received = cell(tr, "");
    var time = document.createElement("time");
    time.dateTime = event.received_at;
    time.title = event.received_at;
    // UTC to the second, as the server-rendered pages show times.
    var at = new Date(event.received_at);
    time.textContent = isNaN(at) ? event.received_at : at.toISOString().slice(11, 19) + " UTC";
    received.appendChild(time);
    tbody.insertBefore(tr, tbody.firstChild);
    while (tbody.rows.length > MAX_ROWS) {
      tbody.deleteRow(tbody.rows.length - 1);
    }
  }

  function start() {
    var table = document.getElementById("tail");
    var tbody = document.getElementById("tail-rows");
    var status = document.getElementById("tail-status");
    if (!table || !tbody || !window.EventSource) {
      return;
    }
    var source = new EventSource(table.dataset.source);
    source.addEventListener("open", function () {
      status.textContent = "live";
      table.dataset.state = "live";
    });
    source.addEventListener("error", function () {
      status.textContent = source.readyState === EventSource.CLOSED ? "closed" : "reconnecting";
      table.dataset.state = "reconnecting";
    });
    source.addEventListener("event", function (message) {
      var event;
      try {
        event = JSON.parse(message.data);
      } catch (err) {
        return;
      }
      addRow(tbody, event);
    });
    source.addEventListener("lagged", function (message) {
      status.textContent = "live (" + message.data + " events went by too fast to show; see Events)";
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
