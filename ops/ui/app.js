// authgate operator page. Plain JS, no framework, no external asset. Everything shown comes
// from the ops API with the bearer token kept in sessionStorage (this tab only). All text is
// inserted with textContent, never as HTML.
"use strict";

(function () {
  const TOKEN_KEY = "authgate-ops-token";
  const $ = (id) => document.getElementById(id);

  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  }

  function setStatus(text, kind) {
    const el = $("status");
    el.textContent = text;
    el.className = "status" + (text ? " " + (kind || "info") : "");
  }

  // api calls the ops API with the bearer token. It resolves to {status, body}; a 401 is
  // reported in the status line.
  async function api(method, path, body) {
    const headers = { "Authorization": "Bearer " + token(), "Accept": "application/json" };
    const init = { method, headers, cache: "no-store", credentials: "omit", redirect: "error" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    let data = null;
    if (res.status !== 204) {
      try { data = await res.json(); } catch (e) { data = null; }
    }
    if (res.status === 401) {
      throw new Error("The token was refused. Paste the ops token (admin.token) above.");
    }
    return { status: res.status, body: data };
  }

  function failure(what, r) {
    const msg = r.body && r.body.message ? r.body.message : "HTTP " + r.status;
    return new Error(what + ": " + msg);
  }

  function fmtTime(s) {
    if (!s || s.startsWith("0001-")) return "";
    const d = new Date(s);
    return isNaN(d) ? s : d.toLocaleString();
  }

  function cell(tr, text, cls) {
    const td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    if (cls) td.className = cls;
    if (cls === "ua") td.title = td.textContent;
    tr.appendChild(td);
    return td;
  }

  function button(label, id, cls, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.id = id;
    b.className = "small " + (cls || "");
    b.textContent = label;
    b.addEventListener("click", () => { b.disabled = true; onClick().finally(() => { b.disabled = false; }); });
    return b;
  }

  function emptyRow(tbody, cols, text) {
    const tr = document.createElement("tr");
    tr.className = "empty";
    const td = cell(tr, text);
    td.colSpan = cols;
    tbody.appendChild(tr);
  }

  function renderSessions(list) {
    const tbody = $("sessions").tBodies[0];
    tbody.replaceChildren();
    $("sessions-count").textContent = "(" + list.length + ")";
    if (list.length === 0) { emptyRow(tbody, 9, "No live session found."); return; }
    for (const s of list) {
      const tr = document.createElement("tr");
      tr.id = "session-" + s.handle;
      cell(tr, s.handle, "mono");
      const who = cell(tr, s.email || s.user_id);
      const sub = document.createElement("div");
      sub.className = "sub mono";
      sub.textContent = s.user_id;
      who.appendChild(sub);
      cell(tr, (s.roles || []).join(", "));
      cell(tr, fmtTime(s.created_at), "time");
      cell(tr, fmtTime(s.last_seen_at), "time");
      cell(tr, fmtTime(s.expires_at), "time");
      cell(tr, s.ip, "mono");
      cell(tr, s.user_agent, "ua");
      const actions = cell(tr, "", "actions");
      actions.appendChild(button("Revoke", "revoke-" + s.handle, "danger", () => revokeSession(s)));
      tbody.appendChild(tr);
    }
  }

  function renderUsers(list) {
    const tbody = $("users").tBodies[0];
    tbody.replaceChildren();
    $("users-count").textContent = "(" + list.length + ")";
    if (list.length === 0) { emptyRow(tbody, 7, "No user found."); return; }
    for (const u of list) {
      const tr = document.createElement("tr");
      tr.id = "user-" + u.id;
      cell(tr, u.email);
      cell(tr, u.name);
      cell(tr, u.id, "mono");
      cell(tr, [...(u.roles || []), ...(u.granted_roles || [])].join(", "));
      cell(tr, fmtTime(u.last_login_at), "time");
      const st = cell(tr, "");
      const badge = document.createElement("span");
      badge.className = "badge " + (u.disabled ? "off" : "on");
      badge.textContent = u.disabled ? "disabled" : "active";
      st.appendChild(badge);
      const actions = cell(tr, "", "actions");
      actions.appendChild(button("Sessions", "sessions-" + u.id, "secondary", () => showUser(u.id)));
      actions.appendChild(button("Revoke all", "revoke-all-" + u.id, "secondary", () => revokeAll(u)));
      if (u.disabled) {
        actions.appendChild(button("Enable", "enable-" + u.id, "", () => setDisabled(u, false)));
      } else {
        actions.appendChild(button("Disable", "disable-" + u.id, "danger", () => setDisabled(u, true)));
      }
      tbody.appendChild(tr);
    }
  }

  // search runs the query of the search box: an email, a user id, or nothing (recent ones).
  async function search() {
    if (!token()) { setStatus("Enter the ops token first.", "error"); return; }
    const q = $("search").value.trim();
    const enc = encodeURIComponent(q);
    let sp, up;
    if (q === "") { sp = "/api/sessions?limit=100"; up = "/api/users?limit=100"; }
    else if (q.includes("@")) { sp = "/api/sessions?email=" + enc; up = "/api/users?email=" + enc; }
    else { sp = "/api/sessions?user_id=" + enc; up = "/api/users/" + enc; }
    setStatus("Searching…", "info");
    try {
      const [s, u] = await Promise.all([api("GET", sp), api("GET", up)]);
      if (s.status !== 200) throw failure("Sessions", s);
      let userList;
      if (u.status === 200) userList = u.body.users || [u.body];
      else if (u.status === 404) userList = [];
      else throw failure("Users", u);
      renderSessions(s.body.sessions || []);
      renderUsers(userList);
      setStatus("Found " + s.body.sessions.length + " session(s) and " + userList.length + " user(s).", "ok");
    } catch (e) {
      setStatus(e.message, "error");
    }
  }

  async function showUser(id) {
    $("search").value = id;
    await search();
  }

  async function revokeSession(s) {
    try {
      const r = await api("DELETE", "/api/sessions/" + encodeURIComponent(s.handle));
      if (r.status !== 204 && r.status !== 404) throw failure("Revoke", r);
      const row = $("session-" + s.handle);
      if (row) row.remove();
      $("sessions-count").textContent = "(" + $("sessions").tBodies[0].rows.length + ")";
      setStatus(r.status === 204 ? "Session " + s.handle + " of " + (s.email || s.user_id) + " revoked."
        : "Session " + s.handle + " had already ended.", "ok");
    } catch (e) {
      setStatus(e.message, "error");
    }
  }

  async function revokeAll(u) {
    try {
      const r = await api("DELETE", "/api/users/" + encodeURIComponent(u.id) + "/sessions");
      if (r.status !== 200) throw failure("Revoke all", r);
      await search();
      setStatus("Revoked " + r.body.revoked + " session(s) of " + (u.email || u.id) + ".", "ok");
    } catch (e) {
      setStatus(e.message, "error");
    }
  }

  async function setDisabled(u, disabled) {
    if (disabled && !window.confirm("Disable " + (u.email || u.id) + "? Their sessions end now and they cannot log in.")) return;
    try {
      const r = await api("PATCH", "/api/users/" + encodeURIComponent(u.id), { disabled });
      if (r.status !== 200) throw failure(disabled ? "Disable" : "Enable", r);
      await search();
      setStatus(disabled ? "Disabled " + (u.email || u.id) + "; " + r.body.revoked + " session(s) ended."
        : "Enabled " + (u.email || u.id) + ".", "ok");
    } catch (e) {
      setStatus(e.message, "error");
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("token").value = token();
    $("token-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const t = $("token").value.trim();
      if (!t) { setStatus("The token is empty.", "error"); return; }
      sessionStorage.setItem(TOKEN_KEY, t);
      search();
    });
    $("forget-token").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      $("token").value = "";
      setStatus("Token forgotten.", "info");
    });
    $("search-form").addEventListener("submit", (ev) => { ev.preventDefault(); search(); });
    if (token()) search();
  });
})();
