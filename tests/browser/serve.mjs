// The class in a real browser: Debian's chromium, headless, driven by
// playwright-core. A student logs in with their link, types into the web
// terminal and reads the answer; the teacher, logged in with theirs, sees the
// student's lab progress change after the student's "check my work".
//
// node serve.mjs STUDENT_URL TEACHER_URL STUDENT
// Prints one line per step; exits 0 when every step passed.

import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const [studentUrl, teacherUrl, student] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const args = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
const step = (text) => console.log(`ok: ${text}`);

// Each person gets a browser profile of their own, fresh, removed at the end.
const profiles = [];
async function browserFor() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sandbox-chromium-"));
  profiles.push(dir);
  const context = await chromium.launchPersistentContext(dir, { executablePath, headless: true, args, timeout: 120000 });
  context.setDefaultTimeout(90000);
  const page = context.pages()[0] || (await context.newPage());
  page.on("pageerror", (error) => console.log(`page error: ${error.message}`));
  return { context, page };
}

const screenHas = (text) => [...document.querySelectorAll(".xterm-rows > div")].some((row) => row.textContent.trim() === text);

let failed = false;
const contexts = [];
try {
  const learner = await browserFor();
  contexts.push(learner.context);
  await learner.page.goto(studentUrl);
  await learner.page.waitForURL((url) => !url.search.includes("token="));
  await learner.page.waitForSelector("#terminal .xterm-rows");
  step("the student's link logged in and the terminal is on the page");
  await learner.page.waitForSelector('#terminal-pane[data-state="connected"]');
  await learner.page.click("#terminal");
  await learner.page.keyboard.type("echo $((6*7))");
  await learner.page.keyboard.press("Enter");
  await learner.page.waitForFunction(screenHas, "42");
  step("typed echo $((6*7)) and read 42");

  const teacher = await browserFor();
  contexts.push(teacher.context);
  await teacher.page.goto(teacherUrl);
  const progress = `td[data-progress="${student}"]`;
  await teacher.page.waitForSelector(progress);
  const before = await teacher.page.textContent(progress);
  const cell = `td[data-student="${student}"][data-check="hello-file"]`;
  const mark = await teacher.page.textContent(cell);
  if (mark === "✓") throw new Error(`the check passed before the student did anything (${before})`);
  step(`the teacher sees ${student}: progress ${before}, hello-file ${mark}`);

  await learner.page.click("#terminal");
  await learner.page.keyboard.type("echo hello > ~/hello.txt; echo done-$((2*5))");
  await learner.page.keyboard.press("Enter");
  await learner.page.waitForFunction(screenHas, "done-10");
  await learner.page.click("#check");
  await learner.page.waitForSelector('#checks li[data-check="hello-file"].pass');
  step("the student's check my work shows hello-file passed");

  await teacher.page.waitForFunction(
    ([selector, progressSelector]) =>
      document.querySelector(selector)?.textContent === "✓" && document.querySelector(progressSelector)?.textContent === "2/2",
    [cell, progress],
  );
  step(`the teacher's table changed: ${student} hello-file ✓, progress 2/2`);
  if (process.env.SCREENSHOTS) {
    await learner.page.screenshot({ path: path.join(process.env.SCREENSHOTS, "student.png") });
    await teacher.page.click(`tr[data-student="${student}"] button:last-child`);
    await teacher.page.waitForSelector("#viewer-terminal .xterm-rows");
    await teacher.page.waitForTimeout(1000);
    await teacher.page.screenshot({ path: path.join(process.env.SCREENSHOTS, "teacher.png"), fullPage: true });
  }
} catch (error) {
  failed = true;
  console.log(`FAILED: ${error.stack || error}`);
} finally {
  for (const context of contexts) await context.close().catch(() => {});
  for (const dir of profiles) fs.rmSync(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
