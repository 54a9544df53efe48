// A terminal on the server's /ws, in ttyd's protocol (subprotocol "tty"):
// the hello {"columns", "rows"} first (the session cookie is the credential),
// then '0'+input and '1'+{"columns","rows"} up; '0'+output, '1'+title and
// '2'+preferences down. Output is written to xterm.js with flow control
// ('2' pause, '3' resume), and a lost connection comes back by itself: the
// shell lives on the server, and its scrollback is replayed on return.
"use strict";

const HIGH_WATER = 512 * 1024;
const LOW_WATER = 64 * 1024;

function openTerminal(container, query, options) {
  const opts = Object.assign({ readonly: false, onStatus: () => {} }, options);
  const term = new Terminal({
    cursorBlink: !opts.readonly,
    disableStdin: opts.readonly,
    scrollback: 5000,
    fontFamily: "ui-monospace, 'DejaVu Sans Mono', 'Noto Sans Mono CJK KR', monospace",
    fontSize: 15,
  });
  const fit = new FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(container);
  fit.fit();
  const encoder = new TextEncoder();
  let socket = null;
  let closedForGood = false;
  let retry = 500;
  let pending = 0;
  let paused = false;

  const send = (command, payload) => {
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    const body = encoder.encode(payload);
    const frame = new Uint8Array(body.length + 1);
    frame[0] = command.charCodeAt(0);
    frame.set(body, 1);
    socket.send(frame);
  };

  const connect = () => {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(`${scheme}//${location.host}/ws${query}`, ["tty"]);
    socket.binaryType = "arraybuffer";
    socket.onopen = () => {
      retry = 500;
      term.reset();
      socket.send(encoder.encode(JSON.stringify({ AuthToken: "", columns: term.cols, rows: term.rows })));
      opts.onStatus("connected", "");
    };
    socket.onmessage = (event) => {
      const bytes = new Uint8Array(event.data);
      if (bytes.length === 0) return;
      const command = String.fromCharCode(bytes[0]);
      const payload = bytes.subarray(1);
      if (command === "0") {
        pending += payload.length;
        term.write(payload, () => {
          pending -= payload.length;
          if (paused && pending < LOW_WATER) { paused = false; send("3", ""); }
        });
        if (!paused && pending > HIGH_WATER) { paused = true; send("2", ""); }
      } else if (command === "1") {
        opts.onStatus("title", new TextDecoder().decode(payload));
      }
    };
    socket.onclose = (event) => {
      pending = 0;
      paused = false;
      if (event.code === 1008) {
        closedForGood = true;
        opts.onStatus("refused", event.reason);
        return;
      }
      if (closedForGood) return;
      opts.onStatus("reconnecting", event.reason);
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 10000);
    };
  };

  term.onData((data) => { if (!opts.readonly) send("0", data); });
  term.onResize(({ cols, rows }) => { if (!opts.readonly) send("1", JSON.stringify({ columns: cols, rows: rows })); });
  const onWindowResize = () => fit.fit();
  window.addEventListener("resize", onWindowResize);
  connect();
  return {
    term,
    fit: () => fit.fit(),
    close: () => {
      closedForGood = true;
      window.removeEventListener("resize", onWindowResize);
      if (socket) socket.close();
      term.dispose();
    },
  };
}

// The page's language: ?lang=, then the last choice, then the browser's.
function pageLanguage() {
  const asked = new URLSearchParams(location.search).get("lang");
  if (asked === "en" || asked === "ko") { localStorage.setItem("lang", asked); return asked; }
  const saved = localStorage.getItem("lang");
  if (saved === "en" || saved === "ko") return saved;
  return (navigator.language || "").startsWith("ko") ? "ko" : "en";
}

function translatePage(lang) {
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll("[data-en]")) el.textContent = el.dataset[lang];
}

// A lab's README (Markdown) as plain elements: headings, paragraphs, lists,
// code blocks and `code`. Text only ever goes in through textContent.
function renderMarkdown(target, text) {
  target.replaceChildren();
  const inline = (parent, line) => {
    line.split(/(`[^`]+`)/).forEach((part) => {
      if (part.startsWith("`") && part.endsWith("`") && part.length > 1) {
        const code = document.createElement("code");
        code.textContent = part.slice(1, -1);
        parent.append(code);
      } else if (part) {
        parent.append(document.createTextNode(part.replace(/\*\*/g, "")));
      }
    });
  };
  const lines = text.split("\n");
  let list = null;
  let paragraph = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.startsWith("```")) {
      const pre = document.createElement("pre");
      const body = [];
      for (i++; i < lines.length && !lines[i].startsWith("```"); i++) body.push(lines[i]);
      pre.textContent = body.join("\n");
      target.append(pre);
      list = paragraph = null;
    } else if (/^#{1,6} /.test(line)) {
      const level = Math.min(6, line.indexOf(" ") + 2);
      const heading = document.createElement(`h${level}`);
      inline(heading, line.replace(/^#+ /, ""));
      target.append(heading);
      list = paragraph = null;
    } else if (/^\s*([-*]|\d+\.) /.test(line)) {
      if (!list) { list = document.createElement(/^\s*\d/.test(line) ? "ol" : "ul"); target.append(list); }
      const item = document.createElement("li");
      inline(item, line.replace(/^\s*([-*]|\d+\.) /, ""));
      list.append(item);
      paragraph = null;
    } else if (line.trim() === "") {
      list = paragraph = null;
    } else {
      if (!paragraph) { paragraph = document.createElement("p"); target.append(paragraph); } else paragraph.append(" ");
      inline(paragraph, line);
      list = null;
    }
  }
}

async function api(path, body) {
  const init = body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const response = await fetch(path, init);
  const text = await response.text();
  let value = null;
  try { value = text ? JSON.parse(text) : null; } catch (_) { value = { error: text }; }
  if (!response.ok) throw new Error((value && value.error) || response.statusText);
  return value;
}
