"""The viewer page's inline assets: its one stylesheet (`CSS`) and its one script (`JS`).

Both are inlined into ``view.html`` by `fireact.report.view.render_html`, which allows exactly
these two texts by hash in the page's Content-Security-Policy; the script only toggles
``hidden`` and writes numbers with ``textContent`` (filter state in the URL hash).
"""

from __future__ import annotations

CSS = """
:root{--fg:#1f2328;--mute:#656d76;--line:#d0d7de;--bg:#f6f8fa;--ok:#1a7f37;--bad:#cf222e;
--warn:#9a6700;--err:#8250df;--acc:#0969da}
*{box-sizing:border-box}[hidden]{display:none!important}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg)}
header{padding:14px 24px 10px;background:var(--bg);border-bottom:1px solid var(--line)}
h1{font-size:20px;margin:0}.what{margin:2px 0;color:var(--mute)}.done{margin:0 0 8px;color:var(--mute)}
.cards{display:flex;flex-wrap:wrap;gap:8px}
.card{background:#fff;border:1px solid var(--line);border-radius:6px;padding:6px 12px;min-width:112px}
.card .label{display:block;font-size:11px;text-transform:uppercase;color:var(--mute)}
.card b{font-size:18px}.card .note{display:block;font-size:11px;color:var(--mute)}
.filters{position:sticky;top:0;z-index:1;display:flex;flex-wrap:wrap;gap:6px;align-items:center;
padding:8px 24px;background:#fff;border-bottom:1px solid var(--line)}
.filters button{font:inherit;border:1px solid var(--line);background:#fff;border-radius:16px;
padding:3px 12px;cursor:pointer}
.filters button[aria-pressed=true]{background:var(--fg);color:#fff;border-color:var(--fg)}
.filters .n{font-weight:600}
#q{flex:1;min-width:220px;font:inherit;padding:4px 10px;border:1px solid var(--line);border-radius:6px}
.shown{color:var(--mute)}
main{padding:8px 24px 40px}
.ep{border:1px solid var(--line);border-left-width:4px;border-radius:6px;margin:6px 0;background:#fff}
.ep.correct{border-left-color:var(--ok)}.ep.wrong{border-left-color:var(--bad)}
.ep.unfinished{border-left-color:var(--warn)}.ep.errored{border-left-color:var(--err)}
.ep>summary{display:flex;gap:10px;align-items:baseline;padding:6px 10px;cursor:pointer}
.badge{font-size:11px;font-weight:600;text-transform:uppercase;min-width:78px}
.correct .badge{color:var(--ok)}.wrong .badge{color:var(--bad)}
.unfinished .badge{color:var(--warn)}.errored .badge{color:var(--err)}
.id{color:var(--mute);font-family:ui-monospace,monospace;font-size:12px;white-space:nowrap}
.q{flex:1;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.meta{color:var(--mute);white-space:nowrap;font-size:12px}
.body{padding:0 14px 10px;border-top:1px solid var(--line)}
.answers{display:grid;grid-template-columns:90px 1fr;margin:8px 0;gap:2px 8px}
.answers dt{color:var(--mute)}.answers dd{margin:0;font-weight:600;white-space:pre-wrap}
.totals{color:var(--mute);font-size:12px;margin:4px 0}
.error{color:var(--err);font-family:ui-monospace,monospace;white-space:pre-wrap}
.steps{list-style:none;padding:0;margin:6px 0}
.step{display:grid;grid-template-columns:28px 1fr 150px;gap:8px;padding:6px 0;
border-top:1px dashed var(--line)}
.no{color:var(--mute);font-weight:600;text-align:right}
.thought{font-style:italic;white-space:pre-wrap}
.action{font-family:ui-monospace,monospace;color:var(--acc);white-space:pre-wrap;word-break:break-word}
.obs{background:var(--bg);border-radius:4px;padding:3px 8px;margin-top:3px;white-space:pre-wrap;
word-break:break-word}
.k{font-size:11px;text-transform:uppercase;color:var(--mute);font-style:normal;font-family:system-ui}
.facts{color:var(--mute);font-size:12px;text-align:right}
.attempt{margin:6px 0;padding:4px 8px;background:var(--bg);border-radius:6px}
.reflection{white-space:pre-wrap}#none{color:var(--mute)}
"""

JS = """
"use strict";
(function () {
  var CATS = ["all", "correct", "wrong", "unfinished", "errored"];
  var eps = Array.prototype.slice.call(document.querySelectorAll("details.ep"));
  var hay = eps.map(function (e) {
    var parts = Array.prototype.map.call(e.querySelectorAll(".srch"), function (x) {
      return x.textContent;
    });
    return parts.join("\\n").toLowerCase();
  });
  var buttons = Array.prototype.slice.call(document.querySelectorAll("button[data-cat]"));
  var box = document.getElementById("q");
  var state = { cat: "all", q: "" };
  function apply() {
    var words = state.q.toLowerCase().split(/\\s+/).filter(Boolean);
    var counts = { all: 0 }, shown = 0;
    eps.forEach(function (e, i) {
      var cat = e.getAttribute("data-cat");
      var hit = words.every(function (w) { return hay[i].indexOf(w) >= 0; });
      if (hit) { counts[cat] = (counts[cat] || 0) + 1; counts.all += 1; }
      e.hidden = !(hit && (state.cat === "all" || state.cat === cat));
      if (!e.hidden) { shown += 1; }
    });
    buttons.forEach(function (b) {
      var cat = b.getAttribute("data-cat");
      b.querySelector(".n").textContent = String(counts[cat] || 0);
      b.setAttribute("aria-pressed", String(cat === state.cat));
    });
    document.getElementById("shown").textContent = String(shown);
    document.getElementById("none").hidden = shown > 0;
  }
  function save() {
    var hash = "#" + new URLSearchParams(state).toString();
    try { history.replaceState(null, "", hash); } catch (err) { /* file: URLs may refuse */ }
  }
  buttons.forEach(function (b) {
    b.addEventListener("click", function () {
      state.cat = b.getAttribute("data-cat"); apply(); save();
    });
  });
  box.addEventListener("input", function () { state.q = box.value; apply(); save(); });
  var params = new URLSearchParams(location.hash.slice(1));
  if (CATS.indexOf(params.get("cat")) >= 0) { state.cat = params.get("cat"); }
  state.q = box.value = params.get("q") || "";
  apply();
  document.body.setAttribute("data-ready", "1");
})();
"""
