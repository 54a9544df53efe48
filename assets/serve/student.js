// The student's page: their own terminal, the lab's instructions beside it,
// and "check my work".
"use strict";

document.addEventListener("DOMContentLoaded", async () => {
  let lang = pageLanguage();
  let lab = null;
  let lastReport = null;
  const shell = Number(new URLSearchParams(location.search).get("shell") || 0);

  const statusText = {
    connected: { en: "", ko: "" },
    reconnecting: { en: "Connection lost: reconnecting (your shell keeps running)…", ko: "연결이 끊겼습니다. 다시 연결하는 중입니다(셸은 계속 실행 중)…" },
    refused: { en: "Not logged in: open your link again.", ko: "로그인되지 않았습니다. 링크를 다시 여세요." },
  };
  const terminal = openTerminal(document.getElementById("terminal"), `?shell=${shell}`, {
    onStatus: (kind, detail) => {
      if (kind === "title") return;
      document.getElementById("terminal-pane").dataset.state = kind;
      const text = statusText[kind] ? statusText[kind][lang] : "";
      document.getElementById("status").textContent = detail && kind !== "connected" ? `${text} (${detail})` : text;
    },
  });
  window.sandboxTerminal = terminal;

  const shells = document.getElementById("shells");
  for (let n = 0; n < 4; n++) {
    const link = document.createElement("a");
    link.href = `/?shell=${n}`;
    link.target = n === shell ? "_self" : "_blank";
    link.textContent = `${n + 1}`;
    link.setAttribute("aria-label", `Terminal ${n + 1}`);
    if (n === shell) link.setAttribute("aria-current", "page");
    shells.append(link);
  }

  const renderChecks = () => {
    const list = document.getElementById("checks");
    list.replaceChildren();
    if (!lab) return;
    for (const check of lab.checks) {
      const item = document.createElement("li");
      const result = lastReport && lastReport.checks.find((c) => c.id === check.id);
      item.className = result ? (result.passed ? "pass" : "fail") : "unknown";
      item.dataset.check = check.id;
      const mark = document.createElement("span");
      mark.className = "mark";
      mark.textContent = result ? (result.passed ? "✓" : "✗") : "·";
      mark.setAttribute("aria-label", result ? (result.passed ? "passed" : "not yet") : "not checked");
      item.append(mark, " ", check.title[lang]);
      if (result && !result.passed) {
        const hint = document.createElement("p");
        hint.className = "hint";
        hint.textContent = check.hint[lang];
        item.append(hint);
      }
      list.append(item);
    }
  };

  const render = () => {
    translatePage(lang);
    document.getElementById("lang").textContent = lang === "en" ? "한국어" : "English";
    if (lab) {
      document.getElementById("title").textContent = lab.title[lang];
      document.title = `${lab.title[lang]} · sandbox`;
      document.getElementById("goal").textContent = lab.goal[lang];
      renderMarkdown(document.getElementById("readme"), lab.readme[lang]);
    } else {
      document.getElementById("instructions").hidden = true;
    }
    renderChecks();
    terminal.fit();
  };

  document.getElementById("lang").addEventListener("click", () => {
    lang = lang === "en" ? "ko" : "en";
    localStorage.setItem("lang", lang);
    render();
  });
  document.getElementById("logout").addEventListener("click", async () => {
    await api("/api/logout", {}).catch(() => {});
    location.href = "/";
  });
  document.getElementById("check").addEventListener("click", async (event) => {
    const button = event.target;
    const status = document.getElementById("check-status");
    button.disabled = true;
    status.textContent = lang === "en" ? "Checking…" : "검사하는 중…";
    try {
      lastReport = await api("/api/check", {});
      const passed = lastReport.checks.filter((c) => c.passed).length;
      status.textContent = lang === "en" ? `${passed} of ${lastReport.checks.length} passed` : `${lastReport.checks.length}개 중 ${passed}개 통과`;
      renderChecks();
    } catch (error) {
      status.textContent = error.message;
    } finally {
      button.disabled = false;
    }
  });

  try {
    const me = await api("/api/me");
    lab = me.lab;
  } catch (_) {
    location.href = "/";
    return;
  }
  render();
});
