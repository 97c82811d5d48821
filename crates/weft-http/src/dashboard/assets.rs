//! The dashboard's stylesheet and its one small script, served as files
//! (`/admin/ui/assets/…`) so that the pages' Content-Security-Policy can
//! forbid inline code. No build chain: this is all of it.

/// `/admin/ui/assets/app.css`.
pub const CSS: &str = r#"
:root { --fg: #1d2330; --muted: #5b6475; --line: #d8dce4; --accent: #2b5fd9; --bad: #b3261e; --ok: #1e7d3b; --bg: #f7f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; align-items: center; gap: 1.2em; padding: .6em 1.2em; background: #fff; border-bottom: 1px solid var(--line); flex-wrap: wrap; }
header .brand { font-weight: 700; }
header nav a { margin-right: .9em; color: var(--accent); text-decoration: none; }
header nav a.current { color: var(--fg); font-weight: 600; }
header form { margin-left: auto; }
main { padding: 1em 1.2em 3em; max-width: 1200px; }
h1 { font-size: 1.35em; margin: .3em 0 .8em; }
h2 { font-size: 1.1em; margin: 1.4em 0 .5em; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); margin-bottom: 1em; }
th, td { text-align: left; padding: .35em .6em; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #eef0f4; font-weight: 600; font-size: .9em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .id { font: 12.5px ui-monospace, monospace; word-break: break-all; }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: .7em; margin-bottom: 1em; }
.tile { background: #fff; border: 1px solid var(--line); padding: .6em .8em; }
.tile .label { color: var(--muted); font-size: .85em; }
.tile .value { font-size: 1.4em; font-weight: 600; }
.flash { padding: .5em .8em; margin-bottom: 1em; border: 1px solid; background: #fff; }
.flash.done { border-color: var(--ok); color: var(--ok); }
.flash.error { border-color: var(--bad); color: var(--bad); }
.bad { color: var(--bad); } .ok { color: var(--ok); } .muted { color: var(--muted); }
button { font: inherit; padding: .2em .7em; border: 1px solid var(--accent); background: #fff; color: var(--accent); cursor: pointer; }
button.danger { border-color: var(--bad); color: var(--bad); }
form.inline { display: inline; }
figure.chart { background: #fff; border: 1px solid var(--line); margin: 0 0 1em; padding: .6em; display: inline-block; }
figure.chart svg { display: block; margin-top: .4em; max-width: 100%; height: auto; }
figure.chart .frame { fill: #fbfcfe; stroke: var(--line); }
figure.chart .line { fill: none; stroke: var(--accent); stroke-width: 2; }
figure.chart .empty { fill: var(--muted); font-size: 13px; }
.login { max-width: 420px; margin: 4em auto; background: #fff; border: 1px solid var(--line); padding: 1.2em 1.4em; }
.login input { width: 100%; padding: .4em; font: inherit; margin: .4em 0 .8em; }
fieldset { border: 1px solid var(--line); background: #fff; margin-bottom: 1em; }
fieldset label { margin-right: 1em; }
progress { width: 12em; }
"#;

/// `/admin/ui/assets/app.js`: confirmations, the module upload, and the
/// refresh of pages that show live numbers.
pub const JS: &str = r#"
"use strict";
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.dataset.confirm;
  if (question && !window.confirm(question)) { event.preventDefault(); }
});
const define = document.getElementById("define");
if (define) {
  define.addEventListener("submit", async (event) => {
    event.preventDefault();
    const out = document.getElementById("define-result");
    const file = define.querySelector("input[type=file]").files[0];
    if (!file) { out.textContent = "choose a .wasm file"; return; }
    const params = new URLSearchParams({
      kind: define.kind.value, name: define.name.value,
      replace: define.replace.checked ? "1" : "", force: define.force.checked ? "1" : "",
    });
    out.textContent = "uploading " + file.name + " …";
    const reply = await fetch("/admin/ui/modules/define?" + params, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/wasm" }, body: await file.arrayBuffer(),
    });
    const answer = await reply.json().catch(() => ({ message: reply.statusText }));
    if (reply.ok) {
      window.location = "/admin/ui/modules?done=" + encodeURIComponent(answer.message);
    } else {
      out.textContent = answer.message;
      out.className = "flash error";
    }
  });
}
const refresh = Number(document.body.dataset.refresh || 0);
if (refresh > 0) { window.setTimeout(() => window.location.reload(), refresh * 1000); }
"#;
