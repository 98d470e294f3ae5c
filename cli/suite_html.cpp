// kcr suite's HTML report: one self-contained page (no network fetches). The matrix is plain
// HTML; the chart (dump time, restore time and image size per scenario) is drawn by the
// page's own script from the report's JSON embedded in it.

#include <fmt/core.h>

#include "cli/suite_report.hpp"

namespace kcr::cli {

namespace {

std::string escape(const std::string& s) {
  return html_escape(s);
}

// JSON inside <script>: '<' only occurs inside strings there, where \u003c means the same.
std::string script_safe_json(const nlohmann::json& j) {
  std::string s = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out;
  for (char ch : s) {
    if (ch == '<')
      out += "\\u003c";
    else
      out += ch;
  }
  return out;
}

const char* const k_style = R"(
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:20px;margin:0 0 4px}
.meta{color:#555;margin-bottom:12px}
table{border-collapse:collapse;margin:12px 0}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
td.pass{background:#e3f6e3}td.fail{background:#f9d6d5;font-weight:bold}
td.xfail{background:#fff3cd}td.xpass{background:#ffd8a8;font-weight:bold}td.na{color:#888}
.legend span{display:inline-block;margin-right:14px}
.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}
pre{white-space:pre-wrap;background:#f6f6f6;padding:6px;max-height:12em;overflow:auto}
)";

// Draws #chart from #kcr-data: per scenario one <g class="scenario-group"> with a dump bar,
// a restore bar (seconds, left axis) and an image-size bar (right axis).
const char* const k_script = R"(
(function () {
  var data = JSON.parse(document.getElementById('kcr-data').textContent);
  var NS = 'http://www.w3.org/2000/svg';
  function el(name, attrs, text) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  var names = [], pick = {};
  data.cases.forEach(function (c) {
    if (names.indexOf(c.scenario) < 0) names.push(c.scenario);
    var p = pick[c.scenario];
    var useful = c.rounds > 0 && c.mode !== 'restart';
    if (useful && (!p || (c.mode === 'cycle' && p.mode !== 'cycle'))) pick[c.scenario] = c;
  });
  var maxS = 0.001, maxB = 1;
  names.forEach(function (n) {
    var c = pick[n];
    if (!c) return;
    maxS = Math.max(maxS, c.dump_seconds, c.restore_seconds);
    maxB = Math.max(maxB, c.image_bytes);
  });
  var groupW = 54, left = 50, top = 20, h = 220, bottom = 120;
  var width = left + names.length * groupW + 60, height = top + h + bottom;
  var svg = el('svg', {width: width, height: height, viewBox: '0 0 ' + width + ' ' + height,
                       role: 'img', 'aria-label': 'dump, restore and image size per scenario'});
  svg.appendChild(el('line', {x1: left, y1: top, x2: left, y2: top + h, stroke: '#888'}));
  svg.appendChild(el('line', {x1: left, y1: top + h, x2: width - 50, y2: top + h, stroke: '#888'}));
  svg.appendChild(el('text', {x: 4, y: top - 6, 'font-size': 11}, maxS.toFixed(1) + ' s'));
  svg.appendChild(el('text', {x: width - 48, y: top - 6, 'font-size': 11},
                      (maxB / 1048576).toFixed(1) + ' MiB'));
  names.forEach(function (n, i) {
    var c = pick[n];
    var g = el('g', {'class': 'scenario-group', 'data-scenario': n,
                     transform: 'translate(' + (left + 6 + i * groupW) + ',0)'});
    var bars = c ? [[c.dump_seconds / maxS, '#4c78a8', 'dump ' + c.dump_seconds.toFixed(2) + ' s'],
                    [c.restore_seconds / maxS, '#f58518', 'restore ' + c.restore_seconds.toFixed(2) + ' s'],
                    [c.image_bytes / maxB, '#54a24b', 'image ' + (c.image_bytes / 1024).toFixed(0) + ' KiB']]
                 : [];
    bars.forEach(function (b, k) {
      var bh = Math.max(1, b[0] * h);
      var r = el('rect', {'class': 'bar', x: k * 14, y: top + h - bh, width: 12, height: bh, fill: b[1]});
      r.appendChild(el('title', {}, n + ': ' + b[2]));
      g.appendChild(r);
    });
    if (!c) g.appendChild(el('text', {x: 0, y: top + h - 4, 'font-size': 10, fill: '#888'}, 'no data'));
    g.appendChild(el('text', {x: 20, y: top + h + 10, 'font-size': 11,
                              transform: 'rotate(60 20 ' + (top + h + 10) + ')'}, n));
    svg.appendChild(g);
  });
  document.getElementById('chart').appendChild(svg);
})();
)";

}  // namespace

std::string suite_html(const engine::SuiteResult& r, unsigned modes) {
  auto j = suite_to_json(r);
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n";
  out += "<title>kcr suite: " + escape(r.image) + "</title>\n<style>" + std::string(k_style) +
         "</style></head><body>\n";
  out += "<h1>kcr suite</h1>\n";
  out += fmt::format(
      "<div class=\"meta\">Image <b>{}</b>: kernel {}, CRIU {}. Started {}, {:.0f} s, {} jobs, "
      "cycles per cycle case: {}.<br><b id=\"summary\">{}</b></div>\n",
      escape(r.image), escape(r.kernel), escape(r.criu), escape(r.started), r.seconds, r.jobs,
      r.count, escape(suite_summary(r)));
  // The matrix, from the Markdown's cells.
  auto cols = mode_columns(r, modes);
  out += "<table id=\"matrix\"><tr><th>scenario</th>";
  for (const auto& c : cols) out += "<th>" + escape(c) + "</th>";
  out += "</tr>\n";
  auto names = scenario_order(r);
  for (const auto& n : names) {
    out += "<tr><th>" + escape(n) + "</th>";
    for (const auto& m : cols) {
      const auto* k = find_case(r, n, m);
      if (!k) {
        out += "<td class=\"na\">-</td>";
        continue;
      }
      std::string word(engine::outcome_word(k->outcome));
      std::string cls = k->outcome == engine::Outcome::unsupported ? "na" : word;
      std::string title = k->outcome == engine::Outcome::xfail ? k->xfail : k->detail;
      out += "<td class=\"" + cls + "\" title=\"" + escape(title) + "\">" + escape(word);
      if (k->rounds && k->mode != "restart") {
        out += fmt::format("<br><small>{:.2f} / {:.2f} s, {} KiB</small>", k->dump_s, k->restore_s,
                           k->image_bytes / 1024);
      }
      out += "</td>";
    }
    out += "</tr>\n";
  }
  out += "</table>\n";
  out +=
      "<div class=\"legend\"><span><i style=\"background:#4c78a8\"></i>CRIU dump (s)</span>"
      "<span><i style=\"background:#f58518\"></i>kcr restore (s)</span>"
      "<span><i style=\"background:#54a24b\"></i>image size (right axis)</span></div>\n"
      "<div id=\"chart\"></div>\n"
      "<noscript>The chart needs JavaScript; the table above has the same numbers.</noscript>\n";
  std::string notes;
  for (const auto& c : r.cases) {
    if (c.outcome == engine::Outcome::pass || c.outcome == engine::Outcome::unsupported) continue;
    notes += "<h3>" + escape(std::string(engine::outcome_word(c.outcome))) + " " +
             escape(c.scenario) + "/" + escape(c.mode) + "</h3>";
    if (!c.xfail.empty()) notes += "<p>expected failure: " + escape(c.xfail) + "</p>";
    if (!c.detail.empty()) notes += "<pre>" + escape(c.detail) + "</pre>\n";
  }
  if (!notes.empty()) out += "<h2>Not passing</h2>\n" + notes;
  out += "<script type=\"application/json\" id=\"kcr-data\">" + script_safe_json(j) +
         "</script>\n<script>" + std::string(k_script) + "</script>\n</body></html>\n";
  return out;
}

}  // namespace kcr::cli
