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
  viewport: { width: 1920, height: 1080 },
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
  "Comfy.Graph.CanvasInfo": false,
  "Comfy.Graph.CanvasMenu": false,
};
const SCALE = 0.75;  // below ~0.6 the editor draws nodes without text (low-quality mode)
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
  // size the window to the graph at a readable zoom, then frame the graph
  const box = await page.evaluate(() => {
    let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity];
    for (const n of window.app.graph._nodes) {  // title bars sit above pos
      x0 = Math.min(x0, n.pos[0]); y0 = Math.min(y0, n.pos[1] - 40);
      x1 = Math.max(x1, n.pos[0] + n.size[0]); y1 = Math.max(y1, n.pos[1] + n.size[1]);
    }
    return [x0, y0, x1, y1];
  });
  const [left, top] = await page.evaluate(() => {  // menus and side bar around the canvas
    const r = window.app.canvas.canvas.getBoundingClientRect();
    return [r.left + (window.innerWidth - r.right), r.top + (window.innerHeight - r.bottom)];
  });
  await page.setViewportSize({ width: Math.ceil((box[2] - box[0]) * SCALE + 60 + left),
                               height: Math.ceil((box[3] - box[1]) * SCALE + 60 + top) });
  await page.waitForTimeout(800);
  const result = await page.evaluate(async ([x0, y0, scale]) => {
    const app = window.app;
    app.canvas.ds.scale = scale;
    app.canvas.ds.offset = [-x0 + 30 / scale, -y0 + 30 / scale];
    app.canvas.setDirty(true, true);
    app.canvas.draw(true, true);
    const prompt = await app.graphToPrompt();
    return { graph: app.graph.serialize(), prompt: prompt.output };
  }, [box[0], box[1], SCALE]);
  await page.waitForTimeout(800);
  fs.writeFileSync(path.join(outDir, `${name}.graph.json`), JSON.stringify(result.graph, null, 2));
  fs.writeFileSync(path.join(outDir, `${name}.prompt.json`), JSON.stringify(result.prompt, null, 2));
  const canvas = await page.$("#graph-canvas");
  await (canvas ?? page).screenshot({ path: path.join(outDir, `${name}.png`) });
  console.log("shot", name);
}
await browser.close();
fs.rmSync(userData, { recursive: true, force: true });
