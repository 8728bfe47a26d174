package statuspage

// pageTemplate is the whole page: "page" the document, "main" the part the
// script refreshes. Nothing is loaded from outside.
const pageTemplate = `{{define "page"}}<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>pulljobs status</title>
<noscript><meta http-equiv="refresh" content="{{seconds .RefreshMS}}"></noscript>
<style>
:root { --fg: #1d2330; --muted: #6b7385; --line: #e3e6ec; --bg: #f6f7f9; --ok: #1f8a4c; --warn: #b7791f; --bad: #c53030; --run: #2b6cb0; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; align-items: baseline; gap: 1rem; padding: .8rem 1.5rem; background: #fff; border-bottom: 1px solid var(--line); }
header h1 { font-size: 1.15rem; margin: 0; }
header .meta { color: var(--muted); font-size: .85rem; }
main { padding: 1rem 1.5rem 2rem; }
h2 { font-size: 1rem; margin: 1.5rem 0 .5rem; }
table { width: 100%; border-collapse: collapse; background: #fff; border: 1px solid var(--line); }
th, td { text-align: left; padding: .45rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: .75rem; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); background: #fafbfc; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
code, .mono { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
a { color: var(--run); text-decoration: none; } a:hover { text-decoration: underline; }
.badge { display: inline-block; padding: .05rem .45rem; border-radius: 999px; font-size: .75rem; font-weight: 600; color: #fff; background: var(--muted); }
.badge.success { background: var(--ok); } .badge.success_with_failures { background: var(--warn); }
.badge.fatal { background: var(--bad); } .badge.running { background: var(--run); }
.muted { color: var(--muted); } .bad { color: var(--bad); }
.bar { height: .45rem; width: 9rem; background: var(--line); border-radius: 999px; overflow: hidden; margin-top: .25rem; }
.bar > span { display: block; height: 100%; background: var(--run); }
.counters span { display: inline-block; margin-right: .6rem; }
.queue { display: block; font-size: .85em; }
details summary { cursor: pointer; color: var(--bad); }
details table { margin-top: .4rem; }
.error { padding: .6rem .9rem; background: #fff5f5; border: 1px solid #feb2b2; color: var(--bad); margin-bottom: 1rem; }
td.reason { overflow-wrap: anywhere; }
tr.letters td { border-top: 0; padding-top: 0; }
pre { background: #fff; border: 1px solid var(--line); padding: .8rem; overflow-x: auto; }
</style>
</head>
<body>
<header><h1>pulljobs</h1><span class="meta">runs of this fleet, newest first · <span id="state">live</span>, refreshed every {{duration (seconds .RefreshMS)}}</span></header>
<main id="main">{{template "main" .}}</main>
<script>
(function () {
  var every = {{.RefreshMS}};
  function refresh() {
    var url = location.pathname + location.search + (location.search ? "&" : "?") + "part=main";
    fetch(url, {cache: "no-store"}).then(function (r) {
      return r.text().then(function (html) { return {ok: r.ok, status: r.status, html: html}; });
    }).then(function (res) {
      var open = Array.prototype.map.call(document.querySelectorAll("details[open]"), function (d) { return d.id; });
      document.getElementById("main").innerHTML = res.html;
      open.forEach(function (id) { var d = document.getElementById(id); if (d) { d.open = true; } });
      document.getElementById("state").textContent = res.ok ? "live" : "NATS unreachable (" + res.status + ")";
    }).catch(function (e) {
      document.getElementById("state").textContent = "page server unreachable";
    }).then(function () { setTimeout(refresh, every); });
  }
  setTimeout(refresh, every);
})();
</script>
</body>
</html>{{end}}

{{define "main"}}{{if .Error}}<div class="error">{{.Error}}</div>{{end}}{{if .Run}}{{template "run" .}}{{else}}{{template "runs" .}}{{end}}{{end}}

{{define "runs"}}<table id="runs">
<thead><tr><th>Run</th><th>Profile</th><th>Trigger</th><th>Board</th><th>Status</th><th>Progress / counters</th><th>Duration</th><th>Sync</th><th>Dead<br>letters</th></tr></thead>
<tbody>
{{range .Runs}}<tr id="run-{{.RunID}}" data-status="{{.Status}}">
<td><a class="mono" href="?run={{.RunID}}">{{.RunID}}</a>{{if .DryRun}} <span class="muted">dry run</span>{{end}}{{if .ReplayOf}}<br><span class="muted">replay of {{.ReplayOf}}</span>{{end}}</td>
<td>{{or .Profile "—"}}</td>
<td>{{.Trigger}}</td>
<td class="mono" title="{{.BoardKey}}">{{short .BoardKey}}…</td>
<td><span class="badge {{.Status}}">{{.Status}}</span>{{if .Reason}}<br><span class="bad">{{.Reason}}</span>{{end}}{{if .Phase}}<br><span class="muted">{{.Phase}}</span>{{end}}</td>
<td class="counters">{{if .Events}}{{with .Events}}<span>{{.ReadSuccess}} read</span><span>{{.Created}} created</span><span>{{.Updated}} updated</span><span>{{.Unarchived}} unarchived</span><span>{{.Unchanged}} unchanged</span><span>{{.Skipped}} skipped</span><span>{{.LogicsDiscard}} discarded</span>{{end}}<span{{if .Failed}} class="bad"{{end}}>{{.Failed}} failed</span>{{if .Truncated}}<span class="bad">truncated by the API's cap</span>{{end}}
{{else if .Progress}}{{.Progress}}<div class="bar"><span style="width: {{.Progress.Percent}}%"></span></div>{{with .Queue}}<span class="queue" data-share="{{.Share}}" data-ahead="{{.Ahead}}">{{.}}</span>{{end}}{{if .LastSignOfLife}}<span class="muted">last sign of life {{ago $.Now (since .LastSignOfLife)}}</span>{{end}}{{end}}</td>
<td class="num">{{duration .DurationSeconds}}</td>
<td>{{or .SyncOutcome "—"}}</td>
<td class="num">{{if .DeadLetterCount}}<span class="bad">{{.DeadLetterCount}}</span>{{else}}<span class="muted">0</span>{{end}}</td>
</tr>
{{if .Letters}}<tr class="letters"><td></td><td colspan="8"><details id="dl-{{.RunID}}"><summary>{{.DeadLetterCount}} dead letter{{if gt .DeadLetterCount 1}}s{{end}}</summary><table><thead><tr><th>Offer</th><th>Stage</th><th>Reason</th></tr></thead><tbody>
{{range .Letters}}<tr><td class="mono">{{.Offer}}</td><td>{{.Stage}}</td><td class="reason">{{.Reason}}</td></tr>
{{end}}</tbody></table>{{if gt .DeadLetterCount (len .Letters)}}<a href="?run={{.RunID}}">all {{.DeadLetterCount}}…</a>{{end}}</details></td></tr>{{end}}
{{else}}<tr><td colspan="9" class="muted">No run yet. Start one: <code>nats req pulljobs.run.PROFILE '{}'</code></td></tr>
{{end}}</tbody></table>
<h2>Boards</h2>
{{if .Boards}}<table id="boards"><thead><tr><th>Board</th><th>Last run</th><th>Last successful sync</th><th>Live jobs</th><th>Running</th><th>Next run</th></tr></thead><tbody>
{{range .Boards}}<tr id="board-{{.BoardKey}}" data-stale="{{stale $.Now .}}">
<td class="mono" title="{{.BoardKey}}">{{short .BoardKey}}…</td>
<td>{{if .LastRun}}<a class="mono" href="?run={{.LastRun}}">{{.LastRun}}</a><br><span class="badge {{.LastStatus}}">{{.LastStatus}}</span>{{else}}—{{end}}</td>
<td>{{if .LastSyncAt}}{{ago $.Now (since .LastSyncAt)}}{{else}}never{{end}}{{if stale $.Now .}} <span class="bad">over 24 h: the licence asks for a daily refresh</span>{{end}}</td>
<td class="num">{{with .LiveJobs}}{{.}}{{else}}—{{end}}</td>
<td>{{if .Running}}<a class="mono" href="?run={{.Running}}">{{.Running}}</a>{{else}}—{{end}}</td>
<td>{{with .NextRunAt}}{{.Format "2006-01-02 15:04"}} UTC{{else}}—{{end}}{{if .NextProfile}}<br><span class="muted">{{.NextProfile}}</span>{{end}}</td>
</tr>
{{end}}</tbody></table>{{else}}<p class="muted">No board yet.</p>{{end}}
<h2>Refused triggers{{if .TriggerCount}} ({{.TriggerCount}}){{end}}</h2>
{{if .Triggers}}<table id="triggers"><thead><tr><th>When</th><th>Profile</th><th>Subject</th><th>Reason</th></tr></thead><tbody>
{{range .Triggers}}<tr><td class="num">{{ago $.Now .At}}</td><td>{{triggerProfile .Subject}}</td><td class="mono">{{.Subject}}</td><td class="reason">{{.Reason}}</td></tr>
{{end}}</tbody></table>{{else}}<p class="muted">None.</p>{{end}}
<p class="muted">Updated {{.Now.Format "2006-01-02 15:04:05"}} UTC.</p>{{end}}

{{define "run"}}{{with .Run}}<p><a href="?">← all runs</a></p>
<h2 class="mono">{{.RunID}} <span class="badge {{.Status}}">{{.Status}}</span></h2>
<table id="run"><tbody>
<tr><th>Profile</th><td>{{or .Profile "—"}}</td><th>Trigger</th><td>{{.Trigger}}</td></tr>
<tr><th>Board</th><td class="mono">{{.BoardKey}}</td><th>Started</th><td>{{.StartedAt.Format "2006-01-02 15:04:05"}} UTC</td></tr>
<tr><th>Duration</th><td>{{duration .DurationSeconds}}</td><th>Sync</th><td>{{or .SyncOutcome "—"}}</td></tr>
{{if .Progress}}<tr><th>Progress</th><td colspan="3">{{.Phase}}: {{.Progress}}<div class="bar"><span style="width: {{.Progress.Percent}}%"></span></div></td></tr>{{end}}
{{with .Queue}}<tr><th>Queue</th><td colspan="3" class="queue" data-share="{{.Share}}" data-ahead="{{.Ahead}}">{{.}}; {{.Waiting}} items of this run waiting, weight {{.Weight}}</td></tr>{{end}}
</tbody></table>
{{if .Report}}<h2>Report</h2><pre>{{report .Report}}</pre>
{{if .Report.Failures}}<h2>Failures (first {{len .Report.Failures}})</h2><table><thead><tr><th>Offer</th><th>Failure</th><th>Reason</th></tr></thead><tbody>
{{range .Report.Failures}}<tr><td class="mono">{{.Offer}}</td><td>{{.Failure}}</td><td class="reason">{{.Reason}}</td></tr>
{{end}}</tbody></table>{{end}}{{end}}
<h2>Dead letters ({{.DeadLetterCount}})</h2>
{{if .DeadLetters}}<table id="dead-letters"><thead><tr><th>Offer</th><th>Stage</th><th>Reason</th><th>At</th></tr></thead><tbody>
{{range .DeadLetters}}<tr><td class="mono">{{.Offer}}</td><td>{{.Stage}}</td><td class="reason">{{.Reason}}</td><td class="num">{{.At.Format "15:04:05"}}</td></tr>
{{end}}</tbody></table>{{else}}<p class="muted">None.</p>{{end}}{{end}}{{end}}
`
