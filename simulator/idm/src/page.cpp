// The operator page: one self-contained file. The operator token is typed in once and kept in
// sessionStorage (no cookies: a cross-site request carries no credential). The page polls the
// operator API every second for pending requests and the history of decisions.
#include "estlab/idm/service.hpp"

namespace estlab::idm {

const std::string& operator_page() {
  static const std::string page = R"html(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>estlab IDM - pending requests</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;width:100%;margin-bottom:1.5em}
th,td{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top;font-size:.9em}
th{background:#f2f2f2}
.error{color:#a00}
code{font-size:.85em}
input[type=text],input[type=password]{width:18em}
</style></head>
<body>
<h1>estlab identity manager</h1>
<p id="login">Operator token: <input id="token" type="password" autocomplete="off">
<button id="use-token">Use token</button> <span id="status"></span></p>
<p class="error" id="error"></p>
<h2>Pending requests</h2>
<table id="pending"><thead><tr><th>Request</th><th>Operation</th><th>Subject</th><th>SANs</th><th>Key</th>
<th>Requesting client</th><th>First seen</th><th>Last seen</th><th>Polls</th><th>Decision</th></tr></thead><tbody></tbody></table>
<p id="none" hidden>No pending request.</p>
<h2>History of decisions</h2>
<table id="history"><thead><tr><th>When</th><th>Request</th><th>Subject</th><th>Action</th><th>By</th><th>Reason</th></tr></thead>
<tbody></tbody></table>
<script>
"use strict";
let token = sessionStorage.getItem("idm-token") || "";
const $ = (id) => document.getElementById(id);
function cell(row, text) { const td = document.createElement("td"); td.textContent = text; row.appendChild(td); return td; }
async function api(method, path, body) {
  const headers = {"Authorization": "Bearer " + token};
  if (method === "POST") { headers["X-IDM-Request"] = "1"; headers["Content-Type"] = "application/json"; }
  const response = await fetch("/idm/api/" + path, {method, headers, body: body ? JSON.stringify(body) : undefined,
                                                     credentials: "omit", cache: "no-store"});
  const data = await response.json().catch(() => ({error: "not JSON"}));
  if (!response.ok) throw new Error(data.error || ("HTTP " + response.status));
  return data;
}
async function decide(id, action, reasonInput) {
  try {
    const body = action === "reject" ? {reason: reasonInput.value} : {};
    await api("POST", "requests/" + encodeURIComponent(id) + "/" + action, body);
    $("error").textContent = "";
    refresh();
  } catch (e) { $("error").textContent = action + ": " + e.message; }
}
// Rows are kept by request id and updated in place: a refresh never replaces the buttons or the
// reason field under the operator's hands.
function renderPending(requests) {
  const body = $("pending").tBodies[0];
  const wanted = new Set(requests.map((r) => r.id));
  for (const row of [...body.rows]) if (!wanted.has(row.dataset.id)) row.remove();
  for (const r of requests) {
    let row = [...body.rows].find((x) => x.dataset.id === r.id);
    if (!row) {
      row = document.createElement("tr");
      row.dataset.id = r.id;
      row.className = "request";
      const idCell = cell(row, "");
      const code = document.createElement("code"); code.textContent = r.id.slice(0, 16); code.title = r.id; idCell.appendChild(code);
      for (let i = 0; i < 8; ++i) cell(row, "");
      const actions = cell(row, "");
      const approve = document.createElement("button"); approve.textContent = "Approve"; approve.className = "approve";
      const reason = document.createElement("input"); reason.type = "text"; reason.placeholder = "reason for a rejection";
      reason.className = "reason";
      const reject = document.createElement("button"); reject.textContent = "Reject"; reject.className = "reject";
      approve.onclick = () => decide(r.id, "approve", reason);
      reject.onclick = () => decide(r.id, "reject", reason);
      actions.append(approve, " ", reason, " ", reject);
      body.appendChild(row);
    }
    const values = [r.operation, r.subject, (r.sans || []).join(", "), r.key || r.csr_error || "", r.client_subject || r.client,
                    r.first_seen, r.last_seen, String(r.polls)];
    values.forEach((v, i) => { if (row.cells[i + 1].textContent !== v) row.cells[i + 1].textContent = v; });
  }
  $("none").hidden = requests.length !== 0;
}
function renderHistory(history) {
  const body = $("history").tBodies[0];
  body.replaceChildren();
  for (const h of history) {
    const row = document.createElement("tr"); row.className = "decision";
    cell(row, h.at); cell(row, h.request.slice(0, 16)); cell(row, h.subject); cell(row, h.action); cell(row, h.by); cell(row, h.reason);
    body.appendChild(row);
  }
}
async function refresh() {
  if (!token) { $("status").textContent = "enter the operator token"; return; }
  try {
    const [pending, history] = await Promise.all([api("GET", "requests?state=pending"), api("GET", "history")]);
    renderPending(pending.requests); renderHistory(history.history);
    $("status").textContent = "updated " + new Date().toLocaleTimeString();
    if (!$("error").textContent.includes(":")) $("error").textContent = "";
  } catch (e) { $("status").textContent = ""; $("error").textContent = e.message; }
}
$("use-token").onclick = () => { token = $("token").value.trim(); sessionStorage.setItem("idm-token", token); $("error").textContent = ""; refresh(); };
setInterval(refresh, 1000);
refresh();
</script>
</body></html>
)html";
  return page;
}

}  // namespace estlab::idm
