// The teacher's page: the class live, lab progress per student and per
// check, actions for one or all, a read-only view of any terminal.
"use strict";

document.addEventListener("DOMContentLoaded", async () => {
  let lang = pageLanguage();
  let lab = null;
  let rows = [];
  let viewer = null;
  const words = {
    name: { en: "Student", ko: "학생" }, state: { en: "State", ko: "상태" }, uptime: { en: "Uptime", ko: "실행 시간" },
    memory: { en: "Memory", ko: "메모리" }, pids: { en: "PIDs", ko: "PID" }, disk: { en: "Disk", ko: "디스크" },
    activity: { en: "Last input", ko: "마지막 입력" }, progress: { en: "Progress", ko: "진행" }, actions: { en: "Actions", ko: "작업" },
    start: { en: "Start", ko: "시작" }, stop: { en: "Stop", ko: "중지" }, reset: { en: "Reset", ko: "초기화" },
    check: { en: "Check", ko: "검사" }, view: { en: "View", ko: "보기" }, running: { en: "running", ko: "실행 중" },
    stopped: { en: "stopped", ko: "중지됨" }, missing: { en: "missing", ko: "없음" },
    confirmReset: { en: "Reset drops the student's changes. Go on?", ko: "초기화하면 학생이 바꾼 내용이 사라집니다. 계속할까요?" },
  };
  const say = (key) => (words[key] ? words[key][lang] : key);
  const message = (text) => { document.getElementById("message").textContent = text; };

  const human = (bytes) => {
    if (bytes === null || bytes === undefined) return "–";
    const units = ["B", "KiB", "MiB", "GiB"];
    let value = bytes, unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
    return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
  };
  const duration = (seconds) => {
    if (seconds === null || seconds === undefined) return "–";
    if (seconds < 60) return `${seconds}s`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
    return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, "0")}`;
  };
  const ago = (at) => (at ? duration(Math.max(0, Math.floor(Date.now() / 1000) - at)) : "–");

  const cell = (row, text, attrs) => {
    const td = document.createElement("td");
    td.textContent = text;
    for (const [k, v] of Object.entries(attrs || {})) td.setAttribute(k, v);
    row.append(td);
    return td;
  };
  const button = (label, onClick) => {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.addEventListener("click", onClick);
    return b;
  };

  const renderHead = () => {
    const head = document.getElementById("head");
    head.replaceChildren();
    const columns = ["name", "state", "uptime", "memory", "pids", "disk", "activity", "progress"];
    for (const key of columns) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = say(key);
      head.append(th);
    }
    for (const check of lab ? lab.checks : []) {
      const th = document.createElement("th");
      th.scope = "col";
      th.className = "check";
      th.title = check.title[lang];
      th.textContent = check.id;
      head.append(th);
    }
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = say("actions");
    head.append(th);
  };

  const renderRows = () => {
    const body = document.getElementById("rows");
    body.replaceChildren();
    for (const r of rows) {
      const tr = document.createElement("tr");
      tr.dataset.student = r.name;
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = r.name;
      tr.append(th);
      cell(tr, say(r.state), { class: `state ${r.state}` });
      cell(tr, duration(r.uptime_seconds));
      cell(tr, human(r.memory_bytes));
      cell(tr, r.pids === null || r.pids === undefined ? "–" : String(r.pids));
      cell(tr, human(r.disk_bytes));
      cell(tr, ago(r.last_activity));
      const checks = lab ? lab.checks : [];
      const passed = checks.filter((c) => r.checks[c.id] === true).length;
      cell(tr, r.checked_at ? `${passed}/${checks.length}` : "–", { "data-progress": r.name });
      for (const check of checks) {
        const result = r.checks[check.id];
        const td = cell(tr, result === true ? "✓" : result === false ? "✗" : "·", {
          "data-student": r.name, "data-check": check.id, class: result === true ? "pass" : result === false ? "fail" : "unknown",
          title: check.title[lang],
        });
        td.setAttribute("aria-label", `${check.id}: ${result === true ? "passed" : result === false ? "not yet" : "not checked"}`);
      }
      const actions = cell(tr, "");
      actions.className = "actions";
      actions.append(
        button(say("start"), () => act("start", r.name)),
        button(say("stop"), () => act("stop", r.name)),
        button(say("reset"), () => { if (confirm(say("confirmReset"))) act("reset", r.name); }),
        button(say("check"), () => checkOne(r.name)),
      );
      for (const shell of r.shells || []) {
        actions.append(button(`${say("view")} ${shell + 1}`, () => view(r.name, shell)));
      }
      body.append(tr);
    }
  };

  const refresh = async () => {
    try {
      rows = await api("/api/class");
      renderRows();
    } catch (error) {
      message(error.message);
    }
  };

  const act = async (action, student) => {
    message(`${say(action)} ${student || ""}…`);
    try {
      const result = await api("/api/act", student ? { action, student } : { action });
      message(result.done || "");
    } catch (error) {
      message(error.message);
    }
    refresh();
  };

  const checkOne = async (student) => {
    message(`${say("check")} ${student}…`);
    try {
      const report = await api("/api/check", { student });
      message(`${student}: ${report.checks.filter((c) => c.passed).length}/${report.checks.length}`);
    } catch (error) {
      message(`${student}: ${error.message}`);
    }
    refresh();
  };

  const view = (student, shell) => {
    if (viewer) viewer.close();
    const pane = document.getElementById("viewer");
    pane.hidden = false;
    document.getElementById("viewer-title").textContent = `${student} · ${shell + 1} (read-only)`;
    viewer = openTerminal(document.getElementById("viewer-terminal"), `?student=${encodeURIComponent(student)}&shell=${shell}`, { readonly: true });
  };

  document.getElementById("viewer-close").addEventListener("click", () => {
    if (viewer) viewer.close();
    viewer = null;
    document.getElementById("viewer").hidden = true;
  });
  for (const b of document.querySelectorAll("[data-all]")) {
    b.addEventListener("click", () => {
      if (b.dataset.all === "reset" && !confirm(say("confirmReset"))) return;
      act(b.dataset.all, null);
    });
  }
  document.getElementById("check-all").addEventListener("click", async () => {
    for (const r of rows) await checkOne(r.name);
  });
  document.getElementById("lang").addEventListener("click", () => {
    lang = lang === "en" ? "ko" : "en";
    localStorage.setItem("lang", lang);
    render();
  });
  document.getElementById("logout").addEventListener("click", async () => {
    await api("/api/logout", {}).catch(() => {});
    location.href = "/";
  });

  const render = () => {
    translatePage(lang);
    document.getElementById("lang").textContent = lang === "en" ? "한국어" : "English";
    document.getElementById("lab-title").textContent = lab ? `${lab.id} · ${lab.title[lang]}` : "";
    renderHead();
    renderRows();
  };

  try {
    lab = (await api("/api/me")).lab;
  } catch (_) {
    location.href = "/";
    return;
  }
  render();
  await refresh();
  setInterval(refresh, 3000);
});
