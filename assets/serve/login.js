// The login form: a pasted link becomes its token.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  if ((navigator.language || "").startsWith("ko")) {
    document.documentElement.lang = "ko";
    for (const el of document.querySelectorAll("[data-ko]")) el.textContent = el.dataset.ko;
  }
  const form = document.getElementById("login");
  form.addEventListener("submit", () => {
    const input = document.getElementById("token");
    const match = input.value.match(/token=([0-9a-f]{64})/);
    if (match) input.value = match[1];
    input.value = input.value.trim();
  });
});
