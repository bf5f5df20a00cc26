/* The support report's behaviour: lookup, worklists and the user card.
 *
 * Data arrive as gzip + base64 JSON in <script type="application/octet-stream" id="data">,
 * decoded with the browser's DecompressionStream. Every value from the data is placed with
 * textContent or createElement: never innerHTML. Only what is on screen is in the DOM.
 */
(function () {
  "use strict";
  var PAGE = 50;
  var SUGGEST = 12;
  var D = null;          // the payload
  var offsets = null;    // user index -> first detailed key (Int32Array, length users + 1)
  var quarantineOf = {}; // user index -> quarantine row indexes
  var foreignOf = {};    // user index -> foreign row indexes
  var box = document.getElementById("lookup");
  var list = document.getElementById("suggestions");
  var answer = document.getElementById("lookup-answer");
  var cardBox = document.getElementById("card");
  var picked = -1;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function decode(text) {
    var raw = atob(text.trim());
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { bytes[i] = raw.charCodeAt(i); }
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).text().then(JSON.parse);
  }

  function value(column, i) {
    // A dictionary-encoded column: [uniques, codes, refs]; code -1 is "no value", and
    // code -2 - k "the same as this row of column refs[k]" (of the same keys table).
    // A time column: ["t", Unix seconds or null or "k" (the row of column refs[k]), refs].
    if (column[0] === "t") {
      var at = column[1][i];
      if (at === null) { return null; }
      if (typeof at === "string") { return value(D.keys.cols[column[2][Number(at)]], i); }
      return new Date(at * 1000).toISOString().replace("T", " ").replace(".000Z", " UTC");
    }
    var code = column[1][i];
    if (code >= 0) { return column[0][code]; }
    if (code === -1) { return null; }
    return value(D.keys.cols[column[2][-2 - code]], i);
  }

  function lowerBound(users, needle) {
    var lo = 0, hi = users.length;
    while (lo < hi) {
      var mid = (lo + hi) >>> 1;
      if (users[mid] < needle) { lo = mid + 1; } else { hi = mid; }
    }
    return lo;
  }

  function index() {
    var n = D.users.length, ku = D.keys.u;
    offsets = new Int32Array(n + 1);
    for (var i = 0; i < ku.length; i++) { offsets[ku[i] + 1] += 1; }
    for (var u = 0; u < n; u++) { offsets[u + 1] += offsets[u]; }
    D.quarantine.u.forEach(function (u, row) {
      if (u >= 0) { (quarantineOf[u] = quarantineOf[u] || []).push(row); }
    });
    D.foreign.u.forEach(function (u, row) { (foreignOf[u] = foreignOf[u] || []).push(row); });
  }

  // ------------------------------------------------------------------ lookup

  function matches(needle) {
    if (!needle) { return []; }
    var users = D.users, out = [];
    for (var i = lowerBound(users, needle); i < users.length && out.length < SUGGEST; i++) {
      if (users[i].lastIndexOf(needle, 0) !== 0) { break; }
      out.push(i);
    }
    return out;
  }

  function suggest() {
    var needle = box.value;
    var found = matches(needle);
    list.replaceChildren();
    picked = found.length ? 0 : -1;
    found.forEach(function (u, n) {
      var item = el("li", n === 0 ? "picked" : "");
      item.setAttribute("role", "option");
      item.dataset.user = String(u);
      item.appendChild(el("span", "id", D.users[u]));
      item.appendChild(el("span", "muted", " " + summaryOf(u)));
      item.addEventListener("mousedown", function (event) { event.preventDefault(); open(u); });
      list.appendChild(item);
    });
    if (!needle) { answer.textContent = ""; }
    else if (!found.length) { answer.textContent = "No user with this id or prefix in this run."; }
    else { answer.textContent = found.length === SUGGEST ? "first " + SUGGEST + " matches" : found.length + " match(es)"; }
  }

  function move(step) {
    var items = list.children;
    if (!items.length) { return; }
    if (picked >= 0) { items[picked].className = ""; }
    picked = (picked + step + items.length) % items.length;
    items[picked].className = "picked";
  }

  function find(id) {
    var at = lowerBound(D.users, id);
    return D.users[at] === id ? at : -1;
  }

  function enter() {
    var needle = box.value;
    if (!needle) { return; }
    var exact = find(needle);
    if (exact >= 0) { open(exact); return; }
    var items = list.children;
    if (picked >= 0 && items[picked]) { open(Number(items[picked].dataset.user)); return; }
    unknown(needle);
  }

  function unknown(needle) {
    cardBox.replaceChildren();
    var card = el("section", "usercard unknown");
    card.appendChild(el("h3", "id", needle));
    card.appendChild(el("p", "verdict", "Unknown user: this id is in neither the backend nor any export of this run (" +
      D.users.length.toLocaleString("en") + " users). Check the spelling or the export the ticket refers to."));
    cardBox.appendChild(card);
  }

  function summaryOf(u) { return D.summaries[D.summary[u]]; }

  // ------------------------------------------------------------------ the card

  function open(u) {
    list.replaceChildren();
    answer.textContent = "";
    box.value = D.users[u];
    cardBox.replaceChildren(card(u));
    cardBox.scrollIntoView({block: "start"});
  }

  function card(u) {
    var node = el("section", "usercard");
    node.dataset.user = D.users[u];
    node.appendChild(el("h3", "id", D.users[u]));
    node.appendChild(el("p", "verdict", summaryOf(u)));
    var start = offsets[u], end = offsets[u + 1];
    if (end > start) {
      for (var i = start; i < end; i++) { node.appendChild(keyBlock(i)); }
    } else if (D.quiet[u]) {
      node.appendChild(el("p", "muted", "Nothing to do for this user; diff.parquet holds each key's values."));
    }
    var own = quarantineOf[u] || [];
    if (own.length) {
      var q = el("div", "quarantined");
      q.appendChild(el("h4", "", "Quarantined records of this user (" + own.length + ")"));
      q.appendChild(table(["file", "line", "key", "reason"], own.map(function (row) {
        return [value(D.quarantine.file, row), lineOf(D.quarantine.line[row]),
          value(D.quarantine.key, row), value(D.quarantine.reason, row)];
      })));
      node.appendChild(q);
    }
    return node;
  }

  function lineOf(line) { return line < 0 ? "" : String(line); }

  function keyBlock(i) {
    var K = D.keys, spec = D.card;
    var status = D.statuses[K.s[i]];
    var block = el("article", "key status-" + status);
    var head = el("h4");
    head.appendChild(el("span", "id", D.tutorials[K.t[i]]));
    head.appendChild(el("span", "badge " + D.groups[status], status));
    block.appendChild(head);
    block.appendChild(el("p", "words", value(K.cols[spec.words], i)));
    var rows = [], marks = [];
    var writes = value(K.cols[spec.writes], i);
    spec.rows.forEach(function (r, bit) {
      var l = value(K.cols[r[1]], i), b = value(K.cols[r[2]], i), w = value(K.cols[r[3]], i);
      if (l === null && b === null && (w === null || !writes)) { return; }
      var cells = [r[0], l === null ? "—" : l, b === null ? "—" : b];
      if (writes) { cells.push(w === null ? "" : w); }
      rows.push(cells);
      marks.push((K.differs[i] >> bit) & 1);
    });
    var heads = ["", "browser (local exports)", "server (backend row)"];
    if (writes) { heads.push(writes); }
    var t = table(heads, rows);
    marks.forEach(function (differs, n) { if (differs) { t.tBodies[0].rows[n].className = "differs"; } });
    if (rows.length) { block.appendChild(t); }
    block.appendChild(el("p", "action", value(K.cols[spec.action], i)));
    var extra = value(K.cols[spec.extra], i);
    if (extra) { block.appendChild(el("p", "muted", extra)); }
    if (status === "foreign_user") { block.appendChild(foreignFor(K.u[i], K.t[i])); }
    return block;
  }

  function foreignFor(u, t) {
    var F = D.foreign, rows = (foreignOf[u] || []).filter(function (row) { return F.t[row] === t; });
    var box = el("div", "foreign");
    box.appendChild(el("h4", "", rows.length ? "Found in another user's export" : "Found in another user's export (see foreign.csv)"));
    if (rows.length) box.appendChild(table(["export of user", "file", "line", "key"], rows.map(function (row) {
      return [value(F.exporter, row), value(F.file, row), lineOf(F.line[row]), value(F.key, row)];
    })));
    return box;
  }

  function table(heads, rows) {
    var t = el("table");
    var tr = el("tr");
    heads.forEach(function (h) { tr.appendChild(el("th", "", h)); });
    t.createTHead().appendChild(tr);
    var body = t.createTBody();
    rows.forEach(function (cells) {
      var row = el("tr");
      cells.forEach(function (c) { row.appendChild(el("td", "", c)); });
      body.appendChild(row);
    });
    return t;
  }

  // ------------------------------------------------------------------ worklists

  function Worklist(name, rows, columns, cell, opener) {
    this.root = document.getElementById("work-" + name);
    this.all = rows; this.rows = rows; this.page = 0;
    this.columns = columns; this.cell = cell; this.opener = opener;
    this.count = this.root.querySelector(".count");
    this.body = this.root.querySelector("tbody");
    var self = this;
    this.root.querySelector(".prev").addEventListener("click", function () { self.go(self.page - 1); });
    this.root.querySelector(".next").addEventListener("click", function () { self.go(self.page + 1); });
    this.go(0);
  }
  Worklist.prototype.filter = function (keep) {
    this.rows = keep ? this.all.filter(keep) : this.all;
    this.go(0);
  };
  Worklist.prototype.go = function (page) {
    var pages = Math.max(1, Math.ceil(this.rows.length / PAGE));
    this.page = Math.min(Math.max(0, page), pages - 1);
    var self = this, from = this.page * PAGE;
    this.body.replaceChildren();
    this.rows.slice(from, from + PAGE).forEach(function (i) {
      var tr = el("tr");
      self.columns.forEach(function (c) { tr.appendChild(el("td", c === "user" ? "id link" : (c === "tutorial" ? "id" : ""), self.cell(i, c))); });
      tr.addEventListener("click", function () { self.opener(i); });
      self.body.appendChild(tr);
    });
    this.count.textContent = this.rows.length.toLocaleString("en") + " row(s) · page " + (this.page + 1) + " of " + pages;
  };

  function worklists() {
    var K = D.keys, risk = [], review = [];
    var order = D.statuses.map(function (s) {  // certificate claims of other statuses last
      var at = D.worklist_order.indexOf(s);
      return at < 0 ? D.worklist_order.length : at;
    });
    for (var i = 0; i < K.u.length; i++) {
      var group = D.groups[D.statuses[K.s[i]]];
      if (group === "risk") { risk.push(i); }
      else if (group === "review" || K.claim[i]) { review.push(i); }
    }
    function byStatus(a, b) { return order[K.s[a]] - order[K.s[b]] || a - b; }
    risk.sort(byStatus); review.sort(byStatus);
    function keyCell(i, c) {
      if (c === "user") { return D.users[K.u[i]]; }
      if (c === "tutorial") { return D.tutorials[K.t[i]]; }
      if (c === "status") { return D.statuses[K.s[i]] + (K.claim[i] ? " · certificate claim" : ""); }
      return value(K.cols[D.card.action], i);
    }
    function openKey(i) { open(K.u[i]); }
    var cols = ["user", "tutorial", "status", "repair"];
    var lists = [new Worklist("risk", risk, cols, keyCell, openKey), new Worklist("review", review, cols, keyCell, openKey)];
    var Q = D.quarantine, qrows = [];
    for (var r = 0; r < Q.u.length; r++) { qrows.push(r); }
    var quarantine = new Worklist("quarantine", qrows, ["user", "file", "line", "reason"], function (r, c) {
      if (c === "user") { return Q.u[r] < 0 ? "" : D.users[Q.u[r]]; }
      if (c === "line") { return lineOf(Q.line[r]); }
      return value(Q[c], r);
    }, function (r) { if (Q.u[r] >= 0) { open(Q.u[r]); } });
    var status = document.getElementById("filter-status"), tutorial = document.getElementById("filter-tutorial");
    D.tutorials.forEach(function (t, n) { var o = el("option", "", t); o.value = String(n); tutorial.appendChild(o); });
    function apply() {
      var s = status.value === "" ? -1 : D.statuses.indexOf(status.value);
      var t = tutorial.value === "" ? -1 : Number(tutorial.value);
      var keep = (s < 0 && t < 0) ? null : function (i) { return (s < 0 || K.s[i] === s) && (t < 0 || K.t[i] === t); };
      lists.forEach(function (w) { w.filter(keep); });
      quarantine.filter(t < 0 ? null : function (r) { return Q.t[r] === t; });
    }
    status.addEventListener("change", apply);
    tutorial.addEventListener("change", apply);
  }

  // ------------------------------------------------------------------ start

  box.addEventListener("input", suggest);
  box.addEventListener("keydown", function (event) {
    if (event.key === "ArrowDown") { event.preventDefault(); move(1); }
    else if (event.key === "ArrowUp") { event.preventDefault(); move(-1); }
    else if (event.key === "Enter") { event.preventDefault(); enter(); }
    else if (event.key === "Escape") { list.replaceChildren(); }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "/" && document.activeElement !== box &&
        !(document.activeElement && /^(INPUT|SELECT|TEXTAREA)$/.test(document.activeElement.tagName))) {
      event.preventDefault();
      box.focus();
      box.select();
    }
  });
  box.disabled = true;
  decode(document.getElementById("data").textContent).then(function (data) {
    D = data;
    index();
    worklists();
    box.disabled = false;
    box.placeholder = "user id or its beginning — press / to search";
    // For scripts and benchmarks: what the lookup knows of an id (null: unknown).
    window.reconcileLookup = function (id) {
      var u = find(String(id));
      return u < 0 ? null : {keys: offsets[u + 1] - offsets[u], state: summaryOf(u)};
    };
    document.body.dataset.ready = String(Math.round(performance.now()));
  }).catch(function (error) {
    answer.textContent = "The report's data could not be read: " + error;
  });
})();
