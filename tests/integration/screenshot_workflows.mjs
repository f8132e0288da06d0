// Load each workflow into a running ComfyUI editor (headless Chromium) and save:
//   <out>/<name>.png             a screenshot of the graph as the editor draws it
//   <out>/<name>.graph.json      the editor's own re-serialisation of the graph (app.graph.serialize())
//   <out>/<name>.prompt.json     the editor's "Export (API)" of it (app.graphToPrompt().output)
//
//   (cd SOMEDIR && npm install playwright-core)      # uses the system chromium, downloads no browser
//   cd SOMEDIR && node /path/to/screenshot_workflows.mjs http://127.0.0.1:8188 OUTDIR workflows/*.json
// playwright-core is resolved from the current directory's node_modules.
//
// Loopback only: the page talks to the local server and nothing else.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const { chromium } = createRequire(path.join(process.cwd(), "package.json"))("playwright-core");

const [base, outDir, ...files] = process.argv.slice(2);
if (!base || !outDir || files.length === 0) {
  console.error("usage: screenshot_workflows.mjs BASE_URL OUTDIR WORKFLOW.json...");
  process.exit(2);
}
fs.mkdirSync(outDir, { recursive: true });
const userData = fs.mkdtempSync("/tmp/zr-chromium-");
const browser = await chromium.launchPersistentContext(userData, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1600, height: 900 },
  deviceScaleFactor: 1,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"],
});
const page = browser.pages()[0] ?? (await browser.newPage());
page.on("pageerror", (e) => console.error("pageerror:", e.message));
const settings = {  // a clean first-run profile otherwise opens dialogs over the canvas
  "Comfy.TutorialCompleted": true,
  "Comfy.Workflow.ShowMissingModelsWarning": false,
  "Comfy.Workflow.ShowMissingNodesWarning": true,
  "Comfy.Minimap.Visible": false,
  "Comfy.UseNewMenu": "Top",
};
for (const [k, v] of Object.entries(settings)) {
  await fetch(`${base}/settings/${encodeURIComponent(k)}`, { method: "POST", body: JSON.stringify(v) });
}
await page.goto(base, { waitUntil: "load", timeout: 120000 });
await page.waitForFunction(() => window.app?.graph && window.app?.canvas, null, { timeout: 120000 });
await page.waitForTimeout(3000);
for (const file of files) {
  const name = path.basename(file, ".json");
  const data = JSON.parse(fs.readFileSync(file, "utf8"));
  await page.evaluate(async (wf) => {
    await window.app.loadGraphData(wf, true, true, null);
  }, data);
  await page.waitForTimeout(1500);
  await page.keyboard.press("Escape");  // close any dialog the load opened
  const result = await page.evaluate(async () => {
    const app = window.app;
    const nodes = app.graph._nodes;
    let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity];
    for (const n of nodes) {  // fit the whole graph (title bars included) into the canvas
      x0 = Math.min(x0, n.pos[0]); y0 = Math.min(y0, n.pos[1] - 40);
      x1 = Math.max(x1, n.pos[0] + n.size[0]); y1 = Math.max(y1, n.pos[1] + n.size[1]);
    }
    const c = app.canvas.canvas;
    const scale = Math.min(c.clientWidth / (x1 - x0 + 80), (c.clientHeight - 40) / (y1 - y0 + 80), 1.2);
    app.canvas.ds.scale = scale;
    app.canvas.ds.offset = [-x0 + 40 / scale, -y0 + 60 / scale];
    app.canvas.setDirty(true, true);
    app.canvas.draw(true, true);
    const prompt = await app.graphToPrompt();
    return { graph: app.graph.serialize(), prompt: prompt.output };
  });
  await page.waitForTimeout(800);
  fs.writeFileSync(path.join(outDir, `${name}.graph.json`), JSON.stringify(result.graph, null, 2));
  fs.writeFileSync(path.join(outDir, `${name}.prompt.json`), JSON.stringify(result.prompt, null, 2));
  const canvas = await page.$("#graph-canvas");
  await (canvas ?? page).screenshot({ path: path.join(outDir, `${name}.png`) });
  console.log("shot", name);
}
await browser.close();
fs.rmSync(userData, { recursive: true, force: true });
